/* module_cuda.c — svdc._C_cuda: a separate module so that a machine without the CUDA libraries still imports the CPU
 * path. It reports the devices and hands svdc._C the CUDA backend table as a capsule. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "backend.h"

const svdc_backend *svdc_backend_cuda(void);
int svdc_cuda_device_count(const char **error);
int svdc_cuda_device_name(int device, char *buf, int len);

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

static PyMethodDef methods[] = {
    {"device_count", device_count, METH_NOARGS, "device_count() -> (count, error text when 0)"},
    {"device_name", device_name, METH_O, "device_name(i) -> 'NAME (sm_XY, N GiB)'"},
    {"backend_capsule", backend_capsule, METH_NOARGS, "the CUDA backend table as a capsule named 'svdc.backend'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "svdc._C_cuda", "svdc's CUDA backend.", -1, methods};

PyMODINIT_FUNC PyInit__C_cuda(void) { return PyModule_Create(&module_def); }
