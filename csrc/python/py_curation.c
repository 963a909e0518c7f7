/* py_curation.c — svdc._C._plane_downscale (the curation decoder's small-plane reduction, reading a decoder plane
 * through the buffer protocol, PyAV's VideoPlane, without copying it), svdc._C._plane_lag_mad (frame differences of
 * a stack of small planes at a lag) and svdc._C._plane_histograms (value histograms, mean and spread of a stack of
 * small planes). */
#include "util.h"

#include "../curation/plane.h"
#include "registry.h"

static PyObject *plane_downscale(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    int width, height, fx, fy, rows = 0;
    Py_ssize_t stride;
    if (!PyArg_ParseTuple(args, "y*iinii|i:_plane_downscale", &view, &width, &height, &stride, &fx, &fy, &rows))
        return NULL;
    if (rows == 0) rows = fy;
    if (width < 1 || height < 1 || stride < width || fx < 1 || fy < 1 || width / fx < 1 || height / fy < 1 ||
        rows < 1 || rows > fy) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError,
                            "_plane_downscale: expected width, height >= 1, stride >= width, factors within the "
                            "plane and 1 <= rows <= fy, got %dx%d stride %zd factors %dx%d rows %d",
                            width, height, stride, fx, fy, rows);
    }
    if (view.len < (Py_ssize_t)(stride * (height - 1) + width)) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError,
                            "_plane_downscale: buffer of %zd bytes is too small for %dx%d with stride %zd", view.len,
                            width, height, stride);
    }
    npy_intp shape[2] = {height / fy, width / fx};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_UINT8);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS s = svdc_plane_downscale((const uint8_t *)view.buf, stride, width, height, fx, fy,
                                                    rows, (uint8_t *)PyArray_DATA(out));
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (s != SVDC_OK) {
        Py_DECREF(out);
        return svdc_py_raise(s);
    }
    return (PyObject *)out;
}

/* frames: a C-contiguous uint8 ndarray (N, ...) -> its N and the bytes per plane; NULL with TypeError otherwise */
static PyArrayObject *plane_stack(PyObject *obj, const char *fn, npy_intp *n, npy_intp *plane) {
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_UINT8 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) || PyArray_NDIM((PyArrayObject *)obj) < 2) {
        PyErr_Format(PyExc_TypeError, "%s: frames must be a C-contiguous uint8 ndarray (N, ...) with ndim >= 2", fn);
        return NULL;
    }
    PyArrayObject *frames = (PyArrayObject *)obj;
    *n = PyArray_DIM(frames, 0);
    *plane = *n ? PyArray_SIZE(frames) / *n : 0;
    return frames;
}

static PyObject *plane_lag_mad(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    Py_ssize_t lag;
    if (!PyArg_ParseTuple(args, "On:_plane_lag_mad", &obj, &lag)) return NULL;
    npy_intp n, plane;
    PyArrayObject *frames = plane_stack(obj, "_plane_lag_mad", &n, &plane);
    if (!frames) return NULL;
    if (lag < 1) return PyErr_Format(PyExc_ValueError, "_plane_lag_mad: lag must be >= 1, got %zd", lag);
    npy_intp out_n = n > lag ? n - lag : 0;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &out_n, NPY_FLOAT32);
    if (!out) return NULL;
    if (out_n == 0 || plane == 0) return (PyObject *)out;
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS s = svdc_plane_lag_mad((const uint8_t *)PyArray_DATA(frames), n, plane, lag,
                                                  (float *)PyArray_DATA(out));
    Py_END_ALLOW_THREADS if (s != SVDC_OK) {
        Py_DECREF(out);
        return svdc_py_raise(s);
    }
    return (PyObject *)out;
}

static PyObject *plane_histograms(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    int shift;
    if (!PyArg_ParseTuple(args, "Oi:_plane_histograms", &obj, &shift)) return NULL;
    npy_intp n, plane;
    PyArrayObject *frames = plane_stack(obj, "_plane_histograms", &n, &plane);
    if (!frames) return NULL;
    if (shift < 0 || shift > 7)
        return PyErr_Format(PyExc_ValueError, "_plane_histograms: shift must be in [0, 7], got %d", shift);
    if (n && (plane < 1 || plane > ((npy_intp)1 << 24)))
        return PyErr_Format(PyExc_ValueError, "_plane_histograms: planes of 1 .. 2^24 bytes expected, got %zd",
                            (Py_ssize_t)plane);
    npy_intp hist_shape[2] = {n, 256 >> shift};
    PyArrayObject *hist = (PyArrayObject *)PyArray_SimpleNew(2, hist_shape, NPY_FLOAT32);
    PyArrayObject *mean = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    PyArrayObject *std = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    if (!hist || !mean || !std) {
        Py_XDECREF(hist);
        Py_XDECREF(mean);
        Py_XDECREF(std);
        return NULL;
    }
    svdc_status s = SVDC_OK;
    if (n) {
        Py_BEGIN_ALLOW_THREADS s = svdc_plane_histograms((const uint8_t *)PyArray_DATA(frames), n, plane, shift,
                                                         (float *)PyArray_DATA(hist), (float *)PyArray_DATA(mean),
                                                         (float *)PyArray_DATA(std));
        Py_END_ALLOW_THREADS
    }
    if (s != SVDC_OK) {
        Py_DECREF(hist);
        Py_DECREF(mean);
        Py_DECREF(std);
        return svdc_py_raise(s);
    }
    return Py_BuildValue("NNN", hist, mean, std);
}

static PyMethodDef curation_methods[] = {
    {"_plane_downscale", plane_downscale, METH_VARARGS,
     "_plane_downscale(buffer, width, height, stride, fx, fy, rows=fy) -> uint8 (height//fy, width//fx): block "
     "means over `rows` evenly spaced rows of each block."},
    {"_plane_lag_mad", plane_lag_mad, METH_VARARGS,
     "_plane_lag_mad(frames uint8 (N, ...), lag) -> float32 (N - lag,): mean |frames[i] - frames[i - lag]|."},
    {"_plane_histograms", plane_histograms, METH_VARARGS,
     "_plane_histograms(frames uint8 (N, ...), shift) -> (hist float32 (N, 256 >> shift), each row summing to 1; "
     "mean float32 (N,); std float32 (N,)): value histograms, mean and population spread of each plane."},
    {NULL, NULL, 0, NULL},
};

int svdc_py_register_curation(PyObject *module) { return PyModule_AddFunctions(module, curation_methods); }
