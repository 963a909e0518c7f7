/* py_generator.c — svdc._C.Generator: the torch-compatible random generator of csrc/core/rng.c as a Python type.
 * Generator(seed); .randn(shape) -> float32 ndarray; .manual_seed(seed) -> self; .initial_seed(). */
#include "util.h"

#include <string.h>

#include "../core/rng.h"
#include "registry.h"

typedef struct {
    PyObject_HEAD svdc_generator gen;
    PyThread_type_lock lock;
} GeneratorObject;

/* torch's manual_seed accepts [-2^63, 2^64); negative seeds wrap modulo 2^64. */
static int parse_seed(PyObject *obj, uint64_t *seed) {
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "seed: expected an int, got %s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow) {
        *seed = (uint64_t)v;
        return 0;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "seed: expected an int in [-2**63, 2**64), got %R", obj);
            return -1;
        }
        *seed = (uint64_t)u;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "seed: expected an int in [-2**63, 2**64), got %R", obj);
    return -1;
}

static int Generator_init(GeneratorObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"seed", NULL};
    PyObject *seed_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &seed_obj)) return -1;
    uint64_t seed;
    if (parse_seed(seed_obj, &seed) < 0) return -1;
    if (!self->lock && !(self->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        return -1;
    }
    svdc_generator_seed(&self->gen, seed);
    return 0;
}

static void Generator_dealloc(GeneratorObject *self) {
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A shape: an int or a sequence of non-negative ints (at most SVDC_MAX_DIMS). */
static int parse_shape(PyObject *obj, int *ndim, int64_t *shape) {
    if (PyLong_Check(obj)) {
        long long v = PyLong_AsLongLong(obj);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < 0) {
            PyErr_Format(PyExc_ValueError, "shape: expected sizes >= 0, got %lld", v);
            return -1;
        }
        *ndim = 1;
        shape[0] = v;
        return 0;
    }
    PyObject *seq = PySequence_Fast(obj, "shape: expected an int or a sequence of ints");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > SVDC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "shape: at most %d dimensions, got %zd", SVDC_MAX_DIMS, n);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        long long v = PyLong_Check(item) ? PyLong_AsLongLong(item) : -2;
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (v < 0) {
            PyErr_Format(PyExc_ValueError, "shape: expected non-negative ints, got %R at position %zd", item, i);
            Py_DECREF(seq);
            return -1;
        }
        shape[i] = v;
    }
    *ndim = (int)n;
    Py_DECREF(seq);
    return 0;
}

static int check_ready(GeneratorObject *self) {
    if (self->lock) return 0;
    PyErr_SetString(svdc_py_SvdcError, "Generator: not initialised (call Generator(seed))");
    return -1;
}

static PyObject *Generator_randn(GeneratorObject *self, PyObject *arg) {
    if (check_ready(self) < 0) return NULL;
    int ndim;
    int64_t shape[SVDC_MAX_DIMS];
    if (parse_shape(arg, &ndim, shape) < 0) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && n > INT64_MAX / 4 / shape[i]) {
            PyErr_SetString(PyExc_ValueError, "shape: too many elements");
            return NULL;
        }
        n *= shape[i];
    }
    PyArrayObject *out = svdc_py_new_f32(ndim, shape);
    if (!out) return NULL;
    float *data = (float *)PyArray_DATA(out);
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, svdc_generator_randn(&self->gen, data, n));
    if (s) {
        Py_DECREF(out);
        return svdc_py_raise(s);
    }
    return (PyObject *)out;
}

static PyObject *Generator_manual_seed(GeneratorObject *self, PyObject *arg) {
    uint64_t seed;
    if (check_ready(self) < 0 || parse_seed(arg, &seed) < 0) return NULL;
    svdc_status s;
    SVDC_PY_RUN_LOCKED(self->lock, s, (svdc_generator_seed(&self->gen, seed), SVDC_OK));
    (void)s;
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *Generator_initial_seed(GeneratorObject *self, PyObject *noargs) {
    (void)noargs;
    return PyLong_FromUnsignedLongLong(self->gen.seed);
}

static PyMethodDef Generator_methods[] = {
    {"randn", (PyCFunction)Generator_randn, METH_O,
     "randn(shape) -> float32 ndarray, equal to torch.randn(shape, generator=g) for the same seed and draws."},
    {"manual_seed", (PyCFunction)Generator_manual_seed, METH_O, "manual_seed(seed) -> self (resets the stream)."},
    {"initial_seed", (PyCFunction)Generator_initial_seed, METH_NOARGS, "initial_seed() -> the seed."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GeneratorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svdc._C.Generator",
    .tp_basicsize = sizeof(GeneratorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Generator(seed): torch.Generator('cpu').manual_seed(seed) compatible normal noise.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Generator_init,
    .tp_dealloc = (destructor)Generator_dealloc,
    .tp_methods = Generator_methods,
};

int svdc_py_register_generator(PyObject *module) {
    return svdc_py_add_type(module, &GeneratorType, "Generator");
}
