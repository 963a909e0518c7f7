/* ops.c — validation and dispatch for every op of ops.h: check devices, dtypes and shapes, name the tensor and the
 * expected vs actual value on failure, then call the backend. */
#include "ops.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "backend.h"
#include "try.h"

/* A backend's status as the op's (every backend writes its text into the core's one error buffer). */
static svdc_status dispatch_result(const svdc_ctx *ctx, svdc_status s) {
    (void)ctx;
    return s;
}

#define REQUIRE_BACKEND_OP(ctx, op)                                                                              \
    do {                                                                                                         \
        if (!(ctx)->backend->op)                                                                                 \
            return svdc_fail(SVDC_ERR_DEVICE, #op ": not implemented on the %s backend yet", (ctx)->backend->name); \
    } while (0)

/* Checks that t is present, on the context's device, and of a compute dtype: float32 on the CPU backend; float32,
 * float16 or bfloat16 on a device backend (check_dtypes then keeps one dtype per call). A weight operand (`weight`)
 * may be float16/bfloat16 on the CPU too: see widen_weights. */
static svdc_status check_operand(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t,
                                 int weight) {
    if (!t || !t->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s is missing", op, name);
    if (t->device != ctx->device)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s is on device %d, expected device %d", op, name, t->device,
                         ctx->device);
    if (!weight && ctx->device == SVDC_DEVICE_CPU && t->dtype != SVDC_DTYPE_F32)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has dtype %s, expected float32", op, name,
                         svdc_dtype_name(t->dtype));
    if (t->dtype != SVDC_DTYPE_F32 && t->dtype != SVDC_DTYPE_F16 && t->dtype != SVDC_DTYPE_BF16)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has an unknown dtype code %d, expected float32, float16 or bfloat16",
                         op, name, (int)t->dtype);
    if (t->ndim < 1 || t->ndim > SVDC_MAX_DIMS)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has %d dimensions, expected 1..%d", op, name, t->ndim,
                         SVDC_MAX_DIMS);
    return SVDC_OK;
}

static svdc_status check_tensor(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t) {
    return check_operand(ctx, op, name, t, 0);
}

/* check_tensor for a weight operand (w, b, gamma, beta; add's b), which may be stored in 16 bits (widen_weights). */
static svdc_status check_weight(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t) {
    return check_operand(ctx, op, name, t, 1);
}

/* The one idiom for 16-bit weight storage with float32 compute: when the output y is float32, each weight operand
 * *ws[i] stored in float16/bfloat16 is widened into a float32 tensor from the context's arena (the backend's own
 * convert op, so this works on every backend) and *ws[i] is pointed at it; the op then runs in float32 as usual and
 * release_widened gives the scratch back right after the op. Peak memory: the 16-bit weights plus one layer's
 * weights in float32. *mark is the arena mark to release to. */
static svdc_status widen_weights(const svdc_ctx *ctx, const char *op, const svdc_tensor *y, int n,
                                 const svdc_tensor **const *ws, svdc_tensor *scratch, size_t *mark) {
    *mark = ctx->arena ? svdc_arena_mark(ctx->arena) : 0;
    if (y->dtype != SVDC_DTYPE_F32) return SVDC_OK; /* 16-bit activations: one dtype per op (check_dtypes) */
    for (int i = 0; i < n; i++) {
        const svdc_tensor *w = *ws[i];
        if (!w || w->dtype == SVDC_DTYPE_F32) continue;
        if (!ctx->arena)
            return svdc_fail(SVDC_ERR_INTERNAL, "%s: a %s weight needs an arena to be widened to float32", op,
                             svdc_dtype_name(w->dtype));
        if (!ctx->backend->convert)
            return svdc_fail(SVDC_ERR_DEVICE, "%s: the %s backend cannot convert %s weights", op, ctx->backend->name,
                             svdc_dtype_name(w->dtype));
        svdc_status s = svdc_arena_tensor(ctx->arena, SVDC_DTYPE_F32, w->ndim, w->shape, &scratch[i]);
        if (!s) s = ctx->backend->convert(ctx, w, &scratch[i]);
        if (s) {
            svdc_arena_release(ctx->arena, *mark);
            return s;
        }
        *ws[i] = &scratch[i];
    }
    return SVDC_OK;
}

/* Returns `s` after giving back what widen_weights took from the arena. */
static svdc_status release_widened(const svdc_ctx *ctx, size_t mark, svdc_status s) {
    if (ctx->arena) svdc_arena_release(ctx->arena, mark);
    return s;
}

/* WIDEN(op, y, &w, &b): widen_weights over the listed weight pointers (at most 2), into widened_[] with the mark
 * widened_mark_ (for release_widened) declared here. Comes after every check that returns early. */
#define WIDEN(op, y, ...)                                                                                        \
    svdc_tensor widened_[2];                                                                                     \
    size_t widened_mark_;                                                                                        \
    SVDC_TRY(widen_weights(ctx, op, y,                                                                           \
                           (int)(sizeof((const svdc_tensor **const[]){__VA_ARGS__}) / sizeof(const svdc_tensor **)), \
                           (const svdc_tensor **const[]){__VA_ARGS__}, widened_, &widened_mark_))

/* Every tensor of one op call shares one dtype (only convert mixes dtypes): names[i]/ts[i] pairs, absent (NULL)
 * optional tensors skipped, the first present one is the reference. */
static svdc_status check_dtypes(const char *op, int n, const char *const *names, const svdc_tensor *const *ts) {
    int ref = -1;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (ref < 0) {
            ref = i;
        } else if (ts[i]->dtype != ts[ref]->dtype) {
            return svdc_fail(SVDC_ERR_SHAPE,
                             "%s: %s has dtype %s, expected %s (the dtype of %s; all tensors of one op share one "
                             "dtype, convert changes it)",
                             op, names[i], svdc_dtype_name(ts[i]->dtype), svdc_dtype_name(ts[ref]->dtype), names[ref]);
        }
    }
    return SVDC_OK;
}
/* CHECK_DTYPES(op, ("x", "w", "b", "y"), x, w, b, y) */
#define SVDC_UNPAREN(...) __VA_ARGS__
#define DTYPES_STATUS(op, names, ...)                                                                          \
    check_dtypes(op, (int)(sizeof((const svdc_tensor *const[]){__VA_ARGS__}) / sizeof(svdc_tensor *)),          \
                 (const char *const[]){SVDC_UNPAREN names}, (const svdc_tensor *const[]){__VA_ARGS__})
#define CHECK_DTYPES(op, names, ...) SVDC_TRY(DTYPES_STATUS(op, names, __VA_ARGS__))

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

/* check_tensor for an output that may be float32/float16/bfloat16 (convert). */
static svdc_status check_any_dtype(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t) {
    if (!t || !t->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s is missing", op, name);
    if (t->device != ctx->device)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s is on device %d, expected device %d", op, name, t->device,
                         ctx->device);
    if (t->dtype != SVDC_DTYPE_F32 && t->dtype != SVDC_DTYPE_F16 && t->dtype != SVDC_DTYPE_BF16)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has an unknown dtype code %d", op, name, (int)t->dtype);
    if (t->ndim < 1 || t->ndim > SVDC_MAX_DIMS)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has %d dimensions, expected 1..%d", op, name, t->ndim,
                         SVDC_MAX_DIMS);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has a negative dimension %lld", op, name,
                             (long long)t->shape[i]);
    return SVDC_OK;
}

/* t must have the shape of ref (named ref_name in the message). */
static svdc_status check_same_shape(const char *op, const char *name, const svdc_tensor *t, const char *ref_name,
                                    const svdc_tensor *ref) {
    int same = t->ndim == ref->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = t->shape[i] == ref->shape[i];
    if (same) return SVDC_OK;
    char a[128], b[128];
    return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has shape %s, expected %s (the shape of %s)", op, name,
                     svdc_shape_str(t, a, sizeof a), svdc_shape_str(ref, b, sizeof b), ref_name);
}

/* t must have exactly ndim dimensions (described as e.g. "(N, C, H, W)"). */
static svdc_status check_ndim(const char *op, const char *name, const svdc_tensor *t, int ndim, const char *layout) {
    if (t->ndim == ndim) return SVDC_OK;
    char s[128];
    return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has shape %s, expected %d dimensions %s", op, name,
                     svdc_shape_str(t, s, sizeof s), ndim, layout);
}

static svdc_status check_min_ndim(const char *op, const char *name, const svdc_tensor *t, int ndim,
                                  const char *layout) {
    if (t->ndim >= ndim) return SVDC_OK;
    char s[128];
    return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has shape %s, expected at least %d dimensions %s", op, name,
                     svdc_shape_str(t, s, sizeof s), ndim, layout);
}

/* y must not share memory with an input of an op that is not "in place allowed". */
static svdc_status check_no_alias(const char *op, const char *name, const svdc_tensor *y, const char *in_name,
                                  const svdc_tensor *in) {
    if (!in || !y) return SVDC_OK;
    const char *y0 = y->data, *y1 = y0 + svdc_tensor_bytes(y);
    const char *i0 = in->data, *i1 = i0 + svdc_tensor_bytes(in);
    if (y0 < i1 && i0 < y1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s overlaps %s in memory; this op cannot run in place", op, name,
                         in_name);
    return SVDC_OK;
}

/* A dimension that BLAS (32-bit integers) must take. */
static svdc_status check_blas_dim(const char *op, const char *what, int64_t n) {
    if (n < ((int64_t)1 << 31)) return SVDC_OK;
    return svdc_fail(SVDC_ERR_SHAPE, "%s: %s = %lld reaches 2^31, which BLAS cannot take", op, what, (long long)n);
}

static svdc_status check_finite_scalar(const char *op, const char *name, float v) {
    if (v == v && v - v == 0.0f) return SVDC_OK;
    return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s must be finite, got %g", op, name, (double)v);
}


size_t svdc_ctx_chunk_budget(const svdc_ctx *ctx) { return ctx->backend->chunk_budget; }

svdc_status svdc_op_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                           svdc_tensor *y) {
    static const char *op = "linear";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_weight(ctx, op, "w", w));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
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
        SVDC_TRY(check_weight(ctx, op, "b", b));
        SVDC_TRY(check_shape(op, "b", b, 1, &N));
    }
    int64_t expected[SVDC_MAX_DIMS];
    memcpy(expected, x->shape, sizeof expected);
    expected[x->ndim - 1] = N;
    SVDC_TRY(check_shape(op, "y", y, x->ndim, expected));
    if (N >= ((int64_t)1 << 31) || K >= ((int64_t)1 << 31) || svdc_tensor_numel(x) / (K ? K : 1) >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "%s: a matrix dimension reaches 2^31, which BLAS cannot take", op);
    REQUIRE_BACKEND_OP(ctx, linear);
    WIDEN(op, y, &w, &b);
    svdc_status s = DTYPES_STATUS(op, ("x", "w", "b", "y"), x, w, b, y);
    if (!s) s = ctx->backend->linear(ctx, x, w, b, y);
    return release_widened(ctx, widened_mark_, s);
}

/* Validates an optional per-channel vector (bias, gamma, beta) of length n. */
static svdc_status check_optional_vector(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t,
                                         int64_t n) {
    if (!t) return SVDC_OK;
    SVDC_TRY(check_weight(ctx, op, name, t));
    return check_shape(op, name, t, 1, &n);
}

svdc_status svdc_op_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                           const svdc_conv2d_params *p, svdc_tensor *y) {
    static const char *op = "conv2d";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_weight(ctx, op, "w", w));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    if (!p) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: params (stride, padding) are missing", op);
    SVDC_TRY(check_ndim(op, "x", x, 4, "(N, C, H, W)"));
    SVDC_TRY(check_ndim(op, "w", w, 4, "(O, C, kh, kw)"));
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    if (w->shape[1] != C)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: w has %lld input channels (shape[1]), expected %lld (x is (N, C=%lld, H, W))",
                         op, (long long)w->shape[1], (long long)C, (long long)C);
    if (kh < 1 || kw < 1)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: kernel size %lldx%lld must be at least 1x1", op, (long long)kh,
                         (long long)kw);
    if (p->stride_h < 1 || p->stride_w < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: stride (%d, %d) must be >= 1", op, p->stride_h, p->stride_w);
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: padding (top %d, bottom %d, left %d, right %d) must be >= 0", op,
                         p->pad_top, p->pad_bottom, p->pad_left, p->pad_right);
    const int64_t hp = H + p->pad_top + p->pad_bottom, wp = W + p->pad_left + p->pad_right;
    if (hp < kh || wp < kw)
        return svdc_fail(SVDC_ERR_SHAPE,
                         "%s: padded input %lldx%lld is smaller than the kernel %lldx%lld (no output positions)", op,
                         (long long)hp, (long long)wp, (long long)kh, (long long)kw);
    const int64_t Ho = (hp - kh) / p->stride_h + 1, Wo = (wp - kw) / p->stride_w + 1;
    SVDC_TRY(check_optional_vector(ctx, op, "b", b, O));
    const int64_t expected[4] = {N, O, Ho, Wo};
    SVDC_TRY(check_shape(op, "y", y, 4, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    SVDC_TRY(check_no_alias(op, "y", y, "w", w));
    SVDC_TRY(check_blas_dim(op, "out channels", O));
    SVDC_TRY(check_blas_dim(op, "C*kh*kw", C * kh * kw));
    SVDC_TRY(check_blas_dim(op, "Ho*Wo", Ho * Wo));
    SVDC_TRY(check_blas_dim(op, "H*W", H * W));
    REQUIRE_BACKEND_OP(ctx, conv2d);
    WIDEN(op, y, &w, &b);
    svdc_status s = DTYPES_STATUS(op, ("x", "w", "b", "y"), x, w, b, y);
    if (!s) s = ctx->backend->conv2d(ctx, x, w, b, p, y);
    return release_widened(ctx, widened_mark_, s);
}

svdc_status svdc_op_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                  const svdc_tensor *b, svdc_tensor *y) {
    static const char *op = "conv_temporal";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_weight(ctx, op, "w", w));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "x", x, 4, "(B*F, C, H, W)"));
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (num_frames < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: num_frames must be >= 1, got %d", op, num_frames);
    if (N % num_frames != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: x has %lld rows (B*F), not a multiple of num_frames = %d", op,
                         (long long)N, num_frames);
    SVDC_TRY(check_ndim(op, "w", w, 3, "(O, C, 3)"));
    const int64_t O = w->shape[0];
    const int64_t wexp[3] = {O, C, 3};
    SVDC_TRY(check_shape(op, "w", w, 3, wexp));
    SVDC_TRY(check_optional_vector(ctx, op, "b", b, O));
    const int64_t expected[4] = {N, O, H, W};
    SVDC_TRY(check_shape(op, "y", y, 4, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    SVDC_TRY(check_blas_dim(op, "channels", O > C ? O : C));
    SVDC_TRY(check_blas_dim(op, "H*W", H * W));
    REQUIRE_BACKEND_OP(ctx, conv_temporal);
    WIDEN(op, y, &w, &b);
    svdc_status s = DTYPES_STATUS(op, ("x", "w", "b", "y"), x, w, b, y);
    if (!s) s = ctx->backend->conv_temporal(ctx, x, num_frames, w, b, y);
    return release_widened(ctx, widened_mark_, s);
}

/* The grouping checks group_norm, group_norm_moments and group_norm_apply share. */
static svdc_status check_grouping(const char *op, const svdc_tensor *x, int num_groups, int frames) {
    SVDC_TRY(check_min_ndim(op, "x", x, 3, "(N, C, spatial...)"));
    const int64_t N = x->shape[0], C = x->shape[1];
    if (num_groups < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: num_groups must be >= 1, got %d", op, num_groups);
    if (C % num_groups != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: x has %lld channels, not divisible by num_groups = %d", op,
                         (long long)C, num_groups);
    if (frames < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: frames must be >= 1, got %d", op, frames);
    if (N % frames != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: x has %lld rows, not a multiple of frames = %d", op, (long long)N,
                         frames);
    return SVDC_OK;
}

svdc_status svdc_op_group_norm_biased(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                      int num_groups, int frames, const svdc_tensor *gamma, const svdc_tensor *beta,
                                      float eps, int apply_silu, svdc_tensor *y) {
    static const char *op = "group_norm";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_grouping(op, x, num_groups, frames));
    const int64_t C = x->shape[1];
    if (!(eps >= 0.0f) || eps - eps != 0.0f)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: eps must be finite and >= 0, got %g", op, (double)eps);
    if (bias) {
        SVDC_TRY(check_tensor(ctx, op, "bias", bias));
        SVDC_TRY(check_shape(op, "bias", bias, 2, x->shape)); /* (N, C) */
        SVDC_TRY(check_no_alias(op, "y", y, "bias", bias));
    }
    SVDC_TRY(check_optional_vector(ctx, op, "gamma", gamma, C));
    SVDC_TRY(check_optional_vector(ctx, op, "beta", beta, C));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    REQUIRE_BACKEND_OP(ctx, group_norm);
    WIDEN(op, y, &gamma, &beta);
    svdc_status s = DTYPES_STATUS(op, ("x", "bias", "gamma", "beta", "y"), x, bias, gamma, beta, y);
    if (!s) s = ctx->backend->group_norm(ctx, x, bias, num_groups, frames, gamma, beta, eps, apply_silu ? 1 : 0, y);
    return release_widened(ctx, widened_mark_, s);
}

svdc_status svdc_op_group_norm(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                               const svdc_tensor *gamma, const svdc_tensor *beta, float eps, int apply_silu,
                               svdc_tensor *y) {
    return svdc_op_group_norm_biased(ctx, x, NULL, num_groups, frames, gamma, beta, eps, apply_silu, y);
}

/* A (N/frames, G, 3) float32 statistics tensor of group_norm_moments / group_norm_apply. */
static svdc_status check_group_stats(const svdc_ctx *ctx, const char *op, const char *name, const svdc_tensor *t,
                                     const svdc_tensor *x, int num_groups, int frames) {
    SVDC_TRY(check_any_dtype(ctx, op, name, t));
    if (t->dtype != SVDC_DTYPE_F32)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has dtype %s, expected float32 (statistics are float32 on every "
                         "backend)", op, name, svdc_dtype_name(t->dtype));
    const int64_t expected[3] = {x->shape[0] / frames, num_groups, 3};
    return check_shape(op, name, t, 3, expected);
}

svdc_status svdc_op_group_norm_moments(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                       svdc_tensor *moments) {
    static const char *op = "group_norm_moments";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_grouping(op, x, num_groups, frames));
    SVDC_TRY(check_group_stats(ctx, op, "moments", moments, x, num_groups, frames));
    SVDC_TRY(check_no_alias(op, "moments", moments, "x", x));
    REQUIRE_BACKEND_OP(ctx, group_norm_moments);
    return ctx->backend->group_norm_moments(ctx, x, num_groups, frames, moments);
}

svdc_status svdc_op_group_norm_apply(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                     const svdc_tensor *stats, const svdc_tensor *gamma, const svdc_tensor *beta,
                                     int apply_silu, svdc_tensor *y) {
    static const char *op = "group_norm_apply";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_grouping(op, x, num_groups, frames));
    SVDC_TRY(check_group_stats(ctx, op, "stats", stats, x, num_groups, frames));
    SVDC_TRY(check_optional_vector(ctx, op, "gamma", gamma, x->shape[1]));
    SVDC_TRY(check_optional_vector(ctx, op, "beta", beta, x->shape[1]));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    SVDC_TRY(check_no_alias(op, "y", y, "stats", stats));
    REQUIRE_BACKEND_OP(ctx, group_norm_apply);
    WIDEN(op, y, &gamma, &beta);
    svdc_status s = DTYPES_STATUS(op, ("x", "gamma", "beta", "y"), x, gamma, beta, y);
    if (!s) s = ctx->backend->group_norm_apply(ctx, x, num_groups, frames, stats, gamma, beta, apply_silu ? 1 : 0, y);
    return release_widened(ctx, widened_mark_, s);
}

svdc_status svdc_op_layer_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                               const svdc_tensor *beta, float eps, svdc_tensor *y) {
    static const char *op = "layer_norm";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    const int64_t D = x->shape[x->ndim - 1];
    if (D < 1) return svdc_fail(SVDC_ERR_SHAPE, "%s: x has an empty last dim (D = 0)", op);
    if (!(eps >= 0.0f) || eps - eps != 0.0f)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: eps must be finite and >= 0, got %g", op, (double)eps);
    SVDC_TRY(check_optional_vector(ctx, op, "gamma", gamma, D));
    SVDC_TRY(check_optional_vector(ctx, op, "beta", beta, D));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    REQUIRE_BACKEND_OP(ctx, layer_norm);
    WIDEN(op, y, &gamma, &beta);
    svdc_status s = DTYPES_STATUS(op, ("x", "gamma", "beta", "y"), x, gamma, beta, y);
    if (!s) s = ctx->backend->layer_norm(ctx, x, gamma, beta, eps, y);
    return release_widened(ctx, widened_mark_, s);
}

svdc_status svdc_op_attention(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                              int num_heads, float scale, int causal, svdc_tensor *y) {
    static const char *op = "attention";
    SVDC_TRY(check_tensor(ctx, op, "q", q));
    SVDC_TRY(check_tensor(ctx, op, "k", k));
    SVDC_TRY(check_tensor(ctx, op, "v", v));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "q", q, 3, "(B, Lq, H*D)"));
    SVDC_TRY(check_ndim(op, "k", k, 3, "(B, Lk, H*D)"));
    const int64_t B = q->shape[0], Lq = q->shape[1], E = q->shape[2], Lk = k->shape[1];
    const int64_t kexp[3] = {B, Lk, E};
    SVDC_TRY(check_shape(op, "k", k, 3, kexp));
    SVDC_TRY(check_shape(op, "v", v, 3, kexp));
    SVDC_TRY(check_same_shape(op, "y", y, "q", q));
    if (num_heads < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: num_heads must be >= 1, got %d", op, num_heads);
    if (E % num_heads != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: width %lld (last dim of q) is not divisible by num_heads = %d", op,
                         (long long)E, num_heads);
    if (E == 0) return svdc_fail(SVDC_ERR_SHAPE, "%s: q has an empty last dim (head dim 0)", op);
    if (Lk < 1) return svdc_fail(SVDC_ERR_SHAPE, "%s: k has no tokens (Lk = 0); softmax over nothing", op);
    if (causal && Lq != Lk)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: causal attention needs Lq == Lk, got Lq = %lld, Lk = %lld", op,
                         (long long)Lq, (long long)Lk);
    SVDC_TRY(check_finite_scalar(op, "scale", scale));
    SVDC_TRY(check_no_alias(op, "y", y, "q", q));
    SVDC_TRY(check_no_alias(op, "y", y, "k", k));
    SVDC_TRY(check_no_alias(op, "y", y, "v", v));
    SVDC_TRY(check_blas_dim(op, "Lq", Lq));
    SVDC_TRY(check_blas_dim(op, "Lk", Lk));
    SVDC_TRY(check_blas_dim(op, "width", E));
    CHECK_DTYPES(op, ("q", "k", "v", "y"), q, k, v, y);
    REQUIRE_BACKEND_OP(ctx, attention);
    return dispatch_result(ctx, ctx->backend->attention(ctx, q, k, v, num_heads, scale, causal ? 1 : 0, y));
}

/* Shared by the one-input elementwise ops: y has x's shape (in place allowed). */
static svdc_status check_unary(const svdc_ctx *ctx, const char *op, const svdc_tensor *x, const svdc_tensor *y) {
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    CHECK_DTYPES(op, ("x", "y"), x, y);
    return SVDC_OK;
}

svdc_status svdc_op_gelu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    SVDC_TRY(check_unary(ctx, "gelu", x, y));
    REQUIRE_BACKEND_OP(ctx, gelu);
    return dispatch_result(ctx, ctx->backend->gelu(ctx, x, y));
}

svdc_status svdc_op_silu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    SVDC_TRY(check_unary(ctx, "silu", x, y));
    REQUIRE_BACKEND_OP(ctx, silu);
    return dispatch_result(ctx, ctx->backend->silu(ctx, x, y));
}

svdc_status svdc_op_geglu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    static const char *op = "geglu";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    const int64_t two_n = x->shape[x->ndim - 1];
    if (two_n % 2 != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: x has an odd last dim %lld, expected 2*N ([a | gate])", op,
                         (long long)two_n);
    int64_t expected[SVDC_MAX_DIMS];
    memcpy(expected, x->shape, sizeof expected);
    expected[x->ndim - 1] = two_n / 2;
    SVDC_TRY(check_shape(op, "y", y, x->ndim, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    CHECK_DTYPES(op, ("x", "y"), x, y);
    REQUIRE_BACKEND_OP(ctx, geglu);
    return dispatch_result(ctx, ctx->backend->geglu(ctx, x, y));
}

/* Shared by the two-input elementwise ops: a, b and y have one shape (in place allowed). */
static svdc_status check_binary(const svdc_ctx *ctx, const char *op, const svdc_tensor *a, const char *a_name,
                                const svdc_tensor *b, const char *b_name, const svdc_tensor *y) {
    SVDC_TRY(check_tensor(ctx, op, a_name, a));
    SVDC_TRY(check_tensor(ctx, op, b_name, b));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_same_shape(op, b_name, b, a_name, a));
    SVDC_TRY(check_same_shape(op, "y", y, a_name, a));
    const char *names[3] = {a_name, b_name, "y"};
    const svdc_tensor *ts[3] = {a, b, y};
    return check_dtypes(op, 3, names, ts);
}

static svdc_status axpby_named(const svdc_ctx *ctx, const char *op, float alpha, const svdc_tensor *a,
                               const char *a_name, float beta, const svdc_tensor *b, const char *b_name,
                               svdc_tensor *y) {
    SVDC_TRY(check_binary(ctx, op, a, a_name, b, b_name, y));
    SVDC_TRY(check_finite_scalar(op, "alpha", alpha));
    SVDC_TRY(check_finite_scalar(op, "beta", beta));
    REQUIRE_BACKEND_OP(ctx, axpby);
    return dispatch_result(ctx, ctx->backend->axpby(ctx, alpha, a, beta, b, y));
}

svdc_status svdc_op_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                          svdc_tensor *y) {
    return axpby_named(ctx, "axpby", alpha, a, "a", beta, b, "b", y);
}

/* b may be a weight (the CLIP models add their position embeddings), stored in 16 bits: see widen_weights. */
svdc_status svdc_op_add(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y) {
    static const char *op = "add";
    SVDC_TRY(check_tensor(ctx, op, "a", a));
    SVDC_TRY(check_weight(ctx, op, "b", b));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    REQUIRE_BACKEND_OP(ctx, axpby);
    WIDEN(op, y, &b);
    return release_widened(ctx, widened_mark_, axpby_named(ctx, op, 1.0f, a, "a", 1.0f, b, "b", y));
}

svdc_status svdc_op_mul(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y) {
    SVDC_TRY(check_binary(ctx, "mul", a, "a", b, "b", y));
    REQUIRE_BACKEND_OP(ctx, mul);
    return dispatch_result(ctx, ctx->backend->mul(ctx, a, b, y));
}

/* beta = 0 with b = x: the CPU axpby never reads b when beta is 0, so Inf/NaN in x scale as alpha * x does. */
svdc_status svdc_op_scale(const svdc_ctx *ctx, const svdc_tensor *x, float alpha, svdc_tensor *y) {
    return axpby_named(ctx, "scale", alpha, x, "x", 0.0f, x, "x", y);
}

svdc_status svdc_op_alpha_blend(const svdc_ctx *ctx, const svdc_tensor *x_spatial, const svdc_tensor *x_temporal,
                                float alpha, svdc_tensor *y) {
    static const char *op = "alpha_blend";
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: alpha must be a probability in [0, 1], got %g", op, (double)alpha);
    return axpby_named(ctx, op, alpha, x_spatial, "x_spatial", 1.0f - alpha, x_temporal, "x_temporal", y);
}

svdc_status svdc_op_add_channel_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                     svdc_tensor *y) {
    static const char *op = "add_channel_bias";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "bias", bias));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_min_ndim(op, "x", x, 2, "(N, C, spatial...)"));
    SVDC_TRY(check_shape(op, "bias", bias, 2, x->shape));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    SVDC_TRY(check_no_alias(op, "y", y, "bias", bias));
    CHECK_DTYPES(op, ("x", "bias", "y"), x, bias, y);
    REQUIRE_BACKEND_OP(ctx, add_channel_bias);
    return dispatch_result(ctx, ctx->backend->add_channel_bias(ctx, x, bias, y));
}

svdc_status svdc_op_add_token_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y) {
    static const char *op = "add_token_bias";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "v", v));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "x", x, 3, "(N, L, C)"));
    const int64_t vexp[2] = {x->shape[0], x->shape[2]};
    SVDC_TRY(check_shape(op, "v", v, 2, vexp));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    SVDC_TRY(check_no_alias(op, "y", y, "v", v));
    CHECK_DTYPES(op, ("x", "v", "y"), x, v, y);
    REQUIRE_BACKEND_OP(ctx, add_token_bias);
    return dispatch_result(ctx, ctx->backend->add_token_bias(ctx, x, v, y));
}

svdc_status svdc_op_upsample_nearest2x(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    static const char *op = "upsample_nearest2x";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "x", x, 4, "(N, C, H, W)"));
    const int64_t expected[4] = {x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3]};
    SVDC_TRY(check_shape(op, "y", y, 4, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    CHECK_DTYPES(op, ("x", "y"), x, y);
    REQUIRE_BACKEND_OP(ctx, upsample_nearest2x);
    return dispatch_result(ctx, ctx->backend->upsample_nearest2x(ctx, x, y));
}

svdc_status svdc_op_concat_channels(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y) {
    static const char *op = "concat_channels";
    SVDC_TRY(check_tensor(ctx, op, "a", a));
    SVDC_TRY(check_tensor(ctx, op, "b", b));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_min_ndim(op, "a", a, 2, "(N, C1, spatial...)"));
    int64_t expected[SVDC_MAX_DIMS];
    memcpy(expected, a->shape, sizeof expected);
    expected[1] = b->ndim > 1 ? b->shape[1] : 0;
    SVDC_TRY(check_shape(op, "b", b, a->ndim, expected)); /* same N and spatial dims as a, any channel count */
    expected[1] = a->shape[1] + b->shape[1];
    SVDC_TRY(check_shape(op, "y", y, a->ndim, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "a", a));
    SVDC_TRY(check_no_alias(op, "y", y, "b", b));
    CHECK_DTYPES(op, ("a", "b", "y"), a, b, y);
    REQUIRE_BACKEND_OP(ctx, concat_channels);
    return dispatch_result(ctx, ctx->backend->concat_channels(ctx, a, b, y));
}

svdc_status svdc_op_permute_0213(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    static const char *op = "permute_0213";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "x", x, 4, "(A, B, C, D)"));
    const int64_t expected[4] = {x->shape[0], x->shape[2], x->shape[1], x->shape[3]};
    SVDC_TRY(check_shape(op, "y", y, 4, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    CHECK_DTYPES(op, ("x", "y"), x, y);
    REQUIRE_BACKEND_OP(ctx, permute_0213);
    return dispatch_result(ctx, ctx->backend->permute_0213(ctx, x, y));
}

svdc_status svdc_op_permute_0213_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta,
                                       const svdc_tensor *r, svdc_tensor *y) {
    static const char *op = "permute_0213_axpby";
    SVDC_TRY(check_tensor(ctx, op, "x", x));
    SVDC_TRY(check_tensor(ctx, op, "r", r));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "x", x, 4, "(A, B, C, D)"));
    const int64_t expected[4] = {x->shape[0], x->shape[2], x->shape[1], x->shape[3]};
    SVDC_TRY(check_shape(op, "y", y, 4, expected));
    SVDC_TRY(check_same_shape(op, "r", r, "y", y));
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    if (r->data != y->data) SVDC_TRY(check_no_alias(op, "y", y, "r", r)); /* r is y itself, or apart from it */
    SVDC_TRY(check_finite_scalar(op, "alpha", alpha));
    SVDC_TRY(check_finite_scalar(op, "beta", beta));
    CHECK_DTYPES(op, ("x", "r", "y"), x, r, y);
    REQUIRE_BACKEND_OP(ctx, permute_0213_axpby);
    return dispatch_result(ctx, ctx->backend->permute_0213_axpby(ctx, alpha, x, beta, r, y));
}

svdc_status svdc_op_timestep_embedding(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y) {
    static const char *op = "timestep_embedding";
    SVDC_TRY(check_tensor(ctx, op, "t", t));
    SVDC_TRY(check_tensor(ctx, op, "y", y));
    SVDC_TRY(check_ndim(op, "t", t, 1, "(N,)"));
    if (dim < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: dim must be >= 1, got %d", op, dim);
    const int64_t expected[2] = {t->shape[0], dim};
    SVDC_TRY(check_shape(op, "y", y, 2, expected));
    SVDC_TRY(check_no_alias(op, "y", y, "t", t));
    CHECK_DTYPES(op, ("t", "y"), t, y);
    REQUIRE_BACKEND_OP(ctx, timestep_embedding);
    return dispatch_result(ctx, ctx->backend->timestep_embedding(ctx, t, dim, y));
}

svdc_status svdc_op_convert(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    static const char *op = "convert";
    SVDC_TRY(check_any_dtype(ctx, op, "x", x));
    SVDC_TRY(check_any_dtype(ctx, op, "y", y));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    if (x->data != y->data || x->dtype != y->dtype) SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    REQUIRE_BACKEND_OP(ctx, convert);
    return dispatch_result(ctx, ctx->backend->convert(ctx, x, y));
}

/* Any dtype (a byte copy); y may be x itself (a no-op) but must not partly overlap it. */
svdc_status svdc_op_copy(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    static const char *op = "copy";
    SVDC_TRY(check_any_dtype(ctx, op, "x", x));
    SVDC_TRY(check_any_dtype(ctx, op, "y", y));
    SVDC_TRY(check_same_shape(op, "y", y, "x", x));
    if (x->dtype != y->dtype)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: y has dtype %s, expected %s (the dtype of x; use convert)", op,
                         svdc_dtype_name(y->dtype), svdc_dtype_name(x->dtype));
    if (x->data == y->data) return SVDC_OK;
    SVDC_TRY(check_no_alias(op, "y", y, "x", x));
    REQUIRE_BACKEND_OP(ctx, copy);
    return dispatch_result(ctx, ctx->backend->copy(ctx, x, y));
}

svdc_status svdc_op_fill(const svdc_ctx *ctx, svdc_tensor *y, float value) {
    SVDC_TRY(check_tensor(ctx, "fill", "y", y));
    REQUIRE_BACKEND_OP(ctx, fill);
    return dispatch_result(ctx, ctx->backend->fill(ctx, y, value));
}

svdc_status svdc_op_check_finite(const svdc_ctx *ctx, const svdc_tensor *x, const char *what) {
    const char *name = what && what[0] ? what : "x";
    SVDC_TRY(check_tensor(ctx, "check_finite", name, x));
    REQUIRE_BACKEND_OP(ctx, check_finite);
    int all_finite = 1;
    SVDC_TRY(dispatch_result(ctx, ctx->backend->check_finite(ctx, x, &all_finite)));
    if (!all_finite) {
        char s[128];
        return svdc_fail(SVDC_ERR_VALUE, "%s contains NaN or Inf values (shape %s); expected only finite numbers",
                         name, svdc_shape_str(x, s, sizeof s));
    }
    return SVDC_OK;
}
