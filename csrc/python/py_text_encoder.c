/* py_text_encoder.c — svdc._C.TextEncoder(config: dict, weights: Mapping): the CLIP text transformer
 * (csrc/models/clip_text.c); forward(input_ids, eos_index, skip_layers, final_norm) -> (hidden, pooled, text_embeds). */
#include <string.h>

#include "../models/clip_text.h"
#include "model_object.h"
#include "registry.h"

static const char *const ACTIVATIONS[] = {"gelu", "quick_gelu"};

static int parse_config(PyObject *dict, void *out) {
    svdc_clip_text_config *c = out;
    memset(c, 0, sizeof *c);
    svdc_py_config cfg;
    const int BIG = SVDC_PY_CONFIG_SIZE_MAX;
    int act;
    if (svdc_py_config_open(&cfg, dict, "TextEncoder") ||
        svdc_py_config_int(&cfg, "vocab_size", 1, BIG, &c->vocab_size) ||
        svdc_py_config_int(&cfg, "max_position_embeddings", 1, BIG, &c->max_position_embeddings) ||
        svdc_py_config_int(&cfg, "hidden_size", 1, BIG, &c->hidden_size) ||
        svdc_py_config_int(&cfg, "num_hidden_layers", 1, BIG, &c->num_hidden_layers) ||
        svdc_py_config_int(&cfg, "num_attention_heads", 1, BIG, &c->num_attention_heads) ||
        svdc_py_config_int(&cfg, "intermediate_size", 1, BIG, &c->intermediate_size) ||
        svdc_py_config_int(&cfg, "projection_dim", 0, BIG, &c->projection_dim) ||
        svdc_py_config_float(&cfg, "layer_norm_eps", 0.0, 1.0, &c->layer_norm_eps) ||
        svdc_py_config_choice(&cfg, "hidden_act", ACTIVATIONS, 2, &act))
        return -1;
    c->hidden_act = act ? SVDC_CLIP_ACT_QUICK_GELU : SVDC_CLIP_ACT_GELU;
    return 0;
}

static svdc_status te_create(void **model, const void *cfg, const svdc_backend *backend, int device) {
    return svdc_clip_text_init((svdc_clip_text **)model, cfg, backend, device);
}
static void te_destroy(void *model) { svdc_clip_text_free(model); }
static svdc_params *te_params(void *model) { return &((svdc_clip_text *)model)->params; }

static const svdc_py_model_kind te_kind = {
    .name = "TextEncoder",
    .config_size = sizeof(svdc_clip_text_config),
    .parse_config = parse_config,
    .create = te_create,
    .destroy = te_destroy,
    .params = te_params,
};

static int te_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    return svdc_py_model_init((svdc_py_model *)self, &te_kind, args, kwargs);
}

typedef struct {
    const int32_t *ids, *eos;
    int64_t n, t;
    int skip_layers, final_norm;
    svdc_tensor *hidden, *pooled, *embeds;
} te_args;

static svdc_status forward_call(svdc_ctx *ctx, void *model, void *p) {
    te_args *a = p;
    return svdc_clip_text_forward(ctx, model, a->ids, a->n, a->t, a->skip_layers, a->final_norm, a->eos, a->hidden,
                                  a->pooled, a->embeds);
}

/* forward(input_ids int32 (N, T), eos_index int32 (N,), skip_layers, final_norm) ->
 * (hidden (N, T, C), pooled (N, C), text_embeds (N, P) or None) */
static PyObject *te_forward(svdc_py_model *self, PyObject *args) {
    PyObject *io, *eo, *result = NULL;
    int skip_layers, final_norm;
    if (!svdc_py_model_ready(self) || !PyArg_ParseTuple(args, "OOip", &io, &eo, &skip_layers, &final_norm))
        return NULL;
    const svdc_clip_text_config *c = &((svdc_clip_text *)self->model)->cfg;
    PyArrayObject *ids = NULL, *eos = NULL, *hidden = NULL, *pooled = NULL, *embeds = NULL;
    ids = (PyArrayObject *)PyArray_FROM_OTF(io, NPY_INT32, NPY_ARRAY_IN_ARRAY);
    eos = ids ? (PyArrayObject *)PyArray_FROM_OTF(eo, NPY_INT32, NPY_ARRAY_IN_ARRAY) : NULL;
    if (!ids || !eos) goto done;
    if (PyArray_NDIM(ids) != 2 || PyArray_NDIM(eos) != 1 || PyArray_DIM(eos, 0) != PyArray_DIM(ids, 0)) {
        PyErr_SetString(svdc_py_ShapeError, "TextEncoder.forward: input_ids must be (N, T) and eos_index (N,)");
        goto done;
    }
    const int64_t n = PyArray_DIM(ids, 0), t = PyArray_DIM(ids, 1);
    int64_t hs[3] = {n, t, c->hidden_size}, ps[2] = {n, c->hidden_size}, es[2] = {n, c->projection_dim};
    if (!(hidden = svdc_py_new_f32(3, hs)) || !(pooled = svdc_py_new_f32(2, ps)) ||
        (c->projection_dim > 0 && !(embeds = svdc_py_new_f32(2, es))))
        goto done;
    svdc_tensor ht = svdc_py_tensor(hidden), pt = svdc_py_tensor(pooled), et;
    if (embeds) et = svdc_py_tensor(embeds);
    te_args a = {PyArray_DATA(ids), PyArray_DATA(eos), n, t, skip_layers, final_norm, &ht, &pt,
                 embeds ? &et : NULL};
    /* token ids and EOS positions stay on the host (the model reads them there); the outputs are staged */
    svdc_status s = embeds ? svdc_py_model_run_io(self, forward_call, &a, 1, NULL, 0, SVDC_PY_IO(&ht, &pt, &et))
                           : svdc_py_model_run_io(self, forward_call, &a, 1, NULL, 0, SVDC_PY_IO(&ht, &pt));
    if (s) {
        svdc_py_raise(s);
        goto done;
    }
    result = Py_BuildValue("(OOO)", hidden, pooled, embeds ? (PyObject *)embeds : Py_None);
done:
    Py_XDECREF(ids);
    Py_XDECREF(eos);
    Py_XDECREF(hidden);
    Py_XDECREF(pooled);
    Py_XDECREF(embeds);
    return result;
}

static PyObject *te_weight_shapes(PyObject *cls, PyObject *config) {
    (void)cls;
    return svdc_py_model_weight_shapes(&te_kind, config);
}

static PyMethodDef te_methods[] = {
    SVDC_PY_MODEL_METHODS,
    {"forward", (PyCFunction)te_forward, METH_VARARGS,
     "forward(input_ids int32 (N,T), eos_index int32 (N,), skip_layers, final_norm) -> (hidden (N,T,C), pooled "
     "(N,C), text_embeds (N,P) or None)"},
    {"weight_shapes", te_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(config) -> {transformers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef te_getset[] = {
    SVDC_PY_MODEL_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TextEncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.TextEncoder",
    .tp_basicsize = sizeof(svdc_py_model),
    .tp_dealloc = svdc_py_model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TextEncoder(config: dict, weights: Mapping[str, float32 ndarray]): CLIPTextModel(WithProjection).",
    .tp_methods = te_methods,
    .tp_getset = te_getset,
    .tp_init = te_init,
    .tp_new = PyType_GenericNew,
};

int svdc_py_register_text_encoder(PyObject *module) {
    return svdc_py_add_type(module, &TextEncoderType, "TextEncoder");
}
