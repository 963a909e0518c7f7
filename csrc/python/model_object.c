/* model_object.c — construction, teardown, locking and the common getters of the model binding types (see
 * model_object.h). */
#include "model_object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/device.h"
#include "../core/plan.h"
#include "../core/transfer.h"
#include "../core/try.h"

/* Frees everything the object holds and leaves it unusable. */
static void model_clear(svdc_py_model *self) {
    if (self->kind) self->kind->destroy(self->model);
    self->model = NULL;
    Py_CLEAR(self->borrowed); /* after the model: its borrowed weight slots point into these views */
    svdc_arena_free(self->ctx.arena);
    self->ctx.arena = NULL;
    if (self->lock) PyThread_free_lock(self->lock);
    self->lock = NULL;
    Py_CLEAR(self->config);
}

/* Parses `config` and creates the model on `backend`/`device` (GIL released while it builds its tables). */
static void *create_model(const svdc_py_model_kind *kind, PyObject *config, const svdc_backend *backend, int device) {
    void *cfg = calloc(1, kind->config_size);
    if (!cfg) return PyErr_NoMemory();
    void *model = NULL;
    if (kind->parse_config(config, cfg) == 0) {
        svdc_status s;
        Py_BEGIN_ALLOW_THREADS s = kind->create(&model, cfg, backend, device);
        Py_END_ALLOW_THREADS if (s) {
            model = NULL;
            svdc_py_raise(s);
        }
    }
    free(cfg);
    return model;
}

/* The weight storage dtype named by `name` ("fp32", "fp16", "bf16"; svdc.runtime.resolve_dtype maps the aliases). */
static int parse_storage_dtype(const char *name, svdc_dtype *out) {
    if (!strcmp(name, "fp32")) *out = SVDC_DTYPE_F32;
    else if (!strcmp(name, "fp16")) *out = SVDC_DTYPE_F16;
    else if (!strcmp(name, "bf16")) *out = SVDC_DTYPE_BF16;
    else {
        PyErr_Format(PyExc_ValueError, "dtype: expected 'fp32', 'fp16' or 'bf16', got '%s'", name);
        return -1;
    }
    return 0;
}

int svdc_py_model_init(svdc_py_model *self, const svdc_py_model_kind *kind, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"config", "weights", "device", "dtype", NULL};
    PyObject *config, *weights;
    const char *device = "cpu", *dtype_name = "fp32";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|ss", kwlist, &config, &weights, &device, &dtype_name))
        return -1;
    svdc_dtype dtype;
    if (parse_storage_dtype(dtype_name, &dtype) < 0) return -1;
    if (self->model) {
        PyErr_Format(PyExc_RuntimeError, "%s: already initialised", kind->name);
        return -1;
    }
    model_clear(self); /* a previous failed construction may have left parts behind */
    self->kind = kind;
    const svdc_backend *backend;
    int ordinal;
    svdc_status s = svdc_device_parse(device, &backend, &ordinal);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    if (backend == svdc_backend_cpu()) snprintf(self->device, sizeof self->device, "cpu");
    else snprintf(self->device, sizeof self->device, "%s:%d", backend->name, ordinal);
    if (!(self->model = create_model(kind, config, backend, ordinal))) return -1;
    /* Models declare float32 tables; the storage dtype is chosen here, before the first weight is loaded. */
    if ((s = svdc_params_set_dtype(kind->params(self->model), dtype))) {
        svdc_py_raise(s);
        goto fail;
    }
    if (svdc_py_load_params(kind->params(self->model), weights, kind->name, &self->borrowed) < 0) goto fail;
    self->ctx.backend = backend;
    self->ctx.device = ordinal;
    if ((s = svdc_arena_init(&self->ctx.arena, backend, ordinal))) {
        svdc_py_raise(s);
        goto fail;
    }
    if (!(self->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        goto fail;
    }
    if (!(self->config = PyDict_New()) || PyDict_Merge(self->config, config, 1) < 0) goto fail;
    return 0;
fail:
    model_clear(self);
    return -1;
}

void svdc_py_model_dealloc(PyObject *self) {
    model_clear((svdc_py_model *)self);
    Py_TYPE(self)->tp_free(self);
}

int svdc_py_model_ready(svdc_py_model *self) {
    if (self->model) return 1;
    PyErr_Format(PyExc_RuntimeError, "%s: not initialised (construction failed)",
                 self->kind ? self->kind->name : Py_TYPE(self)->tp_name);
    return 0;
}

/* Runs the call in `ctx` with the staged I/O (see model_object.h); the lock is held, the GIL released. */
static svdc_status run_staged(svdc_py_model *self, const svdc_ctx *ctx, svdc_py_model_call call, void *args,
                              svdc_tensor *const *in, int nin, svdc_tensor *const *out, int nout) {
    enum { MAX_IO = 8 };
    if (nin > MAX_IO || nout > MAX_IO) return svdc_fail(SVDC_ERR_INTERNAL, "model call: more than %d inputs", MAX_IO);
    svdc_tensor host_in[MAX_IO], host_out[MAX_IO];
    for (int i = 0; i < nin; i++) host_in[i] = *in[i];
    for (int o = 0; o < nout; o++) host_out[o] = *out[o];
    svdc_status s = SVDC_OK;
    svdc_ctx call_ctx = *ctx; /* the call takes a mutable context */
    for (int i = 0; i < nin && !s; i++) s = svdc_transfer_upload(ctx, &host_in[i], host_in[i].dtype, in[i]);
    for (int o = 0; o < nout && !s; o++) s = svdc_transfer_output(ctx, &host_out[o], host_out[o].dtype, out[o]);
    if (!s) s = call(&call_ctx, self->model, args);
    for (int o = 0; o < nout && !s; o++) s = svdc_transfer_download(ctx, out[o], &host_out[o]);
    for (int i = 0; i < nin; i++) *in[i] = host_in[i];
    for (int o = 0; o < nout; o++) *out[o] = host_out[o];
    return s;
}

/* The measuring pass (core/plan.h): the same call and staging against the backend's measuring table and a
 * measuring arena; *peak is the device arena the real call needs. */
static svdc_status measure_call(svdc_py_model *self, svdc_py_model_call call, void *args, svdc_tensor *const *in,
                                int nin, svdc_tensor *const *out, int nout, size_t *peak) {
    svdc_backend measuring;
    svdc_plan_backend(self->ctx.backend, &measuring);
    svdc_ctx ctx = {&measuring, NULL, self->ctx.device};
    SVDC_TRY(svdc_arena_init_measuring(&ctx.arena, self->ctx.device));
    svdc_status s = run_staged(self, &ctx, call, args, in, nin, out, nout);
    *peak = svdc_arena_peak(ctx.arena);
    svdc_arena_free(ctx.arena);
    return s;
}

svdc_status svdc_py_model_run_io(svdc_py_model *self, svdc_py_model_call call, void *args, int record_peak,
                                 svdc_tensor *const *in, int nin, svdc_tensor *const *out, int nout) {
    svdc_status s;
    size_t peak = 0, planned = 0;
    const int on_host = self->ctx.backend == svdc_backend_cpu();
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    svdc_arena *arena = self->ctx.arena;
    const size_t reserved_before = svdc_arena_reserved(arena);
    svdc_arena_reset(arena);
    svdc_arena_reset_peak(arena);
    /* The weights are final once loaded; their derived layouts (the CPU's packed weights: seconds of work and a
     * copy in memory for a full UNet) are made once, by the first call, so that loading runs at disk speed. */
    s = self->prepared ? SVDC_OK : svdc_params_prepare(self->kind->params(self->model));
    if (!s) self->prepared = 1;
    /* On a device: measure first and hold the peak in one block before anything runs, so the call neither
     * allocates nor frees device memory (no cudaFree mid-forward; a precondition for CUDA graphs). A larger block
     * held from an earlier call is kept. */
    if (!s && !on_host) s = measure_call(self, call, args, in, nin, out, nout, &planned);
    if (!s && !on_host) s = svdc_arena_reserve(arena, planned);
    if (!s) s = run_staged(self, &self->ctx, call, args, in, nin, out, nout);
    peak = svdc_arena_peak(arena);
    svdc_arena_reset(arena);
    if (on_host) {
        if (self->kind->trim_after_call) svdc_arena_trim(arena);
    } else if (s) {
        /* Back to what the arena held before the call: a failure leaves no device memory behind. */
        if (svdc_arena_reserved(arena) != reserved_before) {
            svdc_arena_trim(arena);
            if (reserved_before) {
                char text[1024];
                snprintf(text, sizeof text, "%s", svdc_last_error()); /* keep the call's message */
                svdc_arena_reserve(arena, reserved_before);
                svdc_fail(s, "%s", text);
            }
        }
    } else if (svdc_arena_num_chunks(arena) > 1) {
        /* The call outgrew its plan (a kernel that takes arena scratch without declaring it in scratch_ops): one
         * block at the measured peak for the next call. */
        svdc_arena_trim(arena);
        svdc_arena_reserve(arena, peak); /* on failure the next call allocates as it goes */
    }
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (record_peak) {
        self->last_peak = peak;
        self->last_planned = planned;
    }
    return s;
}

svdc_status svdc_py_model_plan_io(svdc_py_model *self, svdc_py_model_call call, void *args, svdc_tensor *const *in,
                                  int nin, svdc_tensor *const *out, int nout, size_t *planned) {
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    s = measure_call(self, call, args, in, nin, out, nout, planned);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS return s;
}

svdc_status svdc_py_model_run(svdc_py_model *self, svdc_py_model_call call, void *args, int record_peak) {
    return svdc_py_model_run_io(self, call, args, record_peak, NULL, 0, NULL, 0);
}

PyObject *svdc_py_model_result(svdc_status status, PyArrayObject *out) {
    if (!status) return (PyObject *)out;
    Py_XDECREF(out);
    return svdc_py_raise(status);
}

PyObject *svdc_py_model_weight_shapes(const svdc_py_model_kind *kind, PyObject *config) {
    void *model = create_model(kind, config, svdc_backend_cpu(), SVDC_DEVICE_CPU);
    if (!model) return NULL;
    PyObject *shapes = svdc_py_params_shapes(kind->params(model));
    kind->destroy(model);
    return shapes;
}

PyObject *svdc_py_model_get_last_peak(PyObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(((svdc_py_model *)self)->last_peak);
}

PyObject *svdc_py_model_get_num_parameters(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyLong_FromLongLong((long long)svdc_params_count_elements(m->kind->params(m->model)));
}

PyObject *svdc_py_model_get_config(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyDict_Copy(m->config);
}

PyObject *svdc_py_model_get_device(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyUnicode_FromString(m->device);
}

PyObject *svdc_py_model_get_last_planned(PyObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(((svdc_py_model *)self)->last_planned);
}

PyObject *svdc_py_model_get_dtype(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    switch (m->kind->params(m->model)->dtype) {
    case SVDC_DTYPE_F16: return PyUnicode_FromString("fp16");
    case SVDC_DTYPE_BF16: return PyUnicode_FromString("bf16");
    default: return PyUnicode_FromString("fp32");
    }
}

PyObject *svdc_py_model_get_weight_bytes(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyLong_FromSize_t(m->kind->params(m->model)->bytes);
}

PyObject *svdc_py_model_get_packed_weight_bytes(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyLong_FromSize_t(m->kind->params(m->model)->prepared_bytes);
}

PyObject *svdc_py_model_get_arena_reserved(PyObject *self, void *closure) {
    (void)closure;
    svdc_py_model *m = (svdc_py_model *)self;
    if (!svdc_py_model_ready(m)) return NULL;
    return PyLong_FromSize_t(svdc_arena_reserved(m->ctx.arena));
}
