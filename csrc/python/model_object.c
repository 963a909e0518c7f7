/* model_object.c — construction, teardown, locking and the common getters of the model binding types (see
 * model_object.h). */
#include "model_object.h"

#include <stdlib.h>

#include "../core/arena.h"

/* Frees everything the object holds and leaves it unusable. */
static void model_clear(svdc_py_model *self) {
    if (self->kind) self->kind->destroy(self->model);
    self->model = NULL;
    svdc_arena_free(self->ctx.arena);
    self->ctx.arena = NULL;
    if (self->lock) PyThread_free_lock(self->lock);
    self->lock = NULL;
    Py_CLEAR(self->config);
}

/* Parses `config` and creates the model on the CPU backend (GIL released while it builds its tables). */
static void *create_model(const svdc_py_model_kind *kind, PyObject *config) {
    void *cfg = calloc(1, kind->config_size);
    if (!cfg) return PyErr_NoMemory();
    void *model = NULL;
    if (kind->parse_config(config, cfg) == 0) {
        svdc_status s;
        Py_BEGIN_ALLOW_THREADS s = kind->create(&model, cfg, svdc_backend_cpu(), SVDC_DEVICE_CPU);
        Py_END_ALLOW_THREADS if (s) {
            model = NULL;
            svdc_py_raise(s);
        }
    }
    free(cfg);
    return model;
}

int svdc_py_model_init(svdc_py_model *self, const svdc_py_model_kind *kind, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"config", "weights", NULL};
    PyObject *config, *weights;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", kwlist, &config, &weights)) return -1;
    if (self->model) {
        PyErr_Format(PyExc_RuntimeError, "%s: already initialised", kind->name);
        return -1;
    }
    model_clear(self); /* a previous failed construction may have left parts behind */
    self->kind = kind;
    if (!(self->model = create_model(kind, config))) return -1;
    svdc_status s;
    if (svdc_py_load_params(kind->params(self->model), weights, kind->name) < 0) goto fail;
    self->ctx.backend = svdc_backend_cpu();
    self->ctx.device = SVDC_DEVICE_CPU;
    if ((s = svdc_arena_init(&self->ctx.arena, self->ctx.backend, SVDC_DEVICE_CPU))) {
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

svdc_status svdc_py_model_run(svdc_py_model *self, svdc_py_model_call call, void *args, int record_peak) {
    svdc_status s;
    size_t peak = 0;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    svdc_arena_reset(self->ctx.arena);
    svdc_arena_reset_peak(self->ctx.arena);
    s = call(&self->ctx, self->model, args);
    peak = svdc_arena_peak(self->ctx.arena);
    svdc_arena_reset(self->ctx.arena);
    if (self->kind->trim_after_call) svdc_arena_trim(self->ctx.arena);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (record_peak) self->last_peak = peak;
    return s;
}

PyObject *svdc_py_model_result(svdc_status status, PyArrayObject *out) {
    if (!status) return (PyObject *)out;
    Py_XDECREF(out);
    return svdc_py_raise(status);
}

PyObject *svdc_py_model_weight_shapes(const svdc_py_model_kind *kind, PyObject *config) {
    void *model = create_model(kind, config);
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
