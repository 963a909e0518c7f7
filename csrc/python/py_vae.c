/* py_vae.c — svdc._C.VAE(config: dict, weights: Mapping): the C AutoencoderKL / AutoencoderKLTemporalDecoder;
 * encode(x) -> posterior mean, decode(z, num_frames) -> frames (one C call per decode chunk; Python loops chunks). */
#include "../models/vae.h"
#include "model_object.h"
#include "registry.h"

/* config[key] as an int >= lo, or `fallback` when absent. Returns -1 with an exception set on error. */
static int config_int(PyObject *config, const char *key, int fallback, int lo, int *out) {
    PyObject *v = PyMapping_GetItemString(config, key);
    if (!v) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        *out = fallback;
        return 0;
    }
    long x = PyLong_Check(v) && !PyBool_Check(v) ? PyLong_AsLong(v) : -1;
    if (x == -1 && PyErr_Occurred()) PyErr_Clear();
    if (!PyLong_Check(v) || PyBool_Check(v) || x < lo || x > 1L << 20) {
        PyErr_Format(PyExc_ValueError, "VAE config: %s must be an integer >= %d, got %R", key, lo, v);
        Py_DECREF(v);
        return -1;
    }
    Py_DECREF(v);
    *out = (int)x;
    return 0;
}

static int parse_config(PyObject *config, void *out) {
    svdc_vae_config *cfg = out;
    if (!PyMapping_Check(config)) {
        PyErr_Format(PyExc_TypeError, "VAE: config must be a dict, got %s", Py_TYPE(config)->tp_name);
        return -1;
    }
    svdc_vae_config_default(cfg);
    if (config_int(config, "in_channels", cfg->in_channels, 1, &cfg->in_channels) < 0) return -1;
    if (config_int(config, "out_channels", cfg->out_channels, 1, &cfg->out_channels) < 0) return -1;
    if (config_int(config, "layers_per_block", cfg->layers_per_block, 1, &cfg->layers_per_block) < 0) return -1;
    if (config_int(config, "latent_channels", cfg->latent_channels, 1, &cfg->latent_channels) < 0) return -1;
    if (config_int(config, "norm_num_groups", cfg->norm_num_groups, 1, &cfg->norm_num_groups) < 0) return -1;
    int kind;
    if (config_int(config, "decoder_kind", (int)cfg->decoder_kind, 0, &kind) < 0) return -1;
    cfg->decoder_kind = (svdc_block_kind)kind;
    if (config_int(config, "use_post_quant_conv", cfg->use_post_quant_conv, 0, &cfg->use_post_quant_conv) < 0)
        return -1;
    PyObject *boc = PyMapping_GetItemString(config, "block_out_channels");
    if (!boc) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        return 0; /* the diffusers default (64,) */
    }
    PyObject *seq = PySequence_Fast(boc, "VAE config: block_out_channels must be a list of integers");
    Py_DECREF(boc);
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > SVDC_VAE_MAX_LEVELS) {
        PyErr_Format(PyExc_ValueError, "VAE config: block_out_channels has %zd entries, expected 1..%d", n,
                     SVDC_VAE_MAX_LEVELS);
        Py_DECREF(seq);
        return -1;
    }
    cfg->num_levels = (int)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
        long x = PyLong_Check(it) && !PyBool_Check(it) ? PyLong_AsLong(it) : -1;
        if (x == -1 && PyErr_Occurred()) PyErr_Clear();
        if (x < 1 || x > 1L << 20) {
            PyErr_Format(PyExc_ValueError, "VAE config: block_out_channels[%zd] must be a positive integer, got %R",
                         i, it);
            Py_DECREF(seq);
            return -1;
        }
        cfg->block_out_channels[i] = (int)x;
    }
    Py_DECREF(seq);
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
    static char *kwlist[] = {"latents", "num_frames", NULL};
    PyObject *zo;
    int num_frames;
    if (!svdc_py_model_ready(self)) return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi:decode", kwlist, &zo, &num_frames)) return NULL;
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
    {"encode", (PyCFunction)vae_encode, METH_O,
     "encode(images float32 (N, in, H, W)) -> posterior mean float32 (N, latent, H/f, W/f)"},
    {"decode", (PyCFunction)(void (*)(void))vae_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(latents float32 (N, latent, h, w), num_frames) -> float32 (N, out, h*f, w*f); one clip per "
     "num_frames rows"},
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
    .tp_doc = "VAE(config: dict, weights: Mapping[str, float32 ndarray]): AutoencoderKLTemporalDecoder on the CPU.",
    .tp_methods = vae_methods,
    .tp_getset = vae_getset,
    .tp_init = vae_init,
    .tp_new = PyType_GenericNew,
};

int svdc_py_register_resblocks(PyObject *module); /* py_resblocks.c: the private block test surface */

int svdc_py_register_vae(PyObject *module) {
    if (svdc_py_add_type(module, &PyVAE_Type, "VAE") < 0) return -1;
    return svdc_py_register_resblocks(module);
}
