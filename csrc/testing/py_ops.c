/* py_ops.c — svdc._C_testing: the op-test surface, a separate extension module that only tests and benchmarks load
 * (svdc._native.testing_ops()). It runs single ops with NumPy arrays, on the CPU backend (so the unit tests can compare
 * every op against NumPy) or on the CUDA backend (so the CUDA tests can compare it with the CPU). Not public API.
 * py_resblock.c adds one whole block (st_resblock) to the module, for the diffusers parity test of that block.
 * It compiles no core or binding file: every svdc_* symbol it calls (the ops, the device registry, the transfer
 * service, the emulated device's controls, the binding helpers and NumPy's API table) is svdc._C's, which
 * testing_ops() makes global before loading this module, so both share one core, one registry and one emu state.
 *
 * Every binding follows one pattern: parse the Python arguments into an `op_call` (input arrays as tensors, scalar
 * arguments), work out the output shape (when the inputs are malformed any shape will do: ops.c names the bad input
 * before it looks at y), then `op_call_finish` allocates the output, releases the GIL, runs the op's thunk with a
 * fresh CPU context and arena, and maps a failure to the exception of its status. Ops marked "in place allowed" in
 * ops.h take `out=` (a float32 array of the output shape, e.g. the input itself).
 *
 * Every op also takes `device="cpu"|"emu"|"cuda"|"cuda:N"` (resolved by the core's device registry) and
 * `dtype="fp32"|"fp16"|"bf16"` (or a tuple with one dtype per input, in argument order, then the output's). Off the
 * plain CPU float32 path the call is staged through the core's transfer service (run_staged): the float32 inputs
 * are copied to the device, converted there, the op runs into an output of the chosen dtype, which is converted back
 * to float32 and copied out. `repeat=N` (staged calls) times N more runs on the device after the first;
 * last_op_ms() reads the time per run. OP_LIST names the ops of the core's op list; emu_* control the emulated
 * device (kernels/emu/emu.h). */
/* NumPy's API table is a hidden symbol per module: this module imports its own. */
#define SVDC_PY_IMPORT_ARRAY
#include "../python/util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/arena.h"
#include "../core/backend.h"
#include "../core/device.h"
#include "../core/ops.h"
#include "../core/transfer.h"
#include "../../kernels/cpu/packed.h"
#include "../../kernels/emu/emu.h"

#define MAX_IN 4

typedef struct op_call op_call;
typedef svdc_status (*op_thunk)(const svdc_ctx *ctx, op_call *c);

struct op_call {
    PyArrayObject *in[MAX_IN];
    svdc_tensor t[MAX_IN]; /* the inputs, in argument order */
    int present[MAX_IN];   /* 0 for an optional input given as None */
    int nin;
    svdc_tensor y;
    int i[6];        /* integer arguments, meaning per op */
    float f[2];      /* float arguments */
    const char *s;   /* string argument (check_finite's `what`) */
};

/* The arena high-water mark of the last op call (bytes), for the tests that check attention memory is O(block). */
static size_t last_arena_peak;

/* ---- where an op runs ---- */

typedef struct op_target {
    const svdc_backend *backend;
    int device;       /* SVDC_DEVICE_CPU or the backend's ordinal */
    PyObject *dtype;  /* borrowed from the call's keywords: NULL/None, a str, or a tuple of str */
    int repeat;       /* repeat=N (staged calls): time N more runs of the op on the device */
} op_target;

/* Milliseconds per run of the last staged call's repeat= runs (0 when none), for benchmarks. */
static double last_op_ms;

/* The target of the binding running on this thread (set by `targeted` around the binding's body). */
static _Thread_local const op_target *current_target;

static int parse_device(PyObject *obj, op_target *t) {
    const char *d = PyUnicode_Check(obj) ? PyUnicode_AsUTF8(obj) : NULL;
    if (!d) {
        PyErr_Format(PyExc_TypeError, "device: expected 'cpu', 'emu', 'cuda' or 'cuda:N', got %R", obj);
        return -1;
    }
    svdc_status s = svdc_device_parse(d, &t->backend, &t->device);
    if (s) {
        svdc_py_raise(s);
        return -1;
    }
    return 0;
}

static int parse_dtype_name(PyObject *obj, svdc_dtype *out) {
    const char *d = obj && PyUnicode_Check(obj) ? PyUnicode_AsUTF8(obj) : NULL;
    if (d && (!strcmp(d, "fp32") || !strcmp(d, "float32"))) *out = SVDC_DTYPE_F32;
    else if (d && (!strcmp(d, "fp16") || !strcmp(d, "float16"))) *out = SVDC_DTYPE_F16;
    else if (d && (!strcmp(d, "bf16") || !strcmp(d, "bfloat16"))) *out = SVDC_DTYPE_BF16;
    else {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "dtype: expected 'fp32', 'fp16' or 'bf16', got %R", obj);
        return -1;
    }
    return 0;
}

/* dts[0..nin) for the inputs, dts[nin] for the output. Returns 1 when any is not float32, 0 if all are, -1 on error. */
static int resolve_dtypes(const op_target *t, int nin, svdc_dtype *dts) {
    for (int k = 0; k <= nin; k++) dts[k] = SVDC_DTYPE_F32;
    if (!t || !t->dtype || t->dtype == Py_None) return 0;
    if (PyTuple_Check(t->dtype)) {
        if (PyTuple_GET_SIZE(t->dtype) != nin + 1) {
            PyErr_Format(PyExc_ValueError, "dtype: expected %d entries (one per input, then the output), got %zd",
                         nin + 1, PyTuple_GET_SIZE(t->dtype));
            return -1;
        }
        for (int k = 0; k <= nin; k++)
            if (parse_dtype_name(PyTuple_GET_ITEM(t->dtype, k), &dts[k]) < 0) return -1;
    } else {
        svdc_dtype d;
        if (parse_dtype_name(t->dtype, &d) < 0) return -1;
        for (int k = 0; k <= nin; k++) dts[k] = d;
    }
    for (int k = 0; k <= nin; k++)
        if (dts[k] != SVDC_DTYPE_F32) return 1;
    return 0;
}

typedef PyObject *(*binding_fn)(PyObject *self, PyObject *args, PyObject *kw);

/* Strips device= and dtype= from the keywords, records them as this thread's target, runs the binding. */
static PyObject *targeted(binding_fn fn, PyObject *self, PyObject *args, PyObject *kw) {
    op_target t = {svdc_backend_cpu(), SVDC_DEVICE_CPU, NULL, 0};
    PyObject *dev = kw ? PyDict_GetItemString(kw, "device") : NULL;
    PyObject *dt = kw ? PyDict_GetItemString(kw, "dtype") : NULL;
    PyObject *rep = kw ? PyDict_GetItemString(kw, "repeat") : NULL;
    PyObject *rest = NULL;
    if (dev || dt || rep) {
        if (!(rest = PyDict_Copy(kw))) return NULL;
        if ((dev && PyDict_DelItemString(rest, "device") < 0) || (dt && PyDict_DelItemString(rest, "dtype") < 0) ||
            (rep && PyDict_DelItemString(rest, "repeat") < 0) ||
            (dev && dev != Py_None && parse_device(dev, &t) < 0)) {
            Py_DECREF(rest);
            return NULL;
        }
        t.dtype = dt;  /* borrowed: kw outlives this call */
        if (rep) {
            long n = PyLong_AsLong(rep);
            if (n == -1 && PyErr_Occurred()) {
                Py_DECREF(rest);
                return NULL;
            }
            if (n < 0 || n > 100000) {
                Py_DECREF(rest);
                PyErr_Format(PyExc_ValueError, "repeat: expected 0..100000, got %ld", n);
                return NULL;
            }
            t.repeat = (int)n;
        }
    }
    const op_target *saved = current_target;
    current_target = &t;
    PyObject *r = fn(self, args, rest ? rest : kw);
    current_target = saved;
    Py_XDECREF(rest);
    return r;
}

/* Runs `thunk` on ctx's backend with staged inputs (see the header comment). c->t / c->y hold the host tensors on
 * entry (their dtype says what the host buffers hold) and again on return. dts: each input's dtype on the device,
 * then the output's. y_alias >= 0: the output is input y_alias (in place), else a new device buffer. Runs without
 * the GIL. */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static svdc_status run_staged(op_call *c, op_thunk thunk, const svdc_backend *be, int device, const svdc_dtype *dts,
                              int y_alias, int repeat) {
    svdc_ctx ctx = {be, NULL, device};
    svdc_tensor host[MAX_IN], host_y = c->y;
    memcpy(host, c->t, sizeof host);
    svdc_status s = be->synchronize(device); /* a device broken earlier refuses here */
    if (s) return s;
    if ((s = svdc_arena_init(&ctx.arena, be, device))) return s;
    for (int k = 0; k < c->nin && !s; k++)
        if (c->present[k]) s = svdc_transfer_upload(&ctx, &host[k], dts[k], &c->t[k]);
    svdc_tensor ydev = host_y;
    if (!s && y_alias >= 0) {
        if (dts[y_alias] != dts[c->nin])
            s = svdc_fail(SVDC_ERR_ARGUMENT, "out: it is input %d, whose dtype %s differs from the output dtype %s",
                          y_alias, svdc_dtype_name(dts[y_alias]), svdc_dtype_name(dts[c->nin]));
        ydev = c->t[y_alias];
    } else if (!s) {
        s = svdc_transfer_output(&ctx, &host_y, dts[c->nin], &ydev);
    }
    if (!s) {
        c->y = ydev;
        s = thunk(&ctx, c);
    }
    if (!s && repeat > 0) { /* the first run warmed up; time `repeat` more, synchronised at both ends */
        s = be->synchronize(device);
        const double t0 = now_ms();
        for (int r = 0; r < repeat && !s; r++) s = thunk(&ctx, c);
        if (!s) s = be->synchronize(device);
        last_op_ms = (now_ms() - t0) / repeat;
    }
    if (!s) s = svdc_transfer_download(&ctx, &ydev, &host_y);
    if (!s) s = be->synchronize(device);
    memcpy(c->t, host, sizeof host);
    c->y = host_y;
    svdc_arena_free(ctx.arena);
    return s;
}

static void op_call_clear(op_call *c) {
    for (int k = 0; k < c->nin; k++) Py_XDECREF(c->in[k]);
    c->nin = 0;
}

/* Adds input `name`; None is accepted when `optional`. Returns 0 or -1 with an exception set. */
static int add_input(op_call *c, PyObject *obj, const char *name, int optional) {
    const int k = c->nin++;
    c->in[k] = NULL;
    c->present[k] = 0;
    memset(&c->t[k], 0, sizeof c->t[k]);
    if (optional && obj == Py_None) return 0;
    if (!(c->in[k] = svdc_py_f32_array(obj, name, -1))) return -1;
    c->t[k] = svdc_py_tensor(c->in[k]);
    c->present[k] = 1;
    return 0;
}

static const svdc_tensor *opt(op_call *c, int k) { return c->present[k] ? &c->t[k] : NULL; }

/* Runs `thunk` without the GIL into a new float32 array of `shape` (or into `out` when given). Steals nothing;
 * releases the inputs. Returns the output or NULL with an exception set. */
static PyObject *op_call_finish(op_call *c, op_thunk thunk, int ndim, const int64_t *shape, PyObject *out) {
    PyArrayObject *y = NULL;
    if (out && out != Py_None) {
        if (!(y = svdc_py_f32_array(out, "out", -1))) goto fail;
    } else {
        int64_t safe[SVDC_MAX_DIMS];
        for (int k = 0; k < ndim; k++) safe[k] = shape[k] < 0 ? 0 : shape[k];
        if (!(y = svdc_py_new_f32(ndim, safe))) goto fail;
    }
    c->y = svdc_py_tensor(y);
    const op_target *t = current_target;
    svdc_dtype dts[MAX_IN + 1];
    const int converted = resolve_dtypes(t, c->nin, dts);
    if (converted < 0) goto fail;
    svdc_status s;
    /* Staged off the plain path, and whenever dtype= is given (so the CPU can exercise the staging too). */
    if (converted || (t && (t->device != SVDC_DEVICE_CPU || (t->dtype && t->dtype != Py_None)))) {
        int alias = -1;
        for (int k = 0; k < c->nin; k++)
            if (c->present[k] && c->t[k].data == c->y.data) alias = k;
        const svdc_backend *be = t->backend;
        const int device = t->device;
        Py_BEGIN_ALLOW_THREADS
        const int repeat = t->repeat;
        s = run_staged(c, thunk, be, device, dts, alias, repeat);
        Py_END_ALLOW_THREADS
        if (s) {
            svdc_py_raise(s);
            goto fail;
        }
        op_call_clear(c);
        return (PyObject *)y;
    }
    svdc_ctx ctx = {svdc_backend_cpu(), NULL, SVDC_DEVICE_CPU};
    s = svdc_arena_init(&ctx.arena, ctx.backend, SVDC_DEVICE_CPU);
    if (s) {
        svdc_py_raise(s);
        goto fail;
    }
    size_t peak;
    Py_BEGIN_ALLOW_THREADS
    s = thunk(&ctx, c);
    peak = svdc_arena_peak(ctx.arena);
    svdc_arena_free(ctx.arena);
    Py_END_ALLOW_THREADS
    last_arena_peak = peak;
    if (s) {
        svdc_py_raise(s);
        goto fail;
    }
    op_call_clear(c);
    return (PyObject *)y;
fail:
    Py_XDECREF(y);
    op_call_clear(c);
    return NULL;
}

/* Copies the shape of input k (or (1,) when it is absent) into shape; returns its ndim. */
static int shape_of(op_call *c, int k, int64_t *shape) {
    if (!c->present[k] || c->t[k].ndim < 1) {
        shape[0] = 1;
        return 1;
    }
    memcpy(shape, c->t[k].shape, sizeof(int64_t) * (size_t)c->t[k].ndim);
    return c->t[k].ndim;
}

#define DIM(c, k, d) ((c)->present[k] && (c)->t[k].ndim > (d) ? (c)->t[k].shape[d] : 1)

/* ---- thunks: one line each, the op call with the parsed arguments ---- */

static svdc_status run_linear(const svdc_ctx *x, op_call *c) {
    return svdc_op_linear(x, &c->t[0], &c->t[1], opt(c, 2), &c->y);
}
static svdc_status run_conv2d(const svdc_ctx *x, op_call *c) {
    const svdc_conv2d_params p = {c->i[0], c->i[1], c->i[2], c->i[3], c->i[4], c->i[5]};
    return svdc_op_conv2d(x, &c->t[0], &c->t[1], opt(c, 2), &p, &c->y);
}
static svdc_status run_conv_temporal(const svdc_ctx *x, op_call *c) {
    return svdc_op_conv_temporal(x, &c->t[0], c->i[0], &c->t[1], opt(c, 2), &c->y);
}
static svdc_status run_group_norm(const svdc_ctx *x, op_call *c) {
    return svdc_op_group_norm_biased(x, &c->t[0], opt(c, 3), c->i[0], c->i[1], opt(c, 1), opt(c, 2), c->f[0], c->i[2],
                                     &c->y);
}
static svdc_status run_group_norm_moments(const svdc_ctx *x, op_call *c) {
    return svdc_op_group_norm_moments(x, &c->t[0], c->i[0], c->i[1], &c->y);
}
static svdc_status run_group_norm_apply(const svdc_ctx *x, op_call *c) {
    return svdc_op_group_norm_apply(x, &c->t[0], c->i[0], c->i[1], &c->t[1], opt(c, 2), opt(c, 3), c->i[2], &c->y);
}
static svdc_status run_layer_norm(const svdc_ctx *x, op_call *c) {
    return svdc_op_layer_norm(x, &c->t[0], opt(c, 1), opt(c, 2), c->f[0], &c->y);
}
static svdc_status run_attention(const svdc_ctx *x, op_call *c) {
    return svdc_op_attention(x, &c->t[0], &c->t[1], &c->t[2], c->i[0], c->f[0], c->i[1], &c->y);
}
static svdc_status run_gelu(const svdc_ctx *x, op_call *c) { return svdc_op_gelu(x, &c->t[0], &c->y); }
static svdc_status run_silu(const svdc_ctx *x, op_call *c) { return svdc_op_silu(x, &c->t[0], &c->y); }
static svdc_status run_geglu(const svdc_ctx *x, op_call *c) { return svdc_op_geglu(x, &c->t[0], &c->y); }
static svdc_status run_axpby(const svdc_ctx *x, op_call *c) {
    return svdc_op_axpby(x, c->f[0], &c->t[0], c->f[1], &c->t[1], &c->y);
}
static svdc_status run_add(const svdc_ctx *x, op_call *c) { return svdc_op_add(x, &c->t[0], &c->t[1], &c->y); }
static svdc_status run_mul(const svdc_ctx *x, op_call *c) { return svdc_op_mul(x, &c->t[0], &c->t[1], &c->y); }
static svdc_status run_scale(const svdc_ctx *x, op_call *c) { return svdc_op_scale(x, &c->t[0], c->f[0], &c->y); }
static svdc_status run_alpha_blend(const svdc_ctx *x, op_call *c) {
    return svdc_op_alpha_blend(x, &c->t[0], &c->t[1], c->f[0], &c->y);
}
static svdc_status run_add_channel_bias(const svdc_ctx *x, op_call *c) {
    return svdc_op_add_channel_bias(x, &c->t[0], &c->t[1], &c->y);
}
static svdc_status run_add_token_bias(const svdc_ctx *x, op_call *c) {
    return svdc_op_add_token_bias(x, &c->t[0], &c->t[1], &c->y);
}
static svdc_status run_upsample(const svdc_ctx *x, op_call *c) {
    return svdc_op_upsample_nearest2x(x, &c->t[0], &c->y);
}
static svdc_status run_concat(const svdc_ctx *x, op_call *c) {
    return svdc_op_concat_channels(x, &c->t[0], &c->t[1], &c->y);
}
static svdc_status run_permute(const svdc_ctx *x, op_call *c) { return svdc_op_permute_0213(x, &c->t[0], &c->y); }
static svdc_status run_permute_axpby(const svdc_ctx *x, op_call *c) {
    return svdc_op_permute_0213_axpby(x, c->f[0], &c->t[0], c->f[1], &c->t[1], &c->y);
}
static svdc_status run_timestep(const svdc_ctx *x, op_call *c) {
    return svdc_op_timestep_embedding(x, &c->t[0], c->i[0], &c->y);
}
static svdc_status run_copy(const svdc_ctx *x, op_call *c) { return svdc_op_copy(x, &c->t[0], &c->y); }
static svdc_status run_fill(const svdc_ctx *x, op_call *c) { return svdc_op_fill(x, &c->y, c->f[0]); }
static svdc_status run_check_finite(const svdc_ctx *x, op_call *c) {
    return svdc_op_check_finite(x, &c->t[0], c->s);
}

/* ---- bindings ---- */

#define PARSE(fmt, kwlist, ...) \
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, (char **)kwlist, __VA_ARGS__)) return NULL
#define INPUT(obj, name, optional) \
    if (add_input(&c, obj, name, optional) < 0) goto fail

static PyObject *py_linear(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "w", "b", NULL};
    PyObject *xo, *wo, *bo = Py_None;
    op_call c = {0};
    PARSE("OO|O", kwl, &xo, &wo, &bo);
    INPUT(xo, "x", 0);
    INPUT(wo, "w", 0);
    INPUT(bo, "b", 1);
    int64_t shape[SVDC_MAX_DIMS];
    int nd = shape_of(&c, 0, shape);
    shape[nd - 1] = c.t[1].ndim == 2 ? c.t[1].shape[0] : 1;
    return op_call_finish(&c, run_linear, nd, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_conv2d(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "w", "b", "stride", "padding", NULL};
    PyObject *xo, *wo, *bo = Py_None;
    op_call c = {0};
    c.i[0] = c.i[1] = 1;
    PARSE("OO|O(ii)(iiii)", kwl, &xo, &wo, &bo, &c.i[0], &c.i[1], &c.i[2], &c.i[3], &c.i[4], &c.i[5]);
    INPUT(xo, "x", 0);
    INPUT(wo, "w", 0);
    INPUT(bo, "b", 1);
    /* Ho = (H + top + bottom - kh) / sh + 1; nonsense values are clamped (ops.c rejects them first). */
    const int64_t sh = c.i[0] > 0 ? c.i[0] : 1, sw = c.i[1] > 0 ? c.i[1] : 1;
    const int64_t hp = DIM(&c, 0, 2) + c.i[2] + c.i[3] - DIM(&c, 1, 2);
    const int64_t wp = DIM(&c, 0, 3) + c.i[4] + c.i[5] - DIM(&c, 1, 3);
    const int64_t shape[4] = {DIM(&c, 0, 0), DIM(&c, 1, 0), hp >= 0 ? hp / sh + 1 : 0, wp >= 0 ? wp / sw + 1 : 0};
    return op_call_finish(&c, run_conv2d, 4, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_conv_temporal(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "num_frames", "w", "b", NULL};
    PyObject *xo, *wo, *bo = Py_None;
    op_call c = {0};
    PARSE("OiO|O", kwl, &xo, &c.i[0], &wo, &bo);
    INPUT(xo, "x", 0);
    INPUT(wo, "w", 0);
    INPUT(bo, "b", 1);
    const int64_t shape[4] = {DIM(&c, 0, 0), DIM(&c, 1, 0), DIM(&c, 0, 2), DIM(&c, 0, 3)};
    return op_call_finish(&c, run_conv_temporal, 4, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_group_norm(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "groups", "frames", "gamma", "beta", "eps", "silu", "out", "bias", NULL};
    PyObject *xo, *go = Py_None, *bo = Py_None, *out = NULL, *ao = Py_None;
    op_call c = {0};
    c.i[1] = 1;
    c.f[0] = 1e-5f;
    PARSE("Oi|iOOfpOO", kwl, &xo, &c.i[0], &c.i[1], &go, &bo, &c.f[0], &c.i[2], &out, &ao);
    INPUT(xo, "x", 0);
    INPUT(go, "gamma", 1);
    INPUT(bo, "beta", 1);
    if (ao != Py_None) INPUT(ao, "bias", 0); /* an input (and a dtype= entry) only when given */
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_group_norm, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}

/* moments (N/frames, groups, 3) float32: stage it with a dtype tuple, e.g. dtype=("fp16", "fp32") */
static PyObject *py_group_norm_moments(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "groups", "frames", NULL};
    PyObject *xo;
    op_call c = {0};
    c.i[1] = 1;
    PARSE("Oi|i", kwl, &xo, &c.i[0], &c.i[1]);
    INPUT(xo, "x", 0);
    const int64_t shape[3] = {c.i[1] > 0 ? DIM(&c, 0, 0) / c.i[1] : 1, c.i[0], 3};
    return op_call_finish(&c, run_group_norm_moments, 3, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

/* stats (N/frames, groups, 3) float32 = (mean_hi, mean_lo, rstd) */
static PyObject *py_group_norm_apply(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "groups", "stats", "frames", "gamma", "beta", "silu", "out", NULL};
    PyObject *xo, *so, *go = Py_None, *bo = Py_None, *out = NULL;
    op_call c = {0};
    c.i[1] = 1;
    PARSE("OiO|iOOpO", kwl, &xo, &c.i[0], &so, &c.i[1], &go, &bo, &c.i[2], &out);
    INPUT(xo, "x", 0);
    INPUT(so, "stats", 0);
    INPUT(go, "gamma", 1);
    INPUT(bo, "beta", 1);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_group_norm_apply, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_layer_norm(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "gamma", "beta", "eps", "out", NULL};
    PyObject *xo, *go = Py_None, *bo = Py_None, *out = NULL;
    op_call c = {0};
    c.f[0] = 1e-5f;
    PARSE("O|OOfO", kwl, &xo, &go, &bo, &c.f[0], &out);
    INPUT(xo, "x", 0);
    INPUT(go, "gamma", 1);
    INPUT(bo, "beta", 1);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_layer_norm, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_attention(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"q", "k", "v", "num_heads", "scale", "causal", NULL};
    PyObject *qo, *ko, *vo;
    op_call c = {0};
    PARSE("OOOif|p", kwl, &qo, &ko, &vo, &c.i[0], &c.f[0], &c.i[1]);
    INPUT(qo, "q", 0);
    INPUT(ko, "k", 0);
    INPUT(vo, "v", 0);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_attention, nd, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

/* One array in, output of the same shape (or, for geglu, half the last dim); `out=` for the in-place ones. */
static PyObject *unary(PyObject *args, PyObject *kw, op_thunk thunk, int halve_last) {
    static const char *kwl[] = {"x", "out", NULL};
    PyObject *xo, *out = NULL;
    op_call c = {0};
    PARSE("O|O", kwl, &xo, &out);
    INPUT(xo, "x", 0);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    if (halve_last) shape[nd - 1] /= 2;
    return op_call_finish(&c, thunk, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}
static PyObject *py_gelu(PyObject *s, PyObject *a, PyObject *k) { (void)s; return unary(a, k, run_gelu, 0); }
static PyObject *py_silu(PyObject *s, PyObject *a, PyObject *k) { (void)s; return unary(a, k, run_silu, 0); }
static PyObject *py_geglu(PyObject *s, PyObject *a, PyObject *k) { (void)s; return unary(a, k, run_geglu, 1); }
static PyObject *py_upsample(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", NULL};
    PyObject *xo;
    op_call c = {0};
    PARSE("O", kwl, &xo);
    INPUT(xo, "x", 0);
    const int64_t shape[4] = {DIM(&c, 0, 0), DIM(&c, 0, 1), 2 * DIM(&c, 0, 2), 2 * DIM(&c, 0, 3)};
    return op_call_finish(&c, run_upsample, 4, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}
static PyObject *py_permute(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", NULL};
    PyObject *xo;
    op_call c = {0};
    PARSE("O", kwl, &xo);
    INPUT(xo, "x", 0);
    const int64_t shape[4] = {DIM(&c, 0, 0), DIM(&c, 0, 2), DIM(&c, 0, 1), DIM(&c, 0, 3)};
    return op_call_finish(&c, run_permute, 4, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_permute_axpby(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"alpha", "x", "beta", "r", "out", NULL};
    PyObject *xo, *ro, *out = NULL;
    op_call c = {0};
    PARSE("fOfO|O", kwl, &c.f[0], &xo, &c.f[1], &ro, &out);
    INPUT(xo, "x", 0);
    INPUT(ro, "r", 0);
    const int64_t shape[4] = {DIM(&c, 0, 0), DIM(&c, 0, 2), DIM(&c, 0, 1), DIM(&c, 0, 3)};
    return op_call_finish(&c, run_permute_axpby, 4, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}

/* Two arrays in (names a/b or as given), output shaped like the first; floats before/between as the op needs. */
static PyObject *binary(PyObject *args, PyObject *kw, op_thunk thunk, const char *fmt, const char **kwl,
                        int nfloat_first, int concat) {
    PyObject *ao, *bo, *out = NULL;
    op_call c = {0};
    int ok;
    if (nfloat_first == 2) /* axpby(alpha, a, beta, b) */
        ok = PyArg_ParseTupleAndKeywords(args, kw, fmt, (char **)kwl, &c.f[0], &ao, &c.f[1], &bo, &out);
    else if (nfloat_first == 1) /* alpha_blend(x_spatial, x_temporal, alpha) */
        ok = PyArg_ParseTupleAndKeywords(args, kw, fmt, (char **)kwl, &ao, &bo, &c.f[0], &out);
    else
        ok = PyArg_ParseTupleAndKeywords(args, kw, fmt, (char **)kwl, &ao, &bo, &out);
    if (!ok) return NULL;
    const int first = nfloat_first == 2 ? 1 : 0; /* index of the first array name in kwl */
    INPUT(ao, kwl[first], 0);
    INPUT(bo, kwl[first + (nfloat_first == 2 ? 2 : 1)], 0);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    if (concat && nd > 1) shape[1] += DIM(&c, 1, 1);
    return op_call_finish(&c, thunk, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}
static const char *kw_ab[] = {"a", "b", "out", NULL};
static PyObject *py_add(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    return binary(a, k, run_add, "OO|O", kw_ab, 0, 0);
}
static PyObject *py_mul(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    return binary(a, k, run_mul, "OO|O", kw_ab, 0, 0);
}
static PyObject *py_axpby(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    static const char *kwl[] = {"alpha", "a", "beta", "b", "out", NULL};
    return binary(a, k, run_axpby, "fOfO|O", kwl, 2, 0);
}
static PyObject *py_alpha_blend(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    static const char *kwl[] = {"x_spatial", "x_temporal", "alpha", "out", NULL};
    return binary(a, k, run_alpha_blend, "OOf|O", kwl, 1, 0);
}
static PyObject *py_add_channel_bias(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    static const char *kwl[] = {"x", "bias", "out", NULL};
    return binary(a, k, run_add_channel_bias, "OO|O", kwl, 0, 0);
}
static PyObject *py_add_token_bias(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    static const char *kwl[] = {"x", "v", "out", NULL};
    return binary(a, k, run_add_token_bias, "OO|O", kwl, 0, 0);
}
static PyObject *py_concat(PyObject *s, PyObject *a, PyObject *k) {
    (void)s;
    static const char *kwl[] = {"a", "b", "out", NULL};
    return binary(a, k, run_concat, "OO|O", kwl, 0, 1);
}

static PyObject *py_scale(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "alpha", "out", NULL};
    PyObject *xo, *out = NULL;
    op_call c = {0};
    PARSE("Of|O", kwl, &xo, &c.f[0], &out);
    INPUT(xo, "x", 0);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_scale, nd, shape, out);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_copy(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    return unary(args, kw, run_copy, 0);
}

static PyObject *py_fill(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"like", "value", NULL};
    PyObject *xo;
    op_call c = {0};
    PARSE("Of", kwl, &xo, &c.f[0]);
    INPUT(xo, "like", 0);
    int64_t shape[SVDC_MAX_DIMS];
    const int nd = shape_of(&c, 0, shape);
    return op_call_finish(&c, run_fill, nd, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_timestep_embedding(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"t", "dim", NULL};
    PyObject *to;
    op_call c = {0};
    PARSE("Oi", kwl, &to, &c.i[0]);
    INPUT(to, "t", 0);
    const int64_t shape[2] = {DIM(&c, 0, 0), c.i[0]};
    return op_call_finish(&c, run_timestep, 2, shape, NULL);
fail:
    op_call_clear(&c);
    return NULL;
}

static PyObject *py_check_finite(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "what", NULL};
    PyObject *xo;
    op_call c = {0};
    c.s = "x";
    PARSE("O|s", kwl, &xo, &c.s);
    INPUT(xo, "x", 0);
    const int64_t one = 1;
    PyObject *r = op_call_finish(&c, run_check_finite, 1, &one, NULL);
    if (!r) return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
fail:
    op_call_clear(&c);
    return NULL;
}

/* convert(x, to): x float32 / float16 / uint16 (bfloat16 bits) -> "f32" | "f16" | "bf16" (bf16 as uint16 bits). */
static svdc_status run_convert(const svdc_ctx *x, op_call *c) {
    svdc_tensor in = c->t[0], out = c->y;
    in.dtype = (svdc_dtype)c->i[0];
    out.dtype = (svdc_dtype)c->i[1];
    return svdc_op_convert(x, &in, &out);
}

static PyObject *py_convert(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"x", "to", NULL};
    PyObject *xo;
    const char *to;
    PARSE("Os", kwl, &xo, &to);
    if (!PyArray_Check(xo)) {
        PyErr_Format(PyExc_TypeError, "x: expected a numpy.ndarray, got %s", Py_TYPE(xo)->tp_name);
        return NULL;
    }
    PyArrayObject *x = (PyArrayObject *)xo;
    int from;
    switch (PyArray_TYPE(x)) {
    case NPY_FLOAT32: from = SVDC_DTYPE_F32; break;
    case NPY_FLOAT16: from = SVDC_DTYPE_F16; break;
    case NPY_UINT16: from = SVDC_DTYPE_BF16; break;
    default:
        PyErr_Format(svdc_py_ShapeError, "convert: x must be float32, float16 or uint16 (bfloat16 bits), got %s",
                     PyArray_DESCR(x)->typeobj->tp_name);
        return NULL;
    }
    int dst, npy;
    if (!strcmp(to, "f32")) dst = SVDC_DTYPE_F32, npy = NPY_FLOAT32;
    else if (!strcmp(to, "f16")) dst = SVDC_DTYPE_F16, npy = NPY_FLOAT16;
    else if (!strcmp(to, "bf16")) dst = SVDC_DTYPE_BF16, npy = NPY_UINT16;
    else {
        PyErr_Format(PyExc_ValueError, "convert: to must be 'f32', 'f16' or 'bf16', got '%s'", to);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(x) || !PyArray_ISALIGNED(x) || PyArray_NDIM(x) > SVDC_MAX_DIMS ||
        PyArray_NDIM(x) < 1) {
        PyErr_SetString(svdc_py_ShapeError, "convert: x must be a C-contiguous, aligned array of 1..6 dims");
        return NULL;
    }
    PyArrayObject *y = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(x), PyArray_DIMS(x), npy);
    if (!y) return NULL;
    op_call c = {0};
    Py_INCREF(x);
    c.in[0] = x;
    c.nin = 1;
    c.present[0] = 1;
    c.t[0] = svdc_py_tensor(x);
    c.i[0] = from;
    c.i[1] = dst;
    /* y may be float16/uint16, which op_call_finish (float32 outputs) does not take: run the op here. */
    svdc_tensor yt = svdc_py_tensor(y);
    const op_target *t = current_target;
    if (t && t->dtype && t->dtype != Py_None) {
        op_call_clear(&c);
        Py_DECREF(y);
        PyErr_SetString(PyExc_ValueError, "convert: dtype= does not apply (x's array type and `to` give the dtypes)");
        return NULL;
    }
    svdc_status s;
    if (t && t->device != SVDC_DEVICE_CPU) {
        /* Staged with no conversion: x travels in its own dtype, y comes back in `to`. */
        c.t[0].dtype = (svdc_dtype)from;
        yt.dtype = (svdc_dtype)dst;
        c.y = yt;
        const svdc_dtype dts[2] = {(svdc_dtype)from, (svdc_dtype)dst};
        const svdc_backend *be = t->backend;
        const int device = t->device;
        Py_BEGIN_ALLOW_THREADS
        const int repeat = t->repeat;
        s = run_staged(&c, run_convert, be, device, dts, -1, repeat);
        Py_END_ALLOW_THREADS
        op_call_clear(&c);
        if (s) {
            Py_DECREF(y);
            return svdc_py_raise(s);
        }
        return (PyObject *)y;
    }
    svdc_ctx ctx = {svdc_backend_cpu(), NULL, SVDC_DEVICE_CPU};
    s = svdc_arena_init(&ctx.arena, ctx.backend, SVDC_DEVICE_CPU);
    if (!s) {
        c.y = yt;
        Py_BEGIN_ALLOW_THREADS
        s = run_convert(&ctx, &c);
        svdc_arena_free(ctx.arena);
        Py_END_ALLOW_THREADS
    }
    op_call_clear(&c);
    if (s) {
        Py_DECREF(y);
        return svdc_py_raise(s);
    }
    return (PyObject *)y;
}

/* arena_alloc(nbytes, device=...): allocates nbytes from a fresh arena on the device and frees them again; raises
 * MemoryError (naming the bytes, and on a GPU what is free) when the device cannot. */
static PyObject *py_arena_alloc(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static const char *kwl[] = {"nbytes", NULL};
    unsigned long long nbytes;
    PARSE("K", kwl, &nbytes);
    const op_target *t = current_target;
    const svdc_backend *be = t ? t->backend : svdc_backend_cpu();
    const int device = t ? t->device : SVDC_DEVICE_CPU;
    svdc_status s;
    Py_BEGIN_ALLOW_THREADS
    svdc_arena *arena = NULL;
    s = be->synchronize(device);
    if (!s) s = svdc_arena_init(&arena, be, device);
    if (!s && !svdc_arena_alloc(arena, (size_t)nbytes)) s = svdc_arena_last_status(arena);
    svdc_arena_free(arena);
    Py_END_ALLOW_THREADS
    if (s) return svdc_py_raise(s);
    Py_RETURN_NONE;
}

/* ---- the emulated device's controls (kernels/emu/emu.h) ---- */

static PyObject *py_emu_set_chunk_budget(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "emu_set_chunk_budget: expected bytes >= 0, got %zd", n);
        return NULL;
    }
    svdc_emu_set_chunk_budget((size_t)n);
    Py_RETURN_NONE;
}

static PyObject *py_emu_stats(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    svdc_emu_stats st;
    svdc_emu_get_stats(&st);
    return Py_BuildValue("{s:L, s:L, s:L, s:L, s:L, s:L, s:L}", "allocs", st.allocs, "frees", st.frees, "live_count",
                         st.live_count, "live_bytes", st.live_bytes, "op_calls", st.op_calls, "bytes_to_device",
                         st.bytes_to_device, "bytes_to_host", st.bytes_to_host);
}

static PyObject *py_emu_reset_counters(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    svdc_emu_reset_counters();
    Py_RETURN_NONE;
}

static PyObject *py_emu_fail_allocation(PyObject *self, PyObject *arg) {
    (void)self;
    long long n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < -1) {
        PyErr_Format(PyExc_ValueError, "emu_fail_allocation: expected -1 (off) or an index >= 0, got %lld", n);
        return NULL;
    }
    svdc_emu_fail_allocation(n);
    Py_RETURN_NONE;
}

static PyObject *py_emu_set_sticky(PyObject *self, PyObject *arg) {
    (void)self;
    if (arg == Py_None) {
        svdc_emu_set_sticky(NULL);
        Py_RETURN_NONE;
    }
    const char *reason = PyUnicode_AsUTF8(arg);
    if (!reason) return NULL;
    svdc_emu_set_sticky(reason);
    Py_RETURN_NONE;
}

static PyObject *py_emu_set_dry_run(PyObject *self, PyObject *arg) {
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    svdc_emu_set_dry_run(on);
    Py_RETURN_NONE;
}

static PyObject *py_last_op_ms(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(last_op_ms);
}

static PyObject *py_last_arena_peak(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromSize_t(last_arena_peak);
}

/* ---- weights packed as at load (kernels/cpu/packed.h), for the packed-vs-unpacked tests ---- */

typedef struct prepacked {
    svdc_packed_weight *pw;
    PyObject *array; /* the weight, kept alive while its address is registered */
} prepacked;

static void prepacked_destroy(PyObject *capsule) {
    prepacked *h = PyCapsule_GetPointer(capsule, "svdc.prepacked");
    if (!h) return;
    svdc_packed_unregister(h->pw);
    svdc_packed_free(h->pw);
    Py_XDECREF(h->array);
    free(h);
}

/* prepack(w): packs the C-contiguous float32 array w by its shape as model loading does and registers it, so CPU
 * ops given this very array use the packed path until the returned handle is dropped. None when the shape is not
 * one that loading packs. */
static PyObject *py_prepack(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyArray_Check(arg) || PyArray_TYPE((PyArrayObject *)arg) != NPY_FLOAT32 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)arg)) {
        PyErr_SetString(PyExc_TypeError, "prepack: w must be a C-contiguous float32 array");
        return NULL;
    }
    PyArrayObject *w = (PyArrayObject *)arg;
    const int ndim = PyArray_NDIM(w);
    if (ndim < 1 || ndim > SVDC_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "prepack: w has %d dimensions, expected 1 to %d", ndim, SVDC_MAX_DIMS);
        return NULL;
    }
    int64_t shape[SVDC_MAX_DIMS];
    for (int i = 0; i < ndim; i++) shape[i] = PyArray_DIM(w, i);
    svdc_packed_weight *pw = NULL;
    svdc_status s = svdc_packed_create(PyArray_DATA(w), ndim, shape, &pw);
    if (!s && pw && (s = svdc_packed_register(pw))) svdc_packed_free(pw);
    if (s) return svdc_py_raise(s);
    if (!pw) Py_RETURN_NONE;
    prepacked *h = malloc(sizeof *h);
    PyObject *capsule = h ? PyCapsule_New(h, "svdc.prepacked", prepacked_destroy) : NULL;
    if (!capsule) {
        if (!h) PyErr_NoMemory();
        svdc_packed_unregister(pw);
        svdc_packed_free(pw);
        free(h);
        return NULL;
    }
    h->pw = pw;
    h->array = arg;
    Py_INCREF(arg);
    return capsule;
}

static PyObject *py_packed_hits(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromUnsignedLongLong(svdc_packed_hits());
}

/* Each binding, wrapped so that it takes device= and dtype= (see `targeted`). */
#define TARGETED(fn) \
    static PyObject *fn##_on(PyObject *s, PyObject *a, PyObject *k) { return targeted(fn, s, a, k); }
TARGETED(py_linear)
TARGETED(py_conv2d)
TARGETED(py_conv_temporal)
TARGETED(py_group_norm)
TARGETED(py_layer_norm)
TARGETED(py_group_norm_moments)
TARGETED(py_group_norm_apply)
TARGETED(py_attention)
TARGETED(py_gelu)
TARGETED(py_silu)
TARGETED(py_geglu)
TARGETED(py_axpby)
TARGETED(py_add)
TARGETED(py_mul)
TARGETED(py_scale)
TARGETED(py_alpha_blend)
TARGETED(py_add_channel_bias)
TARGETED(py_add_token_bias)
TARGETED(py_upsample)
TARGETED(py_concat)
TARGETED(py_permute)
TARGETED(py_permute_axpby)
TARGETED(py_timestep_embedding)
TARGETED(py_convert)
TARGETED(py_copy)
TARGETED(py_fill)
TARGETED(py_check_finite)
TARGETED(py_arena_alloc)

#define OP(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn##_on, METH_VARARGS | METH_KEYWORDS, doc}
static PyMethodDef ops_methods[] = {
    OP("linear", py_linear, "linear(x, w, b=None) -> x @ w.T + b"),
    OP("conv2d", py_conv2d, "conv2d(x, w, b=None, stride=(sh, sw), padding=(top, bottom, left, right))"),
    OP("conv_temporal", py_conv_temporal, "conv_temporal(x, num_frames, w (O, C, 3), b=None)"),
    OP("group_norm", py_group_norm,
       "group_norm(x, groups, frames=1, gamma=None, beta=None, eps=1e-5, silu=False, out=None, bias=None (N, C))"),
    OP("group_norm_moments", py_group_norm_moments,
       "group_norm_moments(x, groups, frames=1) -> (N/frames, groups, 3) float32 (mean_hi, mean_lo, m2)"),
    OP("group_norm_apply", py_group_norm_apply,
       "group_norm_apply(x, groups, stats, frames=1, gamma=None, beta=None, silu=False, out=None)"),
    OP("layer_norm", py_layer_norm, "layer_norm(x, gamma=None, beta=None, eps=1e-5, out=None)"),
    OP("attention", py_attention, "attention(q, k, v, num_heads, scale, causal=False)"),
    OP("gelu", py_gelu, "gelu(x, out=None): exact erf GELU"),
    OP("silu", py_silu, "silu(x, out=None)"),
    OP("geglu", py_geglu, "geglu(x): x = [a | gate] -> a * gelu(gate)"),
    OP("axpby", py_axpby, "axpby(alpha, a, beta, b, out=None)"),
    OP("add", py_add, "add(a, b, out=None)"),
    OP("mul", py_mul, "mul(a, b, out=None)"),
    OP("scale", py_scale, "scale(x, alpha, out=None)"),
    OP("alpha_blend", py_alpha_blend, "alpha_blend(x_spatial, x_temporal, alpha, out=None)"),
    OP("add_channel_bias", py_add_channel_bias, "add_channel_bias(x (N, C, ...), bias (N, C), out=None)"),
    OP("add_token_bias", py_add_token_bias, "add_token_bias(x (N, L, C), v (N, C), out=None)"),
    OP("upsample_nearest2x", py_upsample, "upsample_nearest2x(x (N, C, H, W))"),
    OP("concat_channels", py_concat, "concat_channels(a, b)"),
    OP("permute_0213", py_permute, "permute_0213(x (A, B, C, D)) -> (A, C, B, D)"),
    OP("permute_0213_axpby", py_permute_axpby,
       "permute_0213_axpby(alpha, x (A, B, C, D), beta, r (A, C, B, D), out=None) -> alpha * permute(x) + beta * r"),
    OP("timestep_embedding", py_timestep_embedding, "timestep_embedding(t (N,), dim) -> (N, dim), cos first"),
    OP("convert", py_convert, "convert(x float32|float16|uint16-as-bf16, to='f32'|'f16'|'bf16')"),
    OP("copy", py_copy, "copy(x, out=None)"),
    OP("fill", py_fill, "fill(like, value) -> array shaped like `like` filled with value"),
    OP("check_finite", py_check_finite, "check_finite(x, what='x'): raises ValueError on NaN/Inf"),
    OP("arena_alloc", py_arena_alloc, "arena_alloc(nbytes, device='cpu'): allocate and free; MemoryError if impossible"),
    {"emu_stats", py_emu_stats, METH_NOARGS, "emu_stats() -> dict: allocations, live bytes, op calls, bytes copied"},
    {"emu_reset_counters", py_emu_reset_counters, METH_NOARGS, "emu_reset_counters(): allocs/frees/op_calls/bytes to 0"},
    {"emu_fail_allocation", py_emu_fail_allocation, METH_O, "emu_fail_allocation(n): the n-th allocation from now fails (-1: off)"},
    {"emu_set_sticky", py_emu_set_sticky, METH_O, "emu_set_sticky(reason | None): the emulated device is unusable until cleared"},
    {"emu_set_chunk_budget", py_emu_set_chunk_budget, METH_O, "emu_set_chunk_budget(bytes): 0 = one op per layer"},
    {"emu_set_dry_run", py_emu_set_dry_run, METH_O, "emu_set_dry_run(on): count ops without computing (benchmarks)"},
    {"prepack", py_prepack, METH_O, "prepack(w) -> handle | None: CPU ops on this array use its packed form while the handle lives"},
    {"packed_hits", py_packed_hits, METH_NOARGS, "packed_hits() -> int: how many op calls found a packed weight so far"},
    {"last_op_ms", py_last_op_ms, METH_NOARGS, "ms per run of the last staged call's repeat= runs (benchmarks)"},
    {"last_arena_peak", py_last_arena_peak, METH_NOARGS, "arena high-water mark (bytes) of the last CPU op call"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ops_def = {PyModuleDef_HEAD_INIT, "svdc._C_testing",
                                     "Single ops on any registered backend, the emulated device's controls and one SpatioTemporalResBlock, "
                                     "for tests.",
                                     -1, ops_methods};

/* The op list's names, in table order. */
#define OP_LIST_NAME_(name, params, args) #name,
static const char *const op_list_names[] = {SVDC_OP_LIST(OP_LIST_NAME_) NULL};

int svdc_testing_register_resblock(PyObject *module); /* py_resblock.c: st_resblock */

PyMODINIT_FUNC PyInit__C_testing(void) {
    import_array();
    PyObject *ops = PyModule_Create(&ops_def);
    if (!ops) return NULL;
    if (svdc_testing_register_resblock(ops) < 0) goto fail;
    PyObject *names = PyTuple_New(SVDC_OP_COUNT);
    if (!names) goto fail;
    for (int i = 0; i < SVDC_OP_COUNT; i++) {
        PyObject *n = PyUnicode_FromString(op_list_names[i]);
        if (!n) {
            Py_DECREF(names);
            goto fail;
        }
        PyTuple_SET_ITEM(names, i, n);
    }
    if (PyModule_AddObject(ops, "OP_LIST", names) < 0) {
        Py_DECREF(names);
        goto fail;
    }
    return ops;
fail:
    Py_DECREF(ops);
    return NULL;
}
