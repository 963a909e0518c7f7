/* py_unet.c — svdc._C.UNet: the kind-generic UNet (UNetSpatioTemporalConditionModel | UNet2DConditionModel). Takes
 * the native config dict of svdc/configs/unet.py and a weight Mapping (diffusers names); forward() runs one denoiser
 * evaluation. */
#include <string.h>

#include "../models/unet.h"
#include "model_object.h"
#include "registry.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Config dict -> svdc_unet_config (keys written by svdc/configs/unet.py: to_native()) */

static int parse_config(PyObject *dict, void *out) {
    svdc_unet_config *c = out;
    memset(c, 0, sizeof *c);
    svdc_py_config cfg;
    const int M = SVDC_UNET_MAX_LEVELS, BIG = SVDC_PY_CONFIG_SIZE_MAX;
    int kind;
    if (svdc_py_config_open(&cfg, dict, "UNet") || svdc_py_config_int(&cfg, "kind", 0, 1, &kind)) return -1;
    c->kind = (svdc_block_kind)kind;
    if (svdc_py_config_int(&cfg, "in_channels", 1, BIG, &c->in_channels) ||
        svdc_py_config_int(&cfg, "out_channels", 1, BIG, &c->out_channels) ||
        svdc_py_config_int_list(&cfg, "block_out_channels", 1, M, 1, BIG, c->block_out_channels, &c->num_levels))
        return -1;
    const int n = c->num_levels, max_ids = kind == SVDC_BLOCK_2D ? 0 : SVDC_UNET_MAX_IDS;
    if (svdc_py_config_int_list(&cfg, "down_attention", n, n, 0, 1, c->down_attention, NULL) ||
        svdc_py_config_int_list(&cfg, "up_attention", n, n, 0, 1, c->up_attention, NULL) ||
        svdc_py_config_int_list(&cfg, "layers_per_block", n, n, 1, BIG, c->layers_per_block, NULL) ||
        svdc_py_config_int_list(&cfg, "num_attention_heads", n, n, 1, BIG, c->num_attention_heads, NULL) ||
        svdc_py_config_int_list(&cfg, "transformer_layers", n, n, 1, BIG, c->transformer_layers, NULL) ||
        svdc_py_config_int(&cfg, "cross_attention_dim", 1, BIG, &c->cross_attention_dim) ||
        svdc_py_config_bool(&cfg, "linear_projection", &c->linear_projection) ||
        svdc_py_config_float(&cfg, "norm_eps", 0.0, 1.0, &c->norm_eps) ||
        svdc_py_config_int_list(&cfg, "id_widths", max_ids ? 1 : 0, max_ids, 1, BIG, c->id_widths, &c->num_ids) ||
        svdc_py_config_int(&cfg, "projection_input_dim", 0, BIG, &c->projection_input_dim) ||
        svdc_py_config_bool(&cfg, "sgm_eps", &c->sgm_eps))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Type (the shared model scaffolding of model_object.h) */

static svdc_status unet_create(void **model, const void *cfg, const svdc_backend *backend, int device) {
    return svdc_unet_init((svdc_unet **)model, cfg, backend, device);
}
static void unet_destroy(void *model) { svdc_unet_free(model); }
static svdc_params *unet_params(void *model) { return &((svdc_unet *)model)->params; }

static const svdc_py_model_kind unet_kind = {
    .name = "UNet",
    .config_size = sizeof(svdc_unet_config),
    .parse_config = parse_config,
    .create = unet_create,
    .destroy = unet_destroy,
    .params = unet_params,
};

static int unet_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    return svdc_py_model_init((svdc_py_model *)self, &unet_kind, args, kwargs);
}

typedef struct {
    const svdc_tensor *sample, *timesteps, *context, *ids;
    int num_frames;
    svdc_tensor *out;
} unet_args;

static svdc_status forward_call(svdc_ctx *ctx, void *model, void *p) {
    unet_args *a = p;
    return svdc_unet_forward(ctx, model, a->sample, a->num_frames, a->timesteps, a->context, a->ids, a->out);
}

static svdc_status embedding_call(svdc_ctx *ctx, void *model, void *p) {
    unet_args *a = p;
    return svdc_unet_embedding(ctx, model, a->timesteps, a->ids, a->num_frames, a->out);
}

/* forward(sample (B*F, Cin, h, w), num_frames, timesteps (B,), context (B, L, D), ids (B*F, n)) -> (B*F, Cout, h, w) */
static PyObject *unet_forward(svdc_py_model *self, PyObject *args) {
    PyObject *so, *to, *co, *io, *result = NULL;
    int num_frames;
    if (!svdc_py_model_ready(self) || !PyArg_ParseTuple(args, "OiOOO", &so, &num_frames, &to, &co, &io)) return NULL;
    PyArrayObject *sa = NULL, *ta = NULL, *ca = NULL, *ia = NULL, *ya = NULL;
    if (!(sa = svdc_py_f32_array(so, "sample", 4)) || !(ta = svdc_py_f32_array(to, "timesteps", 1)) ||
        !(ca = svdc_py_f32_array(co, "encoder_hidden_states", 3)) || !(ia = svdc_py_f32_array(io, "added_time_ids", 2)))
        goto done;
    svdc_tensor st = svdc_py_tensor(sa), tt = svdc_py_tensor(ta), ct = svdc_py_tensor(ca), it = svdc_py_tensor(ia);
    const svdc_unet *u = self->model;
    int64_t yshape[4] = {st.shape[0], u->cfg.out_channels, st.shape[2], st.shape[3]};
    if (!(ya = svdc_py_new_f32(4, yshape))) goto done;
    svdc_tensor yt = svdc_py_tensor(ya);
    unet_args a = {&st, &tt, &ct, &it, num_frames, &yt};
    result = svdc_py_model_result(svdc_py_model_run_io(self, forward_call, &a, 1, SVDC_PY_IO(&st, &tt, &ct, &it), SVDC_PY_IO(&yt)), ya);
    ya = NULL; /* returned, or dropped with the error */
done:
    Py_XDECREF(sa);
    Py_XDECREF(ta);
    Py_XDECREF(ca);
    Py_XDECREF(ia);
    Py_XDECREF(ya);
    return result;
}

/* embedding(timesteps (B,), ids (B*F, n), num_frames) -> emb (B*F, 4*C0): the per-frame conditioning vector */
static PyObject *unet_embedding(svdc_py_model *self, PyObject *args) {
    PyObject *to, *io, *result = NULL;
    int num_frames;
    if (!svdc_py_model_ready(self) || !PyArg_ParseTuple(args, "OOi", &to, &io, &num_frames)) return NULL;
    PyArrayObject *ta = NULL, *ia = NULL, *ya = NULL;
    if (!(ta = svdc_py_f32_array(to, "timesteps", 1)) || !(ia = svdc_py_f32_array(io, "added_time_ids", 2))) goto done;
    svdc_tensor tt = svdc_py_tensor(ta), it = svdc_py_tensor(ia);
    const svdc_unet *u = self->model;
    int64_t yshape[2] = {it.shape[0], 4 * (int64_t)u->cfg.block_out_channels[0]};
    if (!(ya = svdc_py_new_f32(2, yshape))) goto done;
    svdc_tensor yt = svdc_py_tensor(ya);
    unet_args a = {NULL, &tt, NULL, &it, num_frames, &yt};
    result = svdc_py_model_result(svdc_py_model_run_io(self, embedding_call, &a, 0, SVDC_PY_IO(&tt, &it), SVDC_PY_IO(&yt)), ya);
    ya = NULL; /* returned, or dropped with the error */
done:
    Py_XDECREF(ta);
    Py_XDECREF(ia);
    Py_XDECREF(ya);
    return result;
}

static PyObject *unet_weight_shapes(PyObject *cls, PyObject *config) {
    (void)cls;
    return svdc_py_model_weight_shapes(&unet_kind, config);
}

static PyMethodDef unet_methods[] = {
    SVDC_PY_MODEL_METHODS,
    {"forward", (PyCFunction)unet_forward, METH_VARARGS,
     "forward(sample (B*F,Cin,h,w), num_frames, timesteps (B,), context (B,L,D), added_ids (B*F,n)) -> "
     "(B*F,Cout,h,w)"},
    {"embedding", (PyCFunction)unet_embedding, METH_VARARGS,
     "embedding(timesteps (B,), added_ids (B*F,n), num_frames) -> per-frame conditioning (B*F, 4*C0)"},
    {"weight_shapes", unet_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(native config) -> {diffusers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef unet_getset[] = {
    SVDC_PY_MODEL_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyUNet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.UNet",
    .tp_basicsize = sizeof(svdc_py_model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "UNet(config: dict, weights: Mapping[str, float32 ndarray]): UNetSpatioTemporalConditionModel on the CPU",
    .tp_new = PyType_GenericNew,
    .tp_init = unet_init,
    .tp_dealloc = svdc_py_model_dealloc,
    .tp_methods = unet_methods,
    .tp_getset = unet_getset,
};

int svdc_py_register_unet(PyObject *module) { return svdc_py_add_type(module, &PyUNet_Type, "UNet"); }
