/* module.c — svdc._C: module init, the exception types, build information, and registration of every binding type
 * (one py_<type>.c file each). The only translation unit that calls import_array. */
#define SVDC_PY_IMPORT_ARRAY
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../kernels/cpu/blas.h"
#include "../../kernels/cpu/kernels.h"
#include "../core/device.h"
#include "registry.h"

static PyObject *build_info(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    return Py_BuildValue("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:O, s:s}", "version", SVDC_VERSION,
                         "cpu_kernels", svdc_cpu_kernels_selected(), "cpu_kernels_built", svdc_cpu_kernels_built(),
                         "cpu_kernels_reason", svdc_cpu_kernels_reason(), "cpu_features", svdc_cpu_features(),
                         "compiler",
#if defined(__clang__)
                         "clang " __clang_version__,
#elif defined(__GNUC__)
                         "gcc " __VERSION__,
#else
                         "unknown",
#endif
                         "blas", svdc_blas_name(), "openmp_threads", threads, "openmp",
#ifdef _OPENMP
                         Py_True,
#else
                         Py_False,
#endif
                         "blas_config", svdc_blas_config());
}

static PyObject *set_num_threads(PyObject *self, PyObject *arg) {
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "num_threads: expected an integer >= 1, got %ld", n);
        return NULL;
    }
#ifdef _OPENMP
    omp_set_num_threads((int)n);
#endif
    svdc_blas_set_num_threads((int)n);
    Py_RETURN_NONE;
}

/* _register_backend(capsule): a backend table built in another module (svdc._C_cuda.backend_capsule()) joins the
 * core's device registry; refused with DeviceUnavailableError when it comes from another build. */
static PyObject *register_backend(PyObject *self, PyObject *capsule) {
    (void)self;
    const svdc_backend *be = PyCapsule_GetPointer(capsule, "svdc.backend");
    if (!be) return NULL;
    svdc_status s = svdc_device_register(be);
    if (s) return svdc_py_raise(s);
    Py_RETURN_NONE;
}

/* backends() -> [{name, build_info, devices, reason, chunk_budget}] of the registered backends. */
static PyObject *backends(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    const svdc_backend *b;
    for (int i = 0; (b = svdc_device_at(i)); i++) {
        char why[256] = "";
        int count;
        Py_BEGIN_ALLOW_THREADS count = b->device_count(why, sizeof why);
        Py_END_ALLOW_THREADS
        PyObject *d = Py_BuildValue("{s:s, s:s, s:i, s:s, s:n}", "name", b->name, "build_info", b->build_info,
                                    "devices", count, "reason", why, "chunk_budget", (Py_ssize_t)b->chunk_budget);
        if (!d || PyList_Append(list, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(d);
    }
    return list;
}

static PyMethodDef module_methods[] = {
    {"_register_backend", register_backend, METH_O, "_register_backend(capsule): add a backend to the registry"},
    {"backends", backends, METH_NOARGS, "backends() -> [{name, build_info, devices, reason, chunk_budget}]"},
    {"build_info", build_info, METH_NOARGS, "build_info() -> dict: version, compiler, BLAS, OpenMP threads."},
    {"set_num_threads", set_num_threads, METH_O, "set_num_threads(n): OpenMP and BLAS threads for the CPU backend."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "svdc._C", "svdc's C core: CPU backend, models and ops.", -1, module_methods,
};

static PyObject *new_exception(PyObject *module, const char *name, PyObject *bases, const char *doc) {
    char qualified[128];
    snprintf(qualified, sizeof qualified, "svdc.%s", name);
    PyObject *exc = PyErr_NewExceptionWithDoc(qualified, doc, bases, NULL);
    if (!exc) return NULL;
    if (PyModule_AddObjectRef(module, name, exc) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

PyMODINIT_FUNC PyInit__C(void) {
    import_array();
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    svdc_py_SvdcError = new_exception(m, "SvdcError", PyExc_Exception, "Base class of svdc's errors.");
    if (!svdc_py_SvdcError) goto fail;
    PyObject *bases = PyTuple_Pack(2, svdc_py_SvdcError, PyExc_ValueError);
    if (!bases) goto fail;
    svdc_py_ShapeError = new_exception(m, "ShapeError", bases, "A shape, dtype or size does not fit (a ValueError).");
    svdc_py_CheckpointError =
        new_exception(m, "CheckpointError", bases, "A checkpoint file or weight is malformed, missing or unexpected.");
    Py_DECREF(bases);
    if (!svdc_py_ShapeError || !svdc_py_CheckpointError) goto fail;
    bases = PyTuple_Pack(2, svdc_py_SvdcError, PyExc_RuntimeError);
    if (!bases) goto fail;
    svdc_py_DeviceUnavailableError =
        new_exception(m, "DeviceUnavailableError", bases, "The requested device or backend cannot be used.");
    Py_DECREF(bases);
    if (!svdc_py_DeviceUnavailableError) goto fail;
    for (const svdc_py_registrar *r = svdc_py_registrars; *r; r++)
        if ((*r)(m) < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
