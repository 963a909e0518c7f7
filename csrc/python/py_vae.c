/* py_vae.c — svdc._C.VAE(config: dict, weights: Mapping): the C AutoencoderKL / AutoencoderKLTemporalDecoder;
 * encode(x) -> posterior mean, decode(z, num_frames) -> frames (one C call per decode chunk; Python loops chunks). */
#include <string.h>

#include "../models/vae.h"
#include "model_object.h"
#include "registry.h"

/* The dict of svdc/models/vae.py _native_config. */
static int parse_config(PyObject *dict, void *out) {
    svdc_vae_config *c = out;
    memset(c, 0, sizeof *c);
    svdc_py_config cfg;
    const int BIG = SVDC_PY_CONFIG_SIZE_MAX;
    int kind;
    if (svdc_py_config_open(&cfg, dict, "VAE") || svdc_py_config_int(&cfg, "in_channels", 1, BIG, &c->in_channels) ||
        svdc_py_config_int(&cfg, "out_channels", 1, BIG, &c->out_channels) ||
        svdc_py_config_int_list(&cfg, "block_out_channels", 1, SVDC_VAE_MAX_LEVELS, 1, BIG, c->block_out_channels,
                                &c->num_levels) ||
        svdc_py_config_int(&cfg, "layers_per_block", 1, BIG, &c->layers_per_block) ||
        svdc_py_config_int(&cfg, "latent_channels", 1, BIG, &c->latent_channels) ||
        svdc_py_config_int(&cfg, "norm_num_groups", 1, BIG, &c->norm_num_groups) ||
        svdc_py_config_int(&cfg, "decoder_kind", 0, 1, &kind) ||
        svdc_py_config_bool(&cfg, "use_post_quant_conv", &c->use_post_quant_conv))
        return -1;
    c->decoder_kind = (svdc_block_kind)kind;
    return 0;
}

static svdc_status vae_create(void **model, const void *cfg, const svdc_backend *backend, int device) {
    return svdc_vae_init((svdc_vae **)model, cfg, backend, device);
}
static void vae_destroy(void *model) { svdc_vae_free(model); }
static svdc_params *vae_params(void *model) { return &((svdc_vae *)model)->params; }

static const svdc_py_model_kind vae_kind = {
    .name = "VAE",
    .config_size = sizeof(svdc_vae_config),
    .parse_config = parse_config,
    .create = vae_create,
    .destroy = vae_destroy,
    .params = vae_params,
    /* VAE calls are few and large (one encode, then a decode after the whole denoising loop): give the activation
     * memory back instead of holding gigabytes idle while the UNet runs. */
    .trim_after_call = 1,
};

static int vae_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    return svdc_py_model_init((svdc_py_model *)self, &vae_kind, args, kwargs);
}

typedef struct {
    const svdc_tensor *in;
    int num_frames; /* decode only */
    svdc_tensor *out;
} vae_args;

static svdc_status encode_call(svdc_ctx *ctx, void *model, void *p) {
    vae_args *a = p;
    return svdc_vae_encode(ctx, model, a->in, a->out);
}

static svdc_status decode_call(svdc_ctx *ctx, void *model, void *p) {
    vae_args *a = p;
    return svdc_vae_decode(ctx, model, a->in, a->num_frames, a->out);
}

static PyObject *vae_encode(svdc_py_model *self, PyObject *arg) {
    if (!svdc_py_model_ready(self)) return NULL;
    PyArrayObject *x = svdc_py_f32_array(arg, "images", 4);
    if (!x) return NULL;
    svdc_tensor xt = svdc_py_tensor(x);
    const svdc_vae *vae = self->model;
    const svdc_vae_config *cfg = &vae->cfg;
    const int64_t f = vae->down_factor;
    if (xt.shape[1] != cfg->in_channels || xt.shape[2] % f || xt.shape[3] % f || xt.shape[2] < 1 || xt.shape[3] < 1 ||
        xt.shape[0] < 1) {
        PyErr_Format(svdc_py_ShapeError,
                     "VAE.encode: images must have shape (N >= 1, %d, H, W) with H and W positive multiples of %lld, "
                     "got (%lld, %lld, %lld, %lld)",
                     cfg->in_channels, (long long)f, (long long)xt.shape[0], (long long)xt.shape[1],
                     (long long)xt.shape[2], (long long)xt.shape[3]);
        Py_DECREF(x);
        return NULL;
    }
    int64_t shape[4] = {xt.shape[0], cfg->latent_channels, xt.shape[2] / f, xt.shape[3] / f};
    PyArrayObject *y = svdc_py_new_f32(4, shape);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    svdc_tensor yt = svdc_py_tensor(y);
    vae_args a = {&xt, 1, &yt};
    svdc_status s = svdc_py_model_run_io(self, encode_call, &a, 1, SVDC_PY_IO(&xt), SVDC_PY_IO(&yt));
    Py_DECREF(x);
    return svdc_py_model_result(s, y);
}

static PyObject *vae_decode(svdc_py_model *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"latents", "num_frames", "plan_only", NULL};
    PyObject *zo;
    int num_frames, plan_only = 0;
    if (!svdc_py_model_ready(self)) return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi|p:decode", kwlist, &zo, &num_frames, &plan_only)) return NULL;
    PyArrayObject *z = svdc_py_f32_array(zo, "latents", 4);
    if (!z) return NULL;
    svdc_tensor zt = svdc_py_tensor(z);
    const svdc_vae *vae = self->model;
    const svdc_vae_config *cfg = &vae->cfg;
    const int64_t f = vae->down_factor;
    if (zt.shape[1] != cfg->latent_channels || zt.shape[0] < 1 || zt.shape[2] < 1 || zt.shape[3] < 1) {
        PyErr_Format(svdc_py_ShapeError, "VAE.decode: latents must have shape (N >= 1, %d, h, w), got (%lld, %lld, "
                                         "%lld, %lld)",
                     cfg->latent_channels, (long long)zt.shape[0], (long long)zt.shape[1], (long long)zt.shape[2],
                     (long long)zt.shape[3]);
        Py_DECREF(z);
        return NULL;
    }
    if (num_frames < 1 || zt.shape[0] % num_frames) {
        PyErr_Format(svdc_py_ShapeError, "VAE.decode: num_frames must be >= 1 and divide the %lld latent rows, got %d",
                     (long long)zt.shape[0], num_frames);
        Py_DECREF(z);
        return NULL;
    }
    int64_t shape[4] = {zt.shape[0], cfg->out_channels, zt.shape[2] * f, zt.shape[3] * f};
    PyArrayObject *y = svdc_py_new_f32(4, shape);
    if (!y) {
        Py_DECREF(z);
        return NULL;
    }
    svdc_tensor yt = svdc_py_tensor(y);
    vae_args a = {&zt, num_frames, &yt};
    if (plan_only) { /* the planned arena bytes; y's pages are never touched */
        size_t planned = 0;
        svdc_status s = svdc_py_model_plan_io(self, decode_call, &a, SVDC_PY_IO(&zt), SVDC_PY_IO(&yt), &planned);
        Py_DECREF(z);
        Py_DECREF(y);
        return s ? svdc_py_raise(s) : PyLong_FromSize_t(planned);
    }
    svdc_status s = svdc_py_model_run_io(self, decode_call, &a, 1, SVDC_PY_IO(&zt), SVDC_PY_IO(&yt));
    Py_DECREF(z);
    return svdc_py_model_result(s, y);
}

static PyObject *vae_get_down_factor(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyLong_FromLong(((svdc_vae *)m->model)->down_factor);
}

static PyObject *vae_weight_shapes(PyObject *cls, PyObject *config) {
    (void)cls;
    return svdc_py_model_weight_shapes(&vae_kind, config);
}

static PyMethodDef vae_methods[] = {
    SVDC_PY_MODEL_METHODS,
    {"encode", (PyCFunction)vae_encode, METH_O,
     "encode(images float32 (N, in, H, W)) -> posterior mean float32 (N, latent, H/f, W/f)"},
    {"decode", (PyCFunction)(void (*)(void))vae_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(latents float32 (N, latent, h, w), num_frames, plan_only=False) -> float32 (N, out, h*f, w*f); one "
     "clip per num_frames rows; plan_only: the arena bytes the call would need, nothing computed"},
    {"weight_shapes", vae_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(native config) -> {diffusers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef vae_getset[] = {
    SVDC_PY_MODEL_GETSET,
    {"down_factor", vae_get_down_factor, NULL, "spatial factor between images and latents", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyVAE_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.VAE",
    .tp_basicsize = sizeof(svdc_py_model),
    .tp_dealloc = svdc_py_model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "VAE(config: dict, weights: Mapping[str, float32 ndarray]): AutoencoderKLTemporalDecoder or AutoencoderKL "
               "(the native config's decoder_kind).",
    .tp_methods = vae_methods,
    .tp_getset = vae_getset,
    .tp_init = vae_init,
    .tp_new = PyType_GenericNew,
};

int svdc_py_register_vae(PyObject *module) { return svdc_py_add_type(module, &PyVAE_Type, "VAE"); }
