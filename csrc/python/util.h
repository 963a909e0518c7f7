/* util.h — shared pieces of the CPython binding: the exception types, status -> exception, NumPy array checks and
 * views, and the weight-table loader used by every model type. Include this (not numpy headers) in py_*.c. */
#ifndef SVDC_PY_UTIL_H
#define SVDC_PY_UTIL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL svdc_ARRAY_API
#ifndef SVDC_PY_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <pythread.h>

#include "svdc.h"
#include "../core/params.h"

extern PyObject *svdc_py_SvdcError;               /* svdc.SvdcError (RuntimeError) */
extern PyObject *svdc_py_ShapeError;              /* svdc.ShapeError (SvdcError, ValueError) */
extern PyObject *svdc_py_CheckpointError;         /* svdc.CheckpointError (SvdcError, ValueError) */
extern PyObject *svdc_py_DeviceUnavailableError;  /* svdc.DeviceUnavailableError (SvdcError) */

/* Raises the exception that matches `status`, with svdc_last_error() as the text; returns NULL. */
PyObject *svdc_py_raise(svdc_status status);

/* Borrow `obj` as a float32, C-contiguous, aligned ndarray of `ndim` dims (ndim < 0: any). Anything else raises
 * svdc.ShapeError (or TypeError for non-arrays) naming `arg`, the expected and the actual value. Returns a new
 * reference or NULL. The Python layer converts float64 / non-contiguous input before calling; C refuses. */
PyArrayObject *svdc_py_f32_array(PyObject *obj, const char *arg, int ndim);

/* A view of a float32 host ndarray. */
svdc_tensor svdc_py_tensor(PyArrayObject *a);

/* A new, uninitialised float32 C-contiguous ndarray; NULL with MemoryError. */
PyArrayObject *svdc_py_new_f32(int ndim, const int64_t *shape);

/* Fills the weight table from a Mapping[str, ndarray(float32)] (names in the table's naming). Every declared weight
 * must be present with exactly its shape; every key in `weights` must be declared; NaN/Inf are refused unless
 * svdc.weights.CHECK_FINITE is false. Violations raise svdc.CheckpointError naming the tensor.
 *
 * A mapping with a file_view(name) method (svdc.weights.LazyWeights) may answer it with (array, dtype) instead of
 * None: a C-contiguous view of the tensor in its stored safetensors dtype ("F32", "F16" or "BF16", BF16 as uint16)
 * inside a read-only shared file mapping that lives as long as the array. Such a weight is borrowed when the table
 * lives in host memory in that dtype (svdc_params_load): the view is appended to *borrowed (a new list, created on
 * the first one), which the caller must keep until the params are freed. Otherwise it is converted and copied, and
 * its file pages dropped from this process. Needs the GIL (reads Python objects). Returns 0 or -1 (*borrowed is
 * then still the caller's to release). */
int svdc_py_load_params(svdc_params *params, PyObject *weights, const char *model_name, PyObject **borrowed);

/* {name: shape tuple} of a declared weight table, in declaration order; NULL with an exception. */
PyObject *svdc_py_params_shapes(const svdc_params *params);

/* PyType_Ready + add the type to the module under `name`; 0 or -1. */
int svdc_py_add_type(PyObject *module, PyTypeObject *type, const char *name);

/* Runs `call` (an expression giving an svdc_status, stored in `status`) with the GIL released and `lock` (a
 * PyThread_type_lock) held. Use with the GIL held; `call` must not touch Python objects. */
#define SVDC_PY_RUN_LOCKED(lock, status, call)                                                                      \
    do {                                                                                                             \
        Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock((lock), WAIT_LOCK);                                             \
        status = (call);                                                                                             \
        PyThread_release_lock((lock));                                                                               \
        Py_END_ALLOW_THREADS                                                                                         \
    } while (0)

/* The one reader of native config dicts (the dicts svdc/configs and svdc/models hand to a binding). Every
 * value is required; a missing key raises KeyError, a value of the wrong type TypeError, a value outside its range
 * (ints: also anything beyond int32) ValueError, each message "<model> config: '<key>' ..." with the expected and the
 * actual value. Each returns 0, or -1 with the exception set. */
#define SVDC_PY_CONFIG_SIZE_MAX (1 << 30) /* the largest channel count, length or width a config may give */

typedef struct svdc_py_config {
    PyObject *dict;    /* borrowed */
    const char *model; /* "UNet", "VAE", ...: the messages' subject */
} svdc_py_config;

/* Checks that `dict` is a dict (TypeError naming the model otherwise) and fills *c. */
int svdc_py_config_open(svdc_py_config *c, PyObject *dict, const char *model);
/* An int (not a bool) in lo..hi. */
int svdc_py_config_int(const svdc_py_config *c, const char *key, int lo, int hi, int *out);
/* A bool, or the int 0 or 1, as 0 / 1. */
int svdc_py_config_bool(const svdc_py_config *c, const char *key, int *out);
/* A finite real number (int or float, not a bool) in lo..hi. */
int svdc_py_config_float(const svdc_py_config *c, const char *key, double lo, double hi, float *out);
/* A str equal to one of the n `choices`: *out is its index. */
int svdc_py_config_choice(const svdc_py_config *c, const char *key, const char *const *choices, int n, int *out);
/* A list or tuple of min_len..max_len ints, each in lo..hi: out[0..len), *len its length (len may be NULL when
 * min_len == max_len). */
int svdc_py_config_int_list(const svdc_py_config *c, const char *key, int min_len, int max_len, int lo, int hi,
                            int *out, int *len);

#endif
