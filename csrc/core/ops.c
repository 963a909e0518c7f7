/* ops.c — validation and dispatch for every op of ops.h: check devices, dtypes and shapes, name the tensor and the
 * expected vs actual value on failure, then call the backend. */
#include "ops.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"

/* Forwards a backend failure, copying the backend module's error text into ours. */
static svdc_status dispatch_result(const svdc_ctx *ctx, svdc_status s) {
    if (s != SVDC_OK && ctx->backend->last_error != svdc_last_error)
        svdc_fail(s, "%s", ctx->backend->last_error());
    return s;
}

#define REQUIRE_BACKEND_OP(ctx, op)                                                                              \
    do {                                                                                                         \
        if (!(ctx)->backend->op)                                                                                 \
            return svdc_fail(SVDC_ERR_DEVICE, #op ": not implemented on the %s backend yet", (ctx)->backend->name); \
    } while (0)

/* Checks that t is present, on the context's device, and float32 (the CPU compute type). */
static svdc_status check_tensor(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t) {
    if (!t || !t->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s is missing", op, name);
    if (t->device != ctx->device)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s is on device %d, expected device %d", op, name, t->device,
                         ctx->device);
    if (t->dtype != SVDC_DTYPE_F32)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has dtype %s, expected float32", op, name,
                         svdc_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > SVDC_MAX_DIMS)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has %d dimensions, expected 1..%d", op, name, t->ndim,
                         SVDC_MAX_DIMS);
    return SVDC_OK;
}

static svdc_status check_shape(const char *op, const char *name, const svdc_tensor *t, int ndim,
                               const int64_t *expected) {
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == expected[i];
    if (same) return SVDC_OK;
    svdc_tensor e = svdc_tensor_view(NULL, t->dtype, t->device, ndim, expected);
    char a[128], b[128];
    return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has shape %s, expected %s", op, name, svdc_shape_str(t, a, sizeof a),
                     svdc_shape_str(&e, b, sizeof b));
}

#define TRY(expr)                            \
    do {                                     \
        svdc_status try_status_ = (expr);    \
        if (try_status_) return try_status_; \
    } while (0)

svdc_status svdc_op_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                           svdc_tensor *y) {
    static const char *op = "linear";
    TRY(check_tensor(ctx, op, "x", x));
    TRY(check_tensor(ctx, op, "w", w));
    TRY(check_tensor(ctx, op, "y", y));
    if (w->ndim != 2) {
        char s[128];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: w has shape %s, expected 2 dimensions (out, in)", op,
                         svdc_shape_str(w, s, sizeof s));
    }
    const int64_t K = w->shape[1], N = w->shape[0];
    if (x->shape[x->ndim - 1] != K)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: x has %lld features in its last dim, expected %lld (w is [%lld, %lld])",
                         op, (long long)x->shape[x->ndim - 1], (long long)K, (long long)N, (long long)K);
    if (b) {
        TRY(check_tensor(ctx, op, "b", b));
        TRY(check_shape(op, "b", b, 1, &N));
    }
    int64_t expected[SVDC_MAX_DIMS];
    memcpy(expected, x->shape, sizeof expected);
    expected[x->ndim - 1] = N;
    TRY(check_shape(op, "y", y, x->ndim, expected));
    if (N >= ((int64_t)1 << 31) || K >= ((int64_t)1 << 31) || svdc_tensor_numel(x) / (K ? K : 1) >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "%s: a matrix dimension reaches 2^31, which BLAS cannot take", op);
    REQUIRE_BACKEND_OP(ctx, linear);
    return dispatch_result(ctx, ctx->backend->linear(ctx, x, w, b, y));
}
