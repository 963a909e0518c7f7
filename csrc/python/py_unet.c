/* py_unet.c — svdc._C.UNet: the spatio-temporal UNet on the CPU backend. Takes the normalised config dict of
 * svdc/configs/unet.py and a weight Mapping (diffusers names); forward() runs one denoiser evaluation. */
#include "util.h"

#include <pythread.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/backend.h"
#include "../models/unet.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD svdc_unet *unet;
    svdc_arena *arena;
    PyThread_type_lock lock;
    size_t last_peak;
} PyUNet;

/* ---------------------------------------------------------------------------------------------------------------
 * Config dict -> svdc_unet_config (keys written by svdc/configs/unet.py: to_native()) */

static int get_int(PyObject *cfg, const char *key, int *out) {
    PyObject *v = PyDict_GetItemString(cfg, key); /* borrowed */
    if (!v) {
        PyErr_Format(PyExc_KeyError, "UNet config: missing key '%s'", key);
        return -1;
    }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "UNet config: '%s' must be an int, got %R", key, v);
        return -1;
    }
    if (x < -2147483647L || x > 2147483647L) {
        PyErr_Format(PyExc_ValueError, "UNet config: '%s' = %ld is out of range", key, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* A list of ints of exactly `n` entries (n < 0: any length up to cap, written to *n_out). */
static int get_int_list(PyObject *cfg, const char *key, int *out, int cap, int n, int *n_out) {
    PyObject *v = PyDict_GetItemString(cfg, key);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "UNet config: missing key '%s'", key);
        return -1;
    }
    PyObject *seq = PySequence_Fast(v, "UNet config: expected a list");
    if (!seq) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    if ((n >= 0 && len != n) || len > cap || len < 1) {
        PyErr_Format(PyExc_ValueError, "UNet config: '%s' has %zd entries, expected %d", key, len, n >= 0 ? n : cap);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        long x = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (x == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "UNet config: '%s'[%zd] must be an int", key, i);
            Py_DECREF(seq);
            return -1;
        }
        out[i] = (int)x;
    }
    if (n_out) *n_out = (int)len;
    Py_DECREF(seq);
    return 0;
}

static int parse_config(PyObject *cfg, svdc_unet_config *c) {
    memset(c, 0, sizeof *c);
    if (!PyDict_Check(cfg)) {
        PyErr_SetString(PyExc_TypeError, "UNet config must be a dict");
        return -1;
    }
    const int M = SVDC_UNET_MAX_LEVELS;
    if (get_int(cfg, "in_channels", &c->in_channels) || get_int(cfg, "out_channels", &c->out_channels) ||
        get_int_list(cfg, "block_out_channels", c->block_out_channels, M, -1, &c->num_levels))
        return -1;
    const int n = c->num_levels;
    if (get_int_list(cfg, "down_attention", c->down_attention, M, n, NULL) ||
        get_int_list(cfg, "up_attention", c->up_attention, M, n, NULL) ||
        get_int_list(cfg, "layers_per_block", c->layers_per_block, M, n, NULL) ||
        get_int_list(cfg, "num_attention_heads", c->num_attention_heads, M, n, NULL) ||
        get_int_list(cfg, "transformer_layers", c->transformer_layers, M, n, NULL) ||
        get_int(cfg, "cross_attention_dim", &c->cross_attention_dim) ||
        get_int_list(cfg, "id_widths", c->id_widths, SVDC_UNET_MAX_IDS, -1, &c->num_ids) ||
        get_int(cfg, "projection_input_dim", &c->projection_input_dim) || get_int(cfg, "sgm_eps", &c->sgm_eps))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Type */

static void unet_dealloc(PyUNet *self) {
    svdc_unet_free(self->unet);
    svdc_arena_free(self->arena);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int unet_init(PyUNet *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"config", "weights", NULL};
    PyObject *cfg, *weights;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", kwlist, &cfg, &weights)) return -1;
    if (self->unet) {
        PyErr_SetString(PyExc_RuntimeError, "UNet is already initialised");
        return -1;
    }
    svdc_unet_config c;
    if (parse_config(cfg, &c) < 0) return -1;
    const svdc_backend *be = svdc_backend_cpu();
    svdc_status s;
    svdc_unet *u = NULL;
    Py_BEGIN_ALLOW_THREADS s = svdc_unet_init(&u, &c, be, SVDC_DEVICE_CPU);
    Py_END_ALLOW_THREADS if (s) {
        svdc_py_raise(s);
        return -1;
    }
    if (svdc_py_load_params(&u->params, weights, "UNet") < 0) {
        svdc_unet_free(u);
        return -1;
    }
    if ((s = svdc_arena_init(&self->arena, be, SVDC_DEVICE_CPU))) {
        svdc_unet_free(u);
        svdc_py_raise(s);
        return -1;
    }
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        svdc_unet_free(u);
        PyErr_NoMemory();
        return -1;
    }
    self->unet = u;
    return 0;
}

static int ready(PyUNet *self) {
    if (self->unet) return 1;
    PyErr_SetString(PyExc_RuntimeError, "UNet is not initialised");
    return 0;
}

/* forward(sample (B*F, Cin, h, w), num_frames, timesteps (B,), context (B, L, D), ids (B*F, n)) -> (B*F, Cout, h, w) */
static PyObject *unet_forward(PyUNet *self, PyObject *args) {
    PyObject *so, *to, *co, *io;
    int num_frames;
    if (!ready(self) || !PyArg_ParseTuple(args, "OiOOO", &so, &num_frames, &to, &co, &io)) return NULL;
    PyArrayObject *sa = NULL, *ta = NULL, *ca = NULL, *ia = NULL, *ya = NULL;
    if (!(sa = svdc_py_f32_array(so, "sample", 4)) || !(ta = svdc_py_f32_array(to, "timesteps", 1)) ||
        !(ca = svdc_py_f32_array(co, "encoder_hidden_states", 3)) || !(ia = svdc_py_f32_array(io, "added_time_ids", 2)))
        goto done;
    svdc_tensor st = svdc_py_tensor(sa), tt = svdc_py_tensor(ta), ct = svdc_py_tensor(ca), it = svdc_py_tensor(ia);
    int64_t yshape[4] = {st.shape[0], self->unet->cfg.out_channels, st.shape[2], st.shape[3]};
    if (!(ya = svdc_py_new_f32(4, yshape))) goto done;
    svdc_tensor yt = svdc_py_tensor(ya);
    svdc_status s;
    size_t peak = 0;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    svdc_ctx ctx = {svdc_backend_cpu(), self->arena, SVDC_DEVICE_CPU};
    svdc_arena_reset(self->arena);
    svdc_arena_reset_peak(self->arena);
    s = svdc_unet_forward(&ctx, self->unet, &st, num_frames, &tt, &ct, &it, &yt);
    peak = svdc_arena_peak(self->arena);
    svdc_arena_reset(self->arena);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (s) {
        svdc_py_raise(s);
        Py_CLEAR(ya);
        goto done;
    }
    self->last_peak = peak;
done:
    Py_XDECREF(sa);
    Py_XDECREF(ta);
    Py_XDECREF(ca);
    Py_XDECREF(ia);
    return (PyObject *)ya;
}

/* embedding(timesteps (B,), ids (B*F, n), num_frames) -> emb (B*F, 4*C0): the per-frame conditioning vector */
static PyObject *unet_embedding(PyUNet *self, PyObject *args) {
    PyObject *to, *io;
    int num_frames;
    if (!ready(self) || !PyArg_ParseTuple(args, "OOi", &to, &io, &num_frames)) return NULL;
    PyArrayObject *ta = NULL, *ia = NULL, *ya = NULL;
    if (!(ta = svdc_py_f32_array(to, "timesteps", 1)) || !(ia = svdc_py_f32_array(io, "added_time_ids", 2))) goto done;
    svdc_tensor tt = svdc_py_tensor(ta), it = svdc_py_tensor(ia);
    int64_t yshape[2] = {it.shape[0], 4 * (int64_t)self->unet->cfg.block_out_channels[0]};
    if (!(ya = svdc_py_new_f32(2, yshape))) goto done;
    svdc_tensor yt = svdc_py_tensor(ya);
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    svdc_ctx ctx = {svdc_backend_cpu(), self->arena, SVDC_DEVICE_CPU};
    svdc_arena_reset(self->arena);
    s = svdc_unet_embedding(&ctx, self->unet, &tt, &it, num_frames, &yt);
    svdc_arena_reset(self->arena);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (s) {
        svdc_py_raise(s);
        Py_CLEAR(ya);
    }
done:
    Py_XDECREF(ta);
    Py_XDECREF(ia);
    return (PyObject *)ya;
}

static PyObject *unet_get_peak(PyUNet *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(self->last_peak);
}

static PyObject *unet_get_num_parameters(PyUNet *self, void *closure) {
    (void)closure;
    if (!ready(self)) return NULL;
    return PyLong_FromLongLong((long long)svdc_params_count_elements(&self->unet->params));
}

/* weight_shapes(config) -> {diffusers name: shape}: the table a UNet of this config declares (no weights read). */
static PyObject *unet_weight_shapes(PyObject *cls, PyObject *cfg) {
    (void)cls;
    svdc_unet_config c;
    if (parse_config(cfg, &c) < 0) return NULL;
    svdc_unet *u = NULL;
    svdc_status s = svdc_unet_init(&u, &c, svdc_backend_cpu(), SVDC_DEVICE_CPU);
    if (s) return svdc_py_raise(s);
    PyObject *d = svdc_py_params_shapes(&u->params);
    svdc_unet_free(u);
    return d;
}

static PyMethodDef unet_methods[] = {
    {"forward", (PyCFunction)unet_forward, METH_VARARGS,
     "forward(sample (B*F,Cin,h,w), num_frames, timesteps (B,), context (B,L,D), added_ids (B*F,n)) -> "
     "(B*F,Cout,h,w)"},
    {"embedding", (PyCFunction)unet_embedding, METH_VARARGS,
     "embedding(timesteps (B,), added_ids (B*F,n), num_frames) -> per-frame conditioning (B*F, 4*C0)"},
    {"weight_shapes", (PyCFunction)unet_weight_shapes, METH_O | METH_CLASS,
     "weight_shapes(native config) -> {diffusers name: shape} declared for that config (no weights needed)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef unet_getset[] = {
    {"last_peak_bytes", (getter)unet_get_peak, NULL, "arena high-water mark of the last forward, in bytes", NULL},
    {"num_parameters", (getter)unet_get_num_parameters, NULL, "number of weights (elements)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyUNet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.UNet",
    .tp_basicsize = sizeof(PyUNet),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "UNet(config: dict, weights: Mapping[str, float32 ndarray]): UNetSpatioTemporalConditionModel on the CPU",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)unet_init,
    .tp_dealloc = (destructor)unet_dealloc,
    .tp_methods = unet_methods,
    .tp_getset = unet_getset,
};

int svdc_py_register_unet(PyObject *module) {
    if (PyType_Ready(&PyUNet_Type) < 0) return -1;
    Py_INCREF(&PyUNet_Type);
    if (PyModule_AddObject(module, "UNet", (PyObject *)&PyUNet_Type) < 0) {
        Py_DECREF(&PyUNet_Type);
        return -1;
    }
    return 0;
}
