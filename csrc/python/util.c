/* util.c — exception mapping, array checks and the weight loader shared by every binding type (see util.h). */
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

PyObject *svdc_py_SvdcError;
PyObject *svdc_py_ShapeError;
PyObject *svdc_py_CheckpointError;
PyObject *svdc_py_DeviceUnavailableError;

PyObject *svdc_py_raise(svdc_status status) {
    const char *msg = svdc_last_error();
    if (!msg[0]) msg = "svdc: unknown failure";
    switch (status) {
    case SVDC_OK: PyErr_SetString(svdc_py_SvdcError, "svdc: internal error raised with status OK"); break;
    case SVDC_ERR_ARGUMENT: PyErr_SetString(PyExc_ValueError, msg); break;
    case SVDC_ERR_SHAPE: PyErr_SetString(svdc_py_ShapeError, msg); break;
    case SVDC_ERR_VALUE: PyErr_SetString(PyExc_ValueError, msg); break;
    case SVDC_ERR_MEMORY: PyErr_SetString(PyExc_MemoryError, msg); break;
    case SVDC_ERR_CHECKPOINT: PyErr_SetString(svdc_py_CheckpointError, msg); break;
    case SVDC_ERR_DEVICE: PyErr_SetString(svdc_py_DeviceUnavailableError, msg); break;
    default: PyErr_SetString(svdc_py_SvdcError, msg); break;
    }
    return NULL;
}

static void shape_text(PyArrayObject *a, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < PyArray_NDIM(a) && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %lld" : "%lld", (long long)PyArray_DIM(a, i));
    if (PyArray_NDIM(a) == 1 && used < len) used += (size_t)snprintf(buf + used, len - used, ",");
    if (used < len) snprintf(buf + used, len - used, ")");
}

PyArrayObject *svdc_py_f32_array(PyObject *obj, const char *arg, int ndim) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a numpy.ndarray of float32, got %s", arg, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_TYPE(a) != NPY_FLOAT32) {
        PyErr_Format(svdc_py_ShapeError, "%s: expected dtype float32, got %s", arg, PyArray_DESCR(a)->typeobj->tp_name);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(svdc_py_ShapeError, "%s: expected a C-contiguous, aligned array (use np.ascontiguousarray)", arg);
        return NULL;
    }
    if (ndim >= 0 && PyArray_NDIM(a) != ndim) {
        char s[128];
        shape_text(a, s, sizeof s);
        PyErr_Format(svdc_py_ShapeError, "%s: expected %d dimensions, got shape %s", arg, ndim, s);
        return NULL;
    }
    if (PyArray_NDIM(a) > SVDC_MAX_DIMS) {
        PyErr_Format(svdc_py_ShapeError, "%s: at most %d dimensions are supported, got %d", arg, SVDC_MAX_DIMS,
                     PyArray_NDIM(a));
        return NULL;
    }
    Py_INCREF(a);
    return a;
}

svdc_tensor svdc_py_tensor(PyArrayObject *a) {
    svdc_tensor t;
    memset(&t, 0, sizeof t);
    t.data = PyArray_DATA(a);
    t.dtype = SVDC_DTYPE_F32;
    t.device = SVDC_DEVICE_CPU;
    t.ndim = PyArray_NDIM(a);
    for (int i = 0; i < t.ndim; i++) t.shape[i] = PyArray_DIM(a, i);
    return t;
}

PyArrayObject *svdc_py_new_f32(int ndim, const int64_t *shape) {
    npy_intp dims[SVDC_MAX_DIMS];
    for (int i = 0; i < ndim; i++) dims[i] = (npy_intp)shape[i];
    return (PyArrayObject *)PyArray_SimpleNew(ndim, dims, NPY_FLOAT32);
}

int svdc_py_add_type(PyObject *module, PyTypeObject *type, const char *name) {
    if (PyType_Ready(type) < 0) return -1;
    return PyModule_AddObjectRef(module, name, (PyObject *)type);
}

PyObject *svdc_py_params_shapes(const svdc_params *p) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < p->count; i++) {
        PyObject *shape = PyTuple_New(p->items[i].ndim);
        if (!shape) goto fail;
        for (int k = 0; k < p->items[i].ndim; k++) {
            PyObject *dim = PyLong_FromLongLong((long long)p->items[i].shape[k]);
            if (!dim) {
                Py_DECREF(shape);
                goto fail;
            }
            PyTuple_SET_ITEM(shape, k, dim);
        }
        int rc = PyDict_SetItemString(d, p->items[i].name, shape);
        Py_DECREF(shape);
        if (rc < 0) goto fail;
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* CheckpointError "<model>: weight <name> has shape (got), expected (want)" unless array `a` has param `it`'s shape;
 * 0 or -1. */
static int check_weight_shape(PyArrayObject *a, const svdc_param *it, const char *model_name) {
    int same = PyArray_NDIM(a) == it->ndim;
    for (int d = 0; same && d < it->ndim; d++) same = PyArray_DIM(a, d) == it->shape[d];
    if (same) return 0;
    char got[128], want[128];
    shape_text(a, got, sizeof got);
    size_t used = (size_t)snprintf(want, sizeof want, "(");
    for (int d = 0; d < it->ndim && used < sizeof want; d++)
        used += (size_t)snprintf(want + used, sizeof want - used, d ? ", %lld" : "%lld", (long long)it->shape[d]);
    if (it->ndim == 1 && used < sizeof want) used += (size_t)snprintf(want + used, sizeof want - used, ",");
    if (used < sizeof want) snprintf(want + used, sizeof want - used, ")");
    PyErr_Format(svdc_py_CheckpointError, "%s: weight %s has shape %s, expected %s", model_name, it->name, got, want);
    return -1;
}

/* svdc.weights.CHECK_FINITE (read at every load, so tests and users may switch it at run time); -1 on error. */
static int check_finite_enabled(void) {
    PyObject *mod = PyImport_ImportModule("svdc.weights");
    if (!mod) return -1;
    PyObject *flag = PyObject_GetAttrString(mod, "CHECK_FINITE");
    Py_DECREF(mod);
    if (!flag) return -1;
    const int on = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return on;
}

/* The storage dtype named by a safetensors dtype string that file views may carry, or -1. */
static int file_view_dtype(const char *name) {
    if (!strcmp(name, "F32")) return SVDC_DTYPE_F32;
    if (!strcmp(name, "F16")) return SVDC_DTYPE_F16;
    if (!strcmp(name, "BF16")) return SVDC_DTYPE_BF16;
    return -1;
}

/* Loads param i from weights.file_view(name)'s answer `view` ((array, dtype) — None was handled by the caller).
 * 0 or -1. */
static int load_file_view(svdc_params *params, int i, PyObject *view, const char *model_name, unsigned flags,
                          PyObject **borrowed) {
    svdc_param *it = &params->items[i];
    PyObject *array = NULL;
    const char *dtype_name = NULL;
    if (!PyTuple_Check(view) || PyTuple_GET_SIZE(view) != 2 || !PyArray_Check(array = PyTuple_GET_ITEM(view, 0)) ||
        !(dtype_name = PyUnicode_Check(PyTuple_GET_ITEM(view, 1)) ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(view, 1))
                                                                    : NULL)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s: weights.file_view(%s) must return None or (ndarray, dtype name), "
                         "got %R", model_name, it->name, view);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)array;
    const int dtype = file_view_dtype(dtype_name);
    if (dtype < 0 || (size_t)PyArray_ITEMSIZE(a) != svdc_dtype_size((svdc_dtype)dtype) ||
        !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_Format(PyExc_TypeError, "%s: weights.file_view(%s) gave a %s array of %d-byte items for dtype %s "
                     "(expected a C-contiguous view of F32, F16 or BF16 values)", model_name, it->name,
                     PyArray_IS_C_CONTIGUOUS(a) ? "contiguous" : "non-contiguous", (int)PyArray_ITEMSIZE(a),
                     dtype_name);
        return -1;
    }
    if (check_weight_shape(a, it, model_name) < 0) return -1;
    int took = 0;
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS s = svdc_params_load(params, i, PyArray_DATA(a), (svdc_dtype)dtype, (int64_t)PyArray_SIZE(a),
                                                flags | SVDC_LOAD_FILE_MAPPING, &took);
    Py_END_ALLOW_THREADS if (s) {
        svdc_py_raise(s);
        return -1;
    }
    if (!took) return 0;
    if (!*borrowed && !(*borrowed = PyList_New(0))) return -1;
    return PyList_Append(*borrowed, array);
}

int svdc_py_load_params(svdc_params *params, PyObject *weights, const char *model_name, PyObject **borrowed) {
    if (!PyMapping_Check(weights)) {
        PyErr_Format(PyExc_TypeError, "%s: weights must be a mapping of name -> numpy array, got %s", model_name,
                     Py_TYPE(weights)->tp_name);
        return -1;
    }
    const int check = check_finite_enabled();
    if (check < 0) return -1;
    const unsigned flags = check ? SVDC_LOAD_CHECK_FINITE : 0;
    PyObject *file_view = NULL;
    if (PyObject_HasAttrString(weights, "file_view") && !(file_view = PyObject_GetAttrString(weights, "file_view")))
        return -1;
    for (int i = 0; i < params->count; i++) {
        svdc_param *it = &params->items[i];
        if (file_view) {
            PyObject *view = PyObject_CallFunction(file_view, "s", it->name);
            if (!view) goto fail;
            const int rc = view == Py_None ? 1 : load_file_view(params, i, view, model_name, flags, borrowed);
            Py_DECREF(view);
            if (rc < 0) goto fail;
            if (rc == 0) continue;
        }
        PyObject *value = PyMapping_GetItemString(weights, it->name);
        if (!value) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto fail;
            PyErr_Clear();
            continue; /* reported below with the count */
        }
        if (!PyArray_Check(value) || PyArray_TYPE((PyArrayObject *)value) != NPY_FLOAT32 ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)value)) {
            PyErr_Format(svdc_py_CheckpointError, "%s: weight %s must be a C-contiguous float32 array, got %R",
                         model_name, it->name, (PyObject *)Py_TYPE(value));
            Py_DECREF(value);
            goto fail;
        }
        PyArrayObject *a = (PyArrayObject *)value;
        if (check_weight_shape(a, it, model_name) < 0) {
            Py_DECREF(value);
            goto fail;
        }
        svdc_status s = svdc_params_load(params, i, PyArray_DATA(a), SVDC_DTYPE_F32, (int64_t)PyArray_SIZE(a), flags,
                                         NULL);
        Py_DECREF(value);
        if (s) {
            svdc_py_raise(s);
            goto fail;
        }
    }
    Py_CLEAR(file_view);
    svdc_status s = svdc_params_check_complete(params, model_name);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    /* Unknown keys: anything in the mapping that the model does not declare. */
    PyObject *keys = PyMapping_Keys(weights);
    if (!keys) return -1;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (n != params->count) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *k = PyList_GET_ITEM(keys, i);
            const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
            if (!name) {
                PyErr_Clear();
                PyErr_Format(svdc_py_CheckpointError, "%s: weight names must be str, got %R", model_name, k);
                Py_DECREF(keys);
                return -1;
            }
            if (svdc_params_find(params, name) < 0) {
                PyErr_Format(svdc_py_CheckpointError,
                             "%s: unexpected weight %s (not part of this model's config; %zd given, %d expected)",
                             model_name, name, n, params->count);
                Py_DECREF(keys);
                return -1;
            }
        }
    }
    Py_DECREF(keys);
    return 0;
fail:
    Py_XDECREF(file_view);
    return -1;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The native config reader */

int svdc_py_config_open(svdc_py_config *c, PyObject *dict, const char *model) {
    c->dict = dict;
    c->model = model;
    if (PyDict_Check(dict)) return 0;
    PyErr_Format(PyExc_TypeError, "%s: config must be a dict, got %s", model, Py_TYPE(dict)->tp_name);
    return -1;
}

/* The value of `key` (borrowed), or NULL with KeyError. */
static PyObject *config_get(const svdc_py_config *c, const char *key) {
    PyObject *v = PyDict_GetItemString(c->dict, key);
    if (!v) PyErr_Format(PyExc_KeyError, "%s config: missing key '%s'", c->model, key);
    return v;
}

/* `v` (named `what` in messages: "'key'" or "'key'[i]") as an int in lo..hi. */
static int config_as_int(const svdc_py_config *c, const char *what, PyObject *v, int lo, int hi, int *out) {
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s config: %s must be an int, got %s %R", c->model, what, Py_TYPE(v)->tp_name,
                     v);
        return -1;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow || x < INT32_MIN || x > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s config: %s = %R is beyond the int32 range (expected %d..%d)", c->model,
                     what, v, lo, hi);
        return -1;
    }
    if (x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "%s config: %s must be in %d..%d, got %lld", c->model, what, lo, hi, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int svdc_py_config_int(const svdc_py_config *c, const char *key, int lo, int hi, int *out) {
    PyObject *v = config_get(c, key);
    if (!v) return -1;
    char what[128];
    snprintf(what, sizeof what, "'%s'", key);
    return config_as_int(c, what, v, lo, hi, out);
}

int svdc_py_config_bool(const svdc_py_config *c, const char *key, int *out) {
    PyObject *v = config_get(c, key);
    if (!v) return -1;
    if (PyBool_Check(v)) {
        *out = v == Py_True;
        return 0;
    }
    if (PyLong_Check(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && (x == 0 || x == 1)) {
            *out = (int)x;
            return 0;
        }
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s config: '%s' must be a bool (or 0 / 1), got %R", c->model, key, v);
        return -1;
    }
    PyErr_Format(PyExc_TypeError, "%s config: '%s' must be a bool, got %s %R", c->model, key, Py_TYPE(v)->tp_name, v);
    return -1;
}

int svdc_py_config_float(const svdc_py_config *c, const char *key, double lo, double hi, float *out) {
    PyObject *v = config_get(c, key);
    if (!v) return -1;
    if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v))) {
        PyErr_Format(PyExc_TypeError, "%s config: '%s' must be a number, got %s %R", c->model, key,
                     Py_TYPE(v)->tp_name, v);
        return -1;
    }
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) return -1;
    if (!isfinite(x) || x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "%s config: '%s' must be a finite number in %g..%g, got %R", c->model, key, lo,
                     hi, v);
        return -1;
    }
    *out = (float)x;
    return 0;
}

int svdc_py_config_choice(const svdc_py_config *c, const char *key, const char *const *choices, int n, int *out) {
    PyObject *v = config_get(c, key);
    if (!v) return -1;
    const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    if (!s && PyErr_Occurred()) return -1;
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, choices[i])) {
            *out = i;
            return 0;
        }
    char expected[256];
    size_t used = 0;
    expected[0] = 0;
    for (int i = 0; i < n && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s\"%s\"", i ? " or " : "", choices[i]);
    PyErr_Format(s ? PyExc_ValueError : PyExc_TypeError, "%s config: '%s' must be %s, got %R", c->model, key, expected,
                 v);
    return -1;
}

int svdc_py_config_int_list(const svdc_py_config *c, const char *key, int min_len, int max_len, int lo, int hi,
                            int *out, int *len) {
    PyObject *v = config_get(c, key);
    if (!v) return -1;
    if (!PyList_Check(v) && !PyTuple_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s config: '%s' must be a list of ints, got %s %R", c->model, key,
                     Py_TYPE(v)->tp_name, v);
        return -1;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
    if (n < min_len || n > max_len) {
        if (min_len == max_len)
            PyErr_Format(PyExc_ValueError, "%s config: '%s' has %zd entries, expected %d", c->model, key, n, min_len);
        else
            PyErr_Format(PyExc_ValueError, "%s config: '%s' has %zd entries, expected %d..%d", c->model, key, n,
                         min_len, max_len);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        char what[128];
        snprintf(what, sizeof what, "'%s'[%zd]", key, i);
        if (config_as_int(c, what, PySequence_Fast_GET_ITEM(v, i), lo, hi, &out[i]) < 0) return -1;
    }
    if (len) *len = (int)n;
    return 0;
}
