/* py_image_encoder.c — svdc._C.ImageEncoder(config: dict, weights: Mapping): the CLIP vision tower + projection
 * (csrc/models/clip_vision.c) on the CPU backend; __call__/forward(pixel_values) -> image_embeds. */
#include <stdlib.h>
#include <string.h>

#include "../models/clip_vision.h"
#include "model_object.h"
#include "registry.h"

/* config[key] as a positive-or-zero int; KeyError/TypeError naming the key. */
static int config_int(PyObject *cfg, const char *key, int *out) {
    PyObject *v = PyDict_GetItemString(cfg, key); /* borrowed */
    if (!v) {
        PyErr_Format(PyExc_KeyError, "ImageEncoder config: missing key '%s'", key);
        return -1;
    }
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ImageEncoder config: '%s' must be an int, got %R", key, v);
        return -1;
    }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < 0 || x > (1L << 30)) {
        PyErr_Format(PyExc_ValueError, "ImageEncoder config: '%s' must be in 0..2^30, got %ld", key, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_config(PyObject *cfg, void *out) {
    svdc_clip_vision_config *c = out;
    if (!PyDict_Check(cfg)) {
        PyErr_Format(PyExc_TypeError, "ImageEncoder: config must be a dict, got %s", Py_TYPE(cfg)->tp_name);
        return -1;
    }
    memset(c, 0, sizeof *c);
    if (config_int(cfg, "image_size", &c->image_size) || config_int(cfg, "patch_size", &c->patch_size) ||
        config_int(cfg, "num_channels", &c->num_channels) || config_int(cfg, "hidden_size", &c->hidden_size) ||
        config_int(cfg, "num_hidden_layers", &c->num_hidden_layers) ||
        config_int(cfg, "num_attention_heads", &c->num_attention_heads) ||
        config_int(cfg, "intermediate_size", &c->intermediate_size) ||
        config_int(cfg, "projection_dim", &c->projection_dim))
        return -1;
    PyObject *eps = PyDict_GetItemString(cfg, "layer_norm_eps");
    if (!eps) {
        PyErr_SetString(PyExc_KeyError, "ImageEncoder config: missing key 'layer_norm_eps'");
        return -1;
    }
    double e = PyFloat_AsDouble(eps);
    if (e == -1.0 && PyErr_Occurred()) return -1;
    c->layer_norm_eps = (float)e;
    PyObject *act = PyDict_GetItemString(cfg, "hidden_act");
    const char *name = act && PyUnicode_Check(act) ? PyUnicode_AsUTF8(act) : NULL;
    if (!name) {
        PyErr_Clear();
        PyErr_Format(PyExc_KeyError, "ImageEncoder config: 'hidden_act' must be a string (\"gelu\" or \"quick_gelu\")");
        return -1;
    }
    if (!strcmp(name, "gelu"))
        c->hidden_act = SVDC_CLIP_ACT_GELU;
    else if (!strcmp(name, "quick_gelu"))
        c->hidden_act = SVDC_CLIP_ACT_QUICK_GELU;
    else {
        PyErr_Format(PyExc_ValueError, "ImageEncoder config: hidden_act must be \"gelu\" or \"quick_gelu\", got \"%s\"",
                     name);
        return -1;
    }
    svdc_status s = svdc_clip_vision_config_check(c);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    return 0;
}

static svdc_status ie_create(void **model, const void *cfg, const svdc_backend *backend, int device) {
    svdc_clip_vision *m = malloc(sizeof *m);
    if (!m) return svdc_fail(SVDC_ERR_MEMORY, "ImageEncoder: out of host memory");
    svdc_status s = svdc_clip_vision_init(m, cfg, backend, device);
    if (s) {
        free(m);
        return s;
    }
    *model = m;
    return SVDC_OK;
}

static void ie_destroy(void *model) {
    svdc_clip_vision_free(model);
    free(model);
}

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
