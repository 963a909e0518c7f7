/* py_ops.c — svdc._C._ops: a private test surface that runs single ops on the CPU backend with NumPy arrays, so the
 * unit tests can compare every op against NumPy. Not public API. */
#include "util.h"

#include "../core/arena.h"
#include "../core/backend.h"
#include "../core/ops.h"
#include "registry.h"

/* A CPU context with a private arena for one op call. */
typedef struct op_call {
    svdc_ctx ctx;
} op_call;

static int op_call_begin(op_call *c) {
    c->ctx.backend = svdc_backend_cpu();
    c->ctx.device = SVDC_DEVICE_CPU;
    svdc_status s = svdc_arena_init(&c->ctx.arena, c->ctx.backend, SVDC_DEVICE_CPU);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    return 0;
}

static void op_call_end(op_call *c) { svdc_arena_free(c->ctx.arena); }

/* linear(x, w, b or None) -> y */
static PyObject *py_linear(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *wo, *bo;
    if (!PyArg_ParseTuple(args, "OOO", &xo, &wo, &bo)) return NULL;
    PyArrayObject *x = svdc_py_f32_array(xo, "x", -1), *w = NULL, *b = NULL, *y = NULL;
    if (!x) return NULL;
    if (!(w = svdc_py_f32_array(wo, "w", -1))) goto done;
    if (bo != Py_None && !(b = svdc_py_f32_array(bo, "b", -1))) goto done;
    svdc_tensor xt = svdc_py_tensor(x), wt = svdc_py_tensor(w), bt;
    if (b) bt = svdc_py_tensor(b);
    int64_t shape[SVDC_MAX_DIMS];
    for (int i = 0; i < xt.ndim; i++) shape[i] = xt.shape[i];
    shape[xt.ndim - 1] = wt.ndim == 2 ? wt.shape[0] : 0;
    if (!(y = svdc_py_new_f32(xt.ndim, shape))) goto done;
    svdc_tensor yt = svdc_py_tensor(y);
    op_call c;
    if (op_call_begin(&c) < 0) goto fail;
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS s = svdc_op_linear(&c.ctx, &xt, &wt, b ? &bt : NULL, &yt);
    Py_END_ALLOW_THREADS op_call_end(&c);
    if (s) {
        svdc_py_raise(s);
        goto fail;
    }
    goto done;
fail:
    Py_CLEAR(y);
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    return (PyObject *)y;
}

static PyMethodDef ops_methods[] = {
    {"linear", py_linear, METH_VARARGS, "linear(x, w, b|None) -> x @ w.T + b"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ops_def = {PyModuleDef_HEAD_INIT, "svdc._C._ops", "Single CPU ops for tests.", -1,
                                     ops_methods};

int svdc_py_register_ops(PyObject *module) {
    PyObject *ops = PyModule_Create(&ops_def);
    if (!ops) return -1;
    if (PyModule_AddObject(module, "_ops", ops) < 0) {
        Py_DECREF(ops);
        return -1;
    }
    return 0;
}
