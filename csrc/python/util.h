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
 * must be present with exactly its shape; every key in `weights` must be declared. Violations raise
 * svdc.CheckpointError naming the tensor. Needs the GIL (reads Python objects). Returns 0 or -1. */
int svdc_py_load_params(svdc_params *params, PyObject *weights, const char *model_name);

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


/* PyArg "O&" converter for a non-negative int that fits in int (names no argument; the caller adds context). */
#endif
