/* py_sampler.c — svdc._C.Sampler: the sampling step of csrc/models/sampler.c on any registered device.
 * Sampler(batch, frames, channels, height, width, cond_channels=channels (or 0: no concat), device="cpu");
 * .set_latents(x, scale) .set_cond(c) .model_input(c_in, cfg) -> ndarray
 * .step(model_output, cfg, guidance=None, noise=None, *, c_skip, c_out, update="euler"|"linear", a, b, c=0,
 *       noise_in=0, noise_out=0) .latents -> ndarray copy.
 * The state lives on the device, allocated once; each call stages only its own NumPy arguments/results through the
 * core's transfer service (nothing is copied on the CPU). Every scalar comes from svdc/schedules.py. */
#include "util.h"

#include <math.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/backend.h"
#include "../core/device.h"
#include "../core/transfer.h"
#include "../models/sampler.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD svdc_sampler *sampler;
    svdc_ctx ctx;          /* the device; its arena stages the NumPy arguments of one call */
    int64_t shape[5];      /* B, F, C, h, w */
    int64_t cond_channels; /* channels concatenated to the model input: C (SVD) or 0 */
    char device[32];
    PyThread_type_lock lock;
} SamplerObject;

static int Sampler_init(SamplerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"batch", "frames", "channels", "height", "width", "cond_channels", "device", NULL};
    long long b, f, c, h, w, cond_channels = -1;
    const char *device = "cpu";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLLLL|Ls", kwlist, &b, &f, &c, &h, &w, &cond_channels, &device))
        return -1;
    if (self->sampler) {
        PyErr_SetString(PyExc_RuntimeError, "Sampler: already initialised");
        return -1;
    }
    const svdc_backend *backend;
    int ordinal;
    svdc_status s = svdc_device_parse(device, &backend, &ordinal);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    svdc_sampler_config cfg = {.batch = b, .frames = f, .channels = c, .height = h, .width = w,
                               .cond_channels = cond_channels < 0 ? c : cond_channels};
    self->ctx.backend = backend;
    self->ctx.device = ordinal;
    s = svdc_arena_init(&self->ctx.arena, backend, ordinal);
    if (!s) s = svdc_sampler_init(&self->sampler, &self->ctx, &cfg);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    if (!(self->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        return -1;
    }
    if (backend == svdc_backend_cpu()) snprintf(self->device, sizeof self->device, "cpu");
    else snprintf(self->device, sizeof self->device, "%s:%d", backend->name, ordinal);
    int64_t shape[5] = {b, f, c, h, w};
    memcpy(self->shape, shape, sizeof shape);
    self->cond_channels = cfg.cond_channels;
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

/* One sampler call with host I/O: the NumPy-backed tensors in[] are staged onto the device (out[] given device
 * buffers), the call sees the device views through the same pointers, the outputs come back, and every tensor is
 * its host view again. Runs with the GIL released and the lock held. */
enum { SAMPLER_MAX_IO = 3 };
typedef struct {
    int kind; /* which call */
    float scale, c_in;
    int cfg;
    const float *guidance;
    svdc_sampler_coefs coefs;
    svdc_tensor *in[SAMPLER_MAX_IO], *out;
    int nin;
} sampler_call;

enum { CALL_SET_LATENTS, CALL_SET_COND, CALL_MODEL_INPUT, CALL_STEP, CALL_GET_LATENTS };

static svdc_status dispatch(SamplerObject *self, const sampler_call *a) {
    switch (a->kind) {
    case CALL_SET_LATENTS: return svdc_sampler_set_latents(self->sampler, a->in[0], a->scale);
    case CALL_SET_COND: return svdc_sampler_set_cond(self->sampler, a->in[0]);
    case CALL_MODEL_INPUT: return svdc_sampler_model_input(self->sampler, a->c_in, a->cfg, a->out);
    case CALL_STEP: return svdc_sampler_step(self->sampler, a->in[0], a->cfg, a->guidance, &a->coefs, a->in[1]);
    default: return svdc_sampler_get_latents(self->sampler, a->out);
    }
}

static svdc_status run_staged(SamplerObject *self, sampler_call *a) {
    svdc_tensor host_in[SAMPLER_MAX_IO], host_out;
    svdc_status s = SVDC_OK;
    svdc_arena_reset(self->ctx.arena);
    for (int i = 0; i < a->nin; i++)
        if (a->in[i]) host_in[i] = *a->in[i];
    if (a->out) host_out = *a->out;
    for (int i = 0; i < a->nin && !s; i++)
        if (a->in[i]) s = svdc_transfer_upload(&self->ctx, &host_in[i], host_in[i].dtype, a->in[i]);
    if (!s && a->out) s = svdc_transfer_output(&self->ctx, &host_out, host_out.dtype, a->out);
    if (!s) s = dispatch(self, a);
    if (!s && a->out) s = svdc_transfer_download(&self->ctx, a->out, &host_out);
    for (int i = 0; i < a->nin; i++)
        if (a->in[i]) *a->in[i] = host_in[i];
    if (a->out) *a->out = host_out;
    svdc_arena_reset(self->ctx.arena);
    return s;
}

static PyObject *run(SamplerObject *self, sampler_call *a, PyArrayObject *result) {
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, run_staged(self, a));
    if (s) {
        Py_XDECREF(result);
        return svdc_py_raise(s);
    }
    if (result) return (PyObject *)result;
    Py_RETURN_NONE;
}

static PyObject *Sampler_set_latents(SamplerObject *self, PyObject *args) {
    PyObject *xo;
    float scale = 1.0f;
    if (ready(self) < 0 || !PyArg_ParseTuple(args, "O|f", &xo, &scale)) return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "latents", 5);
    if (!x) return NULL;
    svdc_tensor t = svdc_py_tensor(x);
    sampler_call a = {.kind = CALL_SET_LATENTS, .scale = scale, .in = {&t}, .nin = 1};
    PyObject *r = run(self, &a, NULL);
    Py_DECREF(x);
    return r;
}

static PyObject *Sampler_set_cond(SamplerObject *self, PyObject *arg) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *c = svdc_py_f32_array(arg, "cond", 4);
    if (!c) return NULL;
    svdc_tensor t = svdc_py_tensor(c);
    sampler_call a = {.kind = CALL_SET_COND, .in = {&t}, .nin = 1};
    PyObject *r = run(self, &a, NULL);
    Py_DECREF(c);
    return r;
}

static PyObject *Sampler_model_input(SamplerObject *self, PyObject *args) {
    float c_in;
    int cfg;
    if (ready(self) < 0 || !PyArg_ParseTuple(args, "fp", &c_in, &cfg)) return NULL;
    int64_t shape[5] = {cfg ? 2 * self->shape[0] : self->shape[0], self->shape[1],
                        self->shape[2] + self->cond_channels, self->shape[3], self->shape[4]};
    PyArrayObject *out = svdc_py_new_f32(5, shape);
    if (!out) return NULL;
    svdc_tensor t = svdc_py_tensor(out);
    sampler_call a = {.kind = CALL_MODEL_INPUT, .c_in = c_in, .cfg = cfg, .out = &t};
    return run(self, &a, out);
}

static PyObject *Sampler_step(SamplerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model_output", "cfg", "guidance", "noise", "c_skip", "c_out", "update", "a", "b",
                             "c", "noise_in", "noise_out", NULL};
    int cfg;
    PyObject *fo, *go = Py_None, *no = Py_None;
    const char *update = "euler";
    /* NaN marks the coefficients every step must give (the rest default to 0) */
    svdc_sampler_coefs k = {.c_skip = NAN, .c_out = NAN, .a = NAN, .b = NAN};
    if (ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "Op|OO$ffsfffff", kwlist, &fo, &cfg, &go, &no, &k.c_skip, &k.c_out,
                                     &update, &k.a, &k.b, &k.c, &k.noise_in, &k.noise_out))
        return NULL;
    const float required[] = {k.c_skip, k.c_out, k.a, k.b};
    static const char *names[] = {"c_skip", "c_out", "a", "b"};
    for (int i = 0; i < 4; i++)
        if (isnan(required[i])) {
            PyErr_Format(PyExc_TypeError, "step: the coefficient %s is required (a keyword argument)", names[i]);
            return NULL;
        }
    if (!strcmp(update, "euler"))
        k.update = SVDC_UPDATE_EULER;
    else if (!strcmp(update, "linear"))
        k.update = SVDC_UPDATE_LINEAR;
    else {
        PyErr_Format(PyExc_ValueError, "update: expected 'euler' or 'linear', got '%s'", update);
        return NULL;
    }
    PyArrayObject *f = svdc_py_f32_array(fo, "model_output", 5), *g = NULL, *n = NULL;
    PyObject *result = NULL;
    if (!f) return NULL;
    if (go != Py_None) {
        if (!(g = svdc_py_f32_array(go, "guidance", 1))) goto done;
        if (PyArray_DIM(g, 0) != self->shape[1]) {
            PyErr_Format(svdc_py_ShapeError, "guidance: expected shape (%lld,) (one scale per frame), got (%zd,)",
                         (long long)self->shape[1], (Py_ssize_t)PyArray_DIM(g, 0));
            goto done;
        }
    }
    if (no != Py_None && !(n = svdc_py_f32_array(no, "noise", 5))) goto done;
    svdc_tensor tf = svdc_py_tensor(f), tn;
    if (n) tn = svdc_py_tensor(n);
    sampler_call a = {.kind = CALL_STEP, .cfg = cfg, .guidance = g ? (const float *)PyArray_DATA(g) : NULL,
                      .coefs = k, .in = {&tf, n ? &tn : NULL}, .nin = 2};
    result = run(self, &a, NULL);
done:
    Py_XDECREF(f);
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
    sampler_call a = {.kind = CALL_GET_LATENTS, .out = &t};
    return run(self, &a, out);
}

static PyObject *Sampler_get_shape(SamplerObject *self, void *closure) {
    (void)closure;
    return Py_BuildValue("(LLLLL)", (long long)self->shape[0], (long long)self->shape[1], (long long)self->shape[2],
                         (long long)self->shape[3], (long long)self->shape[4]);
}

static PyObject *Sampler_get_device(SamplerObject *self, void *closure) {
    (void)closure;
    if (ready(self) < 0) return NULL;
    return PyUnicode_FromString(self->device);
}

static PyMethodDef Sampler_methods[] = {
    {"set_latents", (PyCFunction)Sampler_set_latents, METH_VARARGS,
     "set_latents(x (B,F,C,h,w) float32, scale=1.0): x·scale becomes the sampler state (D_prev is forgotten)."},
    {"set_cond", (PyCFunction)Sampler_set_cond, METH_O,
     "set_cond(c (B,C,h,w) float32): the conditioning latents, repeated over frames (default zeros)."},
    {"model_input", (PyCFunction)Sampler_model_input, METH_VARARGS,
     "model_input(c_in, cfg) -> (2B or B, F, C + cond_channels, h, w): [x;x]·c_in with [0; cond] on the channels."},
    {"step", (PyCFunction)(void (*)(void))Sampler_step, METH_VARARGS | METH_KEYWORDS,
     "step(model_output, cfg, guidance=None, noise=None, *, c_skip, c_out, update, a, b, c=0, noise_in=0, "
     "noise_out=0): one step (see csrc/models/sampler.h)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sampler_getset[] = {
    {"latents", (getter)Sampler_get_latents, NULL, "a host copy of the current latents (B, F, C, h, w)", NULL},
    {"shape", (getter)Sampler_get_shape, NULL, "(B, F, C, h, w)", NULL},
    {"device", (getter)Sampler_get_device, NULL, "the device the state lives on", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.Sampler",
    .tp_basicsize = sizeof(SamplerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sampler(batch, frames, channels, height, width, cond_channels=channels, device='cpu'): the tensor "
              "work of a sampling step; latents stay on the device across steps.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sampler_init,
    .tp_dealloc = (destructor)Sampler_dealloc,
    .tp_methods = Sampler_methods,
    .tp_getset = Sampler_getset,
};

int svdc_py_register_sampler(PyObject *module) {
    return svdc_py_add_type(module, &SamplerType, "Sampler");
}
