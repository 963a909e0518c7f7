/* py_image_encoder.c — svdc._C.ImageEncoder(config: dict, weights: Mapping): the CLIP vision tower + projection
 * (csrc/models/clip_vision.c) on the CPU backend; __call__/forward(pixel_values) -> image_embeds. */
#include <stdlib.h>
#include <string.h>

#include "../models/clip_vision.h"
#include "model_object.h"
#include "registry.h"

static const char *const ACTIVATIONS[] = {"gelu", "quick_gelu"}; /* the index is the svdc_clip_act */

static int parse_config(PyObject *dict, void *out) {
    svdc_clip_vision_config *c = out;
    memset(c, 0, sizeof *c);
    svdc_py_config cfg;
    const int BIG = SVDC_PY_CONFIG_SIZE_MAX;
    int act;
    if (svdc_py_config_open(&cfg, dict, "ImageEncoder") ||
        svdc_py_config_int(&cfg, "image_size", 0, BIG, &c->image_size) ||
        svdc_py_config_int(&cfg, "patch_size", 0, BIG, &c->patch_size) ||
        svdc_py_config_int(&cfg, "num_channels", 0, BIG, &c->num_channels) ||
        svdc_py_config_int(&cfg, "hidden_size", 0, BIG, &c->hidden_size) ||
        svdc_py_config_int(&cfg, "num_hidden_layers", 0, BIG, &c->num_hidden_layers) ||
        svdc_py_config_int(&cfg, "num_attention_heads", 0, BIG, &c->num_attention_heads) ||
        svdc_py_config_int(&cfg, "intermediate_size", 0, BIG, &c->intermediate_size) ||
        svdc_py_config_int(&cfg, "projection_dim", 0, BIG, &c->projection_dim) ||
        svdc_py_config_float(&cfg, "layer_norm_eps", 0.0, 1.0, &c->layer_norm_eps) ||
        svdc_py_config_choice(&cfg, "hidden_act", ACTIVATIONS, 2, &act))
        return -1;
    c->hidden_act = act ? SVDC_CLIP_ACT_QUICK_GELU : SVDC_CLIP_ACT_GELU;
    svdc_status s = svdc_clip_vision_config_check(c);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    return 0;
}

static svdc_status ie_create(void **model, const void *cfg, const svdc_backend *backend, int device) {
    return svdc_clip_vision_init((svdc_clip_vision **)model, cfg, backend, device);
}
static void ie_destroy(void *model) { svdc_clip_vision_free(model); }

static svdc_params *ie_params(void *model) { return &((svdc_clip_vision *)model)->params; }

static const svdc_py_model_kind ie_kind = {
    .name = "ImageEncoder",
    .config_size = sizeof(svdc_clip_vision_config),
    .parse_config = parse_config,
    .create = ie_create,
    .destroy = ie_destroy,
    .params = ie_params,
};

static int ie_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    return svdc_py_model_init((svdc_py_model *)self, &ie_kind, args, kwargs);
}

typedef struct {
    const svdc_tensor *x;
    svdc_tensor *y;
} ie_args;

static svdc_status forward_call(svdc_ctx *ctx, void *model, void *p) {
    ie_args *a = p;
    return svdc_clip_vision_forward(ctx, model, a->x, a->y);
}

static PyObject *ie_forward(svdc_py_model *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"pixel_values", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:ImageEncoder.forward", kwlist, &xo)) return NULL;
    if (!svdc_py_model_ready(self)) return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "pixel_values", 4);
    if (!x) return NULL;
    const svdc_clip_vision_config *c = &((svdc_clip_vision *)self->model)->cfg;
    svdc_tensor xt = svdc_py_tensor(x);
    if (xt.shape[0] < 1 || xt.shape[1] != c->num_channels || xt.shape[2] != c->image_size ||
        xt.shape[3] != c->image_size) {
        PyErr_Format(svdc_py_ShapeError, "pixel_values: expected shape (N, %d, %d, %d) with N >= 1, got (%lld, %lld, %lld, %lld)",
                     c->num_channels, c->image_size, c->image_size, (long long)xt.shape[0], (long long)xt.shape[1],
                     (long long)xt.shape[2], (long long)xt.shape[3]);
        Py_DECREF(x);
        return NULL;
    }
    int64_t yshape[2] = {xt.shape[0], c->projection_dim};
    PyArrayObject *y = svdc_py_new_f32(2, yshape);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    svdc_tensor yt = svdc_py_tensor(y);
    ie_args a = {&xt, &yt};
    svdc_status s = svdc_py_model_run_io(self, forward_call, &a, 1, SVDC_PY_IO(&xt), SVDC_PY_IO(&yt));
    Py_DECREF(x);
    return svdc_py_model_result(s, y);
}

static PyObject *ie_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    return ie_forward((svdc_py_model *)self, args, kwargs);
}

static PyObject *ie_weight_shapes(PyObject *cls, PyObject *config) {
    (void)cls;
    return svdc_py_model_weight_shapes(&ie_kind, config);
}

static PyMethodDef ie_methods[] = {
    SVDC_PY_MODEL_METHODS,
    {"forward", (PyCFunction)(void (*)(void))ie_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(pixel_values (N, C, S, S) float32) -> image_embeds (N, projection_dim) float32"},
    {"weight_shapes", ie_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(config) -> {transformers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ie_getset[] = {
    SVDC_PY_MODEL_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ImageEncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.ImageEncoder",
    .tp_basicsize = sizeof(svdc_py_model),
    .tp_dealloc = svdc_py_model_dealloc,
    .tp_call = ie_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ImageEncoder(config: dict, weights: Mapping[str, float32 ndarray]): CLIPVisionModelWithProjection "
              "on the CPU; calling it maps pixel_values (N, C, S, S) to image_embeds (N, projection_dim).",
    .tp_methods = ie_methods,
    .tp_getset = ie_getset,
    .tp_init = ie_init,
    .tp_new = PyType_GenericNew,
};

int svdc_py_register_image_encoder(PyObject *module) {
    return svdc_py_add_type(module, &ImageEncoderType, "ImageEncoder");
}
