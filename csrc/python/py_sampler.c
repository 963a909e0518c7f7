/* py_sampler.c — svdc._C.Sampler: the Euler/EDM/CFG sampler of csrc/models/sampler.c on the CPU backend.
 * Sampler(batch, frames, channels, height, width, sigmas, s_churn=0, s_tmin=0, s_tmax=inf, s_noise=1,
 *         prediction_type="v_prediction" | "epsilon" | "sample", cond_channels=channels (or 0: no concat));
 * .set_latents(x, scale) .set_cond(c) .model_input(step, cfg) -> ndarray .gamma(step) -> float
 * .step(step, v, cfg, guidance=None, noise=None) .latents -> ndarray copy. Each call is bounded (one step). */
#include "util.h"

#include <math.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/backend.h"
#include "../models/sampler.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD svdc_sampler *sampler;
    svdc_ctx ctx;
    int64_t shape[5]; /* B, F, C, h, w */
    int64_t cond_channels; /* channels concatenated to the model input: C (SVD) or 0 */
    int num_steps;
    PyThread_type_lock lock;
} SamplerObject;

static int Sampler_init(SamplerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"batch", "frames", "channels", "height", "width", "sigmas",
                             "s_churn", "s_tmin", "s_tmax", "s_noise", "prediction_type", "cond_channels", NULL};
    long long b, f, c, h, w, cond_channels = -1;
    PyObject *sigmas_obj;
    float s_churn = 0.0f, s_tmin = 0.0f, s_tmax = INFINITY, s_noise = 1.0f;
    const char *prediction = "v_prediction";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLLLLO|ffffsL", kwlist, &b, &f, &c, &h, &w, &sigmas_obj, &s_churn,
                                     &s_tmin, &s_tmax, &s_noise, &prediction, &cond_channels))
        return -1;
    svdc_prediction pred;
    if (!strcmp(prediction, "v_prediction"))
        pred = SVDC_PREDICTION_V;
    else if (!strcmp(prediction, "epsilon"))
        pred = SVDC_PREDICTION_EPSILON;
    else if (!strcmp(prediction, "sample"))
        pred = SVDC_PREDICTION_SAMPLE;
    else {
        PyErr_Format(PyExc_ValueError, "prediction_type: expected 'v_prediction', 'epsilon' or 'sample', got '%s'",
                     prediction);
        return -1;
    }
    if (self->sampler) {
        PyErr_SetString(PyExc_RuntimeError, "Sampler: already initialised");
        return -1;
    }
    PyArrayObject *sig = svdc_py_f32_array(sigmas_obj, "sigmas", 1);
    if (!sig) return -1;
    npy_intp n = PyArray_DIM(sig, 0);
    if (n < 2) {
        PyErr_Format(PyExc_ValueError, "sigmas: expected at least 2 values (N steps + the final sigma), got %zd",
                     (Py_ssize_t)n);
        Py_DECREF(sig);
        return -1;
    }
    svdc_sampler_config cfg = {.batch = b, .frames = f, .channels = c, .height = h, .width = w,
                               .num_steps = (int)(n - 1), .sigmas = (const float *)PyArray_DATA(sig),
                               .s_churn = s_churn, .s_tmin = s_tmin, .s_tmax = s_tmax, .s_noise = s_noise,
                               .prediction = pred, .cond_channels = cond_channels < 0 ? c : cond_channels};
    self->ctx.backend = svdc_backend_cpu();
    self->ctx.device = SVDC_DEVICE_CPU;
    svdc_status s = svdc_arena_init(&self->ctx.arena, self->ctx.backend, SVDC_DEVICE_CPU);
    if (!s) s = svdc_sampler_init(&self->sampler, &self->ctx, &cfg);
    Py_DECREF(sig);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    if (!(self->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t shape[5] = {b, f, c, h, w};
    memcpy(self->shape, shape, sizeof shape);
    self->cond_channels = cfg.cond_channels;
    self->num_steps = (int)(n - 1);
    return 0;
}

static void Sampler_dealloc(SamplerObject *self) {
    svdc_sampler_free(self->sampler);
    svdc_arena_free(self->ctx.arena);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(SamplerObject *self) {
    if (self->sampler && self->lock) return 0;
    PyErr_SetString(svdc_py_SvdcError, "Sampler: not initialised");
    return -1;
}

static PyObject *Sampler_set_latents(SamplerObject *self, PyObject *args) {
    PyObject *xo;
    float scale = 1.0f;
    if (ready(self) < 0 || !PyArg_ParseTuple(args, "O|f", &xo, &scale)) return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "latents", 5);
    if (!x) return NULL;
    svdc_tensor t = svdc_py_tensor(x);
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_sampler_set_latents(self->sampler, &t, scale));
    Py_DECREF(x);
    if (s) return svdc_py_raise(s);
    Py_RETURN_NONE;
}

static PyObject *Sampler_set_cond(SamplerObject *self, PyObject *arg) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *c = svdc_py_f32_array(arg, "cond", 4);
    if (!c) return NULL;
    svdc_tensor t = svdc_py_tensor(c);
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_sampler_set_cond(self->sampler, &t));
    Py_DECREF(c);
    if (s) return svdc_py_raise(s);
    Py_RETURN_NONE;
}

static PyObject *Sampler_model_input(SamplerObject *self, PyObject *args) {
    int step, cfg;
    if (ready(self) < 0 || !PyArg_ParseTuple(args, "ip", &step, &cfg)) return NULL;
    int64_t shape[5] = {cfg ? 2 * self->shape[0] : self->shape[0], self->shape[1],
                        self->shape[2] + self->cond_channels, self->shape[3], self->shape[4]};
    PyArrayObject *out = svdc_py_new_f32(5, shape);
    if (!out) return NULL;
    svdc_tensor t = svdc_py_tensor(out);
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_sampler_model_input(self->sampler, step, cfg, &t));
    if (s) {
        Py_DECREF(out);
        return svdc_py_raise(s);
    }
    return (PyObject *)out;
}

static PyObject *Sampler_gamma(SamplerObject *self, PyObject *arg) {
    if (ready(self) < 0) return NULL;
    long step = PyLong_AsLong(arg);
    if (step == -1 && PyErr_Occurred()) return NULL;
    if (step < 0 || step >= self->num_steps) {
        PyErr_Format(PyExc_ValueError, "step: expected 0 <= step < %d, got %ld", self->num_steps, step);
        return NULL;
    }
    return PyFloat_FromDouble(svdc_sampler_gamma(self->sampler, (int)step));
}

static PyObject *Sampler_step(SamplerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"step", "v", "cfg", "guidance", "noise", NULL};
    int step, cfg;
    PyObject *vo, *go = Py_None, *no = Py_None;
    if (ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "iOp|OO", kwlist, &step, &vo, &cfg, &go, &no))
        return NULL;
    PyArrayObject *v = svdc_py_f32_array(vo, "v", 5), *g = NULL, *n = NULL;
    PyObject *result = NULL;
    if (!v) return NULL;
    if (go != Py_None) {
        if (!(g = svdc_py_f32_array(go, "guidance", 1))) goto done;
        if (PyArray_DIM(g, 0) != self->shape[1]) {
            PyErr_Format(svdc_py_ShapeError, "guidance: expected shape (%lld,) (one scale per frame), got (%zd,)",
                         (long long)self->shape[1], (Py_ssize_t)PyArray_DIM(g, 0));
            goto done;
        }
    }
    if (no != Py_None && !(n = svdc_py_f32_array(no, "noise", 5))) goto done;
    svdc_tensor tv = svdc_py_tensor(v), tn;
    if (n) tn = svdc_py_tensor(n);
    const float *gd = g ? (const float *)PyArray_DATA(g) : NULL;
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_sampler_step(self->sampler, step, &tv, cfg, gd, n ? &tn : NULL));
    if (s) {
        svdc_py_raise(s);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    Py_XDECREF(v);
    Py_XDECREF(g);
    Py_XDECREF(n);
    return result;
}

static PyObject *Sampler_get_latents(SamplerObject *self, void *closure) {
    (void)closure;
    if (ready(self) < 0) return NULL;
    PyArrayObject *out = svdc_py_new_f32(5, self->shape);
    if (!out) return NULL;
    svdc_tensor t = svdc_py_tensor(out);
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_sampler_get_latents(self->sampler, &t));
    if (s) {
        Py_DECREF(out);
        return svdc_py_raise(s);
    }
    return (PyObject *)out;
}

static PyObject *Sampler_get_num_steps(SamplerObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->num_steps);
}

static PyObject *Sampler_get_shape(SamplerObject *self, void *closure) {
    (void)closure;
    return Py_BuildValue("(LLLLL)", (long long)self->shape[0], (long long)self->shape[1], (long long)self->shape[2],
                         (long long)self->shape[3], (long long)self->shape[4]);
}

static PyMethodDef Sampler_methods[] = {
    {"set_latents", (PyCFunction)Sampler_set_latents, METH_VARARGS,
     "set_latents(x (B,F,C,h,w) float32, scale=1.0): x·scale becomes the sampler state."},
    {"set_cond", (PyCFunction)Sampler_set_cond, METH_O,
     "set_cond(c (B,C,h,w) float32): the conditioning latents, repeated over frames (default zeros)."},
    {"model_input", (PyCFunction)Sampler_model_input, METH_VARARGS,
     "model_input(step, cfg) -> (2B or B, F, 2C, h, w): [x;x]·c_in concatenated with [0; cond] along channels."},
    {"gamma", (PyCFunction)Sampler_gamma, METH_O, "gamma(step) -> the churn gamma (noise is needed iff > 0)."},
    {"step", (PyCFunction)(void (*)(void))Sampler_step, METH_VARARGS | METH_KEYWORDS,
     "step(step, v, cfg, guidance=None, noise=None): one Euler step with per-frame CFG."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sampler_getset[] = {
    {"latents", (getter)Sampler_get_latents, NULL, "a copy of the current latents (B, F, C, h, w)", NULL},
    {"num_steps", (getter)Sampler_get_num_steps, NULL, "N", NULL},
    {"shape", (getter)Sampler_get_shape, NULL, "(B, F, C, h, w)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.Sampler",
    .tp_basicsize = sizeof(SamplerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sampler(batch, frames, channels, height, width, sigmas, s_churn=0, s_tmin=0, s_tmax=inf, "
              "s_noise=1): SVD's Euler sampler; latents stay inside across steps.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sampler_init,
    .tp_dealloc = (destructor)Sampler_dealloc,
    .tp_methods = Sampler_methods,
    .tp_getset = Sampler_getset,
};

int svdc_py_register_sampler(PyObject *module) {
    return svdc_py_add_type(module, &SamplerType, "Sampler");
}
