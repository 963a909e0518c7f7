/* common.h — the one helper family of the model layer: float32 views of existing memory, arena tensors, weight
 * declarations under a prefix with relative names, and the block kind tag (device-agnostic: only pointer arithmetic
 * on .data). Every block and model uses these and nothing else for the same jobs. */
#ifndef SVDC_BLOCKS_COMMON_H
#define SVDC_BLOCKS_COMMON_H

#include <stdarg.h>
#include <stdio.h>

#include "../../core/arena.h"
#include "../../core/params.h"
#include "../../core/ops.h"
#include "../../core/tensor.h"
#include "../../core/try.h"

/* Which arrangement a block is built in: diffusers' 2-D blocks (SD 2.x UNet2DConditionModel, AutoencoderKL) or the
 * spatio-temporal blocks of SVD (a 2-D block + a temporal block + the alpha blender). */
typedef enum svdc_block_kind { SVDC_BLOCK_2D = 0, SVDC_BLOCK_SPATIO_TEMPORAL = 1 } svdc_block_kind;

/* A float32 view of `data` (on the ctx device) with the given shape. */
static inline svdc_tensor blk_view(const svdc_ctx *ctx, void *data, int ndim, const int64_t *shape) {
    return svdc_tensor_view(data, SVDC_DTYPE_F32, ctx->device, ndim, shape);
}
static inline svdc_tensor blk_view1(const svdc_ctx *ctx, void *data, int64_t a) {
    int64_t s[1] = {a};
    return blk_view(ctx, data, 1, s);
}
static inline svdc_tensor blk_view2(const svdc_ctx *ctx, void *data, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return blk_view(ctx, data, 2, s);
}
static inline svdc_tensor blk_view3(const svdc_ctx *ctx, void *data, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return blk_view(ctx, data, 3, s);
}
static inline svdc_tensor blk_view4(const svdc_ctx *ctx, void *data, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    return blk_view(ctx, data, 4, s);
}

/* Element offset into float32 device memory. */
static inline float *blk_at(void *data, int64_t elements) { return (float *)data + elements; }

/* Rows r0 .. r0+rows of a (N, ...) float32 tensor as a (rows, ...) view. */
static inline svdc_tensor blk_rows(const svdc_tensor *t, int64_t r0, int64_t rows) {
    svdc_tensor v = *t;
    v.data = blk_at(t->data, r0 * (svdc_tensor_numel(t) / t->shape[0]));
    v.shape[0] = rows;
    return v;
}

/* A Conv3d (3, 1, 1) weight (O, C, 3, 1, 1) viewed as the (O, C, 3) that svdc_op_conv_temporal takes. */
static inline svdc_tensor blk_temporal_kernel(const svdc_tensor *w) {
    svdc_tensor v = *w;
    v.ndim = 3;
    v.shape[3] = v.shape[4] = 0;
    return v;
}

/* An arena float32 tensor; fails with SVDC_ERR_MEMORY (message set by the arena). */
static inline svdc_status blk_alloc(const svdc_ctx *ctx, svdc_tensor *t, int ndim, const int64_t *shape) {
    return svdc_arena_tensor(ctx->arena, SVDC_DTYPE_F32, ndim, shape, t);
}
static inline svdc_status blk_alloc2(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return blk_alloc(ctx, t, 2, s);
}
static inline svdc_status blk_alloc3(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return blk_alloc(ctx, t, 3, s);
}
static inline svdc_status blk_alloc4(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    return blk_alloc(ctx, t, 4, s);
}

/* The prefix of a sub-block, "<prefix>.<fmt ...>" ("<fmt ...>" under an empty prefix), into buf; a name that does
 * not fit is SVDC_ERR_ARGUMENT naming the prefix. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline svdc_status blk_name(char *buf, size_t len, const char *prefix, const char *fmt, ...) {
    const int used = snprintf(buf, len, "%s%s", prefix, *prefix ? "." : "");
    if (used >= 0 && (size_t)used < len) {
        va_list args;
        va_start(args, fmt);
        const int more = vsnprintf(buf + used, len - (size_t)used, fmt, args);
        va_end(args);
        if (more >= 0 && (size_t)used + (size_t)more < len) return SVDC_OK;
    }
    return svdc_fail(SVDC_ERR_ARGUMENT, "a weight name under '%s' is longer than %zu characters", prefix, len - 1);
}

/* Declares a weight of 1, 2 or 4 dims under "<prefix>.<name>" (an empty prefix declares "<name>"). */
static inline svdc_status blk_param1(svdc_params *p, svdc_tensor *slot, int64_t a, const char *prefix,
                                   const char *name) {
    int64_t s[1] = {a};
    return svdc_params_add(p, slot, 1, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}
static inline svdc_status blk_param2(svdc_params *p, svdc_tensor *slot, int64_t a, int64_t b, const char *prefix,
                                   const char *name) {
    int64_t s[2] = {a, b};
    return svdc_params_add(p, slot, 2, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}
static inline svdc_status blk_param4(svdc_params *p, svdc_tensor *slot, int64_t a, int64_t b, int64_t c, int64_t d,
                                   const char *prefix, const char *name) {
    int64_t s[4] = {a, b, c, d};
    return svdc_params_add(p, slot, 4, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}

/* "<name>.weight" and "<name>.bias", both (c,): a LayerNorm or GroupNorm. */
static inline svdc_status blk_norm(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t c, const char *prefix,
                                   const char *name) {
    SVDC_TRY(svdc_params_add(p, w, 1, &c, "%s%s%s.weight", prefix, *prefix ? "." : "", name));
    return svdc_params_add(p, b, 1, &c, "%s%s%s.bias", prefix, *prefix ? "." : "", name);
}
/* "<name>.weight" (out, in) and, when b is not NULL, "<name>.bias" (out,): a Linear. */
static inline svdc_status blk_linear(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in,
                                     const char *prefix, const char *name) {
    int64_t s[2] = {out, in};
    SVDC_TRY(svdc_params_add(p, w, 2, s, "%s%s%s.weight", prefix, *prefix ? "." : "", name));
    return b ? svdc_params_add(p, b, 1, &out, "%s%s%s.bias", prefix, *prefix ? "." : "", name) : SVDC_OK;
}
/* "<name>.weight" (out, in, k, k) and "<name>.bias" (out,): a Conv2d. */
static inline svdc_status blk_conv(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in, int64_t k,
                                   const char *prefix, const char *name) {
    int64_t s[4] = {out, in, k, k};
    SVDC_TRY(svdc_params_add(p, w, 4, s, "%s%s%s.weight", prefix, *prefix ? "." : "", name));
    return svdc_params_add(p, b, 1, &out, "%s%s%s.bias", prefix, *prefix ? "." : "", name);
}
/* "<name>.weight" (out, in, 3, 1, 1) and "<name>.bias" (out,): a Conv3d with kernel (3, 1, 1), over frames only. */
static inline svdc_status blk_conv_temporal(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in,
                                            const char *prefix, const char *name) {
    int64_t s[5] = {out, in, 3, 1, 1};
    SVDC_TRY(svdc_params_add(p, w, 5, s, "%s%s%s.weight", prefix, *prefix ? "." : "", name));
    return svdc_params_add(p, b, 1, &out, "%s%s%s.bias", prefix, *prefix ? "." : "", name);
}

#endif
