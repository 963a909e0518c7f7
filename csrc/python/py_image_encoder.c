/* py_image_encoder.c — svdc._C.ImageEncoder(config: dict, weights: Mapping): the CLIP vision tower + projection
 * (csrc/models/clip_vision.c) on the CPU backend; __call__/forward(pixel_values) -> image_embeds. */
#include "util.h"

#include <pythread.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/backend.h"
#include "../models/clip_vision.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD
    svdc_clip_vision model;
    int model_ready;
    svdc_ctx ctx;
    PyThread_type_lock lock; /* one forward at a time per object (the arena is per object) */
    size_t last_peak;
    PyObject *config;        /* the dict it was built from (a copy) */
} ImageEncoderObject;

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

static int parse_config(PyObject *cfg, svdc_clip_vision_config *c) {
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

static void ie_dealloc(ImageEncoderObject *self) {
    if (self->model_ready) svdc_clip_vision_free(&self->model);
    svdc_arena_free(self->ctx.arena);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_XDECREF(self->config);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ie_init(ImageEncoderObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"config", "weights", NULL};
    PyObject *cfg, *weights;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:ImageEncoder", kwlist, &cfg, &weights)) return -1;
    if (self->model_ready || self->lock) {
        PyErr_SetString(PyExc_RuntimeError, "ImageEncoder: already initialised");
        return -1;
    }
    svdc_clip_vision_config c;
    if (parse_config(cfg, &c) < 0) return -1;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_SetString(PyExc_MemoryError, "ImageEncoder: cannot allocate a lock");
        return -1;
    }
    self->ctx.backend = svdc_backend_cpu();
    self->ctx.device = SVDC_DEVICE_CPU;
    svdc_status s = svdc_arena_init(&self->ctx.arena, self->ctx.backend, SVDC_DEVICE_CPU);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    s = svdc_clip_vision_init(&self->model, &c, self->ctx.backend, SVDC_DEVICE_CPU);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    self->model_ready = 1;
    if (svdc_py_load_params(&self->model.params, weights, "ImageEncoder") < 0) return -1;
    self->config = PyDict_Copy(cfg);
    return self->config ? 0 : -1;
}

static int ie_check_ready(ImageEncoderObject *self) {
    if (!self->model_ready || !self->config) {
        PyErr_SetString(svdc_py_SvdcError, "ImageEncoder: not initialised (construction failed)");
        return -1;
    }
    return 0;
}

static PyObject *ie_forward(ImageEncoderObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"pixel_values", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:ImageEncoder.forward", kwlist, &xo)) return NULL;
    if (ie_check_ready(self) < 0) return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "pixel_values", 4);
    if (!x) return NULL;
    const svdc_clip_vision_config *c = &self->model.cfg;
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
    svdc_status s;
    size_t peak = 0;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    svdc_arena_reset(self->ctx.arena);
    svdc_arena_reset_peak(self->ctx.arena);
    s = svdc_clip_vision_forward(&self->ctx, &self->model, &xt, &yt);
    peak = svdc_arena_peak(self->ctx.arena);
    svdc_arena_reset(self->ctx.arena);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    if (s) {
        Py_DECREF(y);
        return svdc_py_raise(s);
    }
    self->last_peak = peak;
    return (PyObject *)y;
}

static PyObject *ie_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    return ie_forward((ImageEncoderObject *)self, args, kwargs);
}

/* weight_shapes(config) -> {transformers name: shape}: the table an encoder of this config declares. */
static PyObject *ie_weight_shapes(PyObject *cls, PyObject *cfg) {
    (void)cls;
    svdc_clip_vision_config c;
    if (parse_config(cfg, &c) < 0) return NULL;
    svdc_clip_vision m;
    svdc_status s = svdc_clip_vision_init(&m, &c, svdc_backend_cpu(), SVDC_DEVICE_CPU);
    if (s) return svdc_py_raise(s);
    PyObject *d = svdc_py_params_shapes(&m.params);
    svdc_clip_vision_free(&m);
    return d;
}

static PyObject *ie_get_peak(ImageEncoderObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(self->last_peak);
}

static PyObject *ie_get_num_parameters(ImageEncoderObject *self, void *closure) {
    (void)closure;
    if (ie_check_ready(self) < 0) return NULL;
    return PyLong_FromLongLong((long long)svdc_params_count_elements(&self->model.params));
}

static PyObject *ie_get_config(ImageEncoderObject *self, void *closure) {
    (void)closure;
    if (ie_check_ready(self) < 0) return NULL;
    return PyDict_Copy(self->config);
}

static PyMethodDef ie_methods[] = {
    {"forward", (PyCFunction)(void (*)(void))ie_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(pixel_values (N, C, S, S) float32) -> image_embeds (N, projection_dim) float32"},
    {"weight_shapes", (PyCFunction)ie_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(config) -> {transformers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ie_getset[] = {
    {"last_peak_bytes", (getter)ie_get_peak, NULL, "activation arena high-water mark of the last call (bytes)", NULL},
    {"num_parameters", (getter)ie_get_num_parameters, NULL, "number of weight elements", NULL},
    {"config", (getter)ie_get_config, NULL, "a copy of the config dict", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ImageEncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.ImageEncoder",
    .tp_basicsize = sizeof(ImageEncoderObject),
    .tp_dealloc = (destructor)ie_dealloc,
    .tp_call = ie_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ImageEncoder(config: dict, weights: Mapping[str, float32 ndarray]): CLIPVisionModelWithProjection "
              "on the CPU; calling it maps pixel_values (N, C, S, S) to image_embeds (N, projection_dim).",
    .tp_methods = ie_methods,
    .tp_getset = ie_getset,
    .tp_init = (initproc)ie_init,
    .tp_new = PyType_GenericNew,
};

int svdc_py_register_image_encoder(PyObject *module) {
    if (PyType_Ready(&ImageEncoderType) < 0) return -1;
    return PyModule_AddObjectRef(module, "ImageEncoder", (PyObject *)&ImageEncoderType);
}
