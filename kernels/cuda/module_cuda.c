/* module_cuda.c — svdc._C_cuda: a separate module so that a machine without the CUDA libraries still imports the CPU
 * path. It reports the devices and hands svdc._C the CUDA backend table as a capsule, which svdc.runtime registers
 * in the core's device registry (svdc._C._register_backend). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "backend.h"

const svdc_backend *svdc_backend_cuda(void);
int svdc_cuda_device_count(const char **error);
int svdc_cuda_device_name(int device, char *buf, int len);
int svdc_cuda_uses_cublas(int device, const char **why);
svdc_status svdc_cuda_debug_fault(int device);

static PyObject *device_count(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    const char *error = "";
    int n;
    Py_BEGIN_ALLOW_THREADS n = svdc_cuda_device_count(&error);
    Py_END_ALLOW_THREADS return Py_BuildValue("(is)", n, error);
}

static PyObject *device_name(PyObject *self, PyObject *arg) {
    (void)self;
    long device = PyLong_AsLong(arg);
    if (device == -1 && PyErr_Occurred()) return NULL;
    char buf[256];
    if (device < 0 || svdc_cuda_device_name((int)device, buf, sizeof buf) != 0) {
        PyErr_Format(PyExc_ValueError, "device: no CUDA device %ld", device);
        return NULL;
    }
    return PyUnicode_FromString(buf);
}

static PyObject *backend_capsule(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyCapsule_New((void *)svdc_backend_cuda(), "svdc.backend", NULL);
}

/* svdc_cuda_uses_cublas without the GIL: 1/0, or -1 with a Python exception set; *why says why not. */
static int query_cublas(PyObject *arg, const char **why) {
    long device = PyLong_AsLong(arg);
    if (device == -1 && PyErr_Occurred()) return -1;
    int r;
    Py_BEGIN_ALLOW_THREADS r = svdc_cuda_uses_cublas((int)device, why);
    Py_END_ALLOW_THREADS
    if (r < 0) PyErr_Format(PyExc_RuntimeError, "cuda device %ld: %s", device, svdc_last_error());
    return r;
}

static PyObject *uses_cublas(PyObject *self, PyObject *arg) {
    (void)self;
    const char *why = "";
    int r = query_cublas(arg, &why);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* cublas_status(i) -> (uses cuBLAS, reason when not): a cuBLAS that failed to start leaves the device usable. */
static PyObject *cublas_status(PyObject *self, PyObject *arg) {
    (void)self;
    const char *why = "";
    int r = query_cublas(arg, &why);
    return r < 0 ? NULL : Py_BuildValue("(Os)", r ? Py_True : Py_False, why);
}

/* Test hook: an illegal memory access on `device`, which destroys the process's CUDA context for good (run it in a
 * child process). Returns the error text the backend reported. */
static PyObject *debug_fault(PyObject *self, PyObject *arg) {
    (void)self;
    long device = PyLong_AsLong(arg);
    if (device == -1 && PyErr_Occurred()) return NULL;
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS s = svdc_cuda_debug_fault((int)device);
    Py_END_ALLOW_THREADS
    return PyUnicode_FromString(s ? svdc_last_error() : "");
}

static PyMethodDef methods[] = {
    {"device_count", device_count, METH_NOARGS, "device_count() -> (count, error text when 0)"},
    {"device_name", device_name, METH_O, "device_name(i) -> 'NAME (sm_XY, N GiB)'"},
    {"backend_capsule", backend_capsule, METH_NOARGS, "the CUDA backend table as a capsule named 'svdc.backend'"},
    {"uses_cublas", uses_cublas, METH_O, "uses_cublas(i) -> whether GEMMs on device i go through cuBLAS"},
    {"cublas_status", cublas_status, METH_O, "cublas_status(i) -> (uses cuBLAS, reason when not)"},
    {"_debug_fault", debug_fault, METH_O, "_debug_fault(i): deliberate illegal address on device i (tests only)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "svdc._C_cuda", "svdc's CUDA backend.", -1, methods};

PyMODINIT_FUNC PyInit__C_cuda(void) { return PyModule_Create(&module_def); }
