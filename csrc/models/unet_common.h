/* unet_common.h — small helpers shared by unet.c and transformer.c: arena tensors and re-shaped views
 * of existing memory (device-agnostic: only pointer arithmetic on .data). */
#ifndef SVDC_UNET_COMMON_H
#define SVDC_UNET_COMMON_H

#include "../core/arena.h"
#include "../core/ops.h"
#include "../core/tensor.h"
#include "../core/try.h"

/* A float32 view of `data` (on the ctx device) with the given shape. */
static inline svdc_tensor u_view(const svdc_ctx *ctx, void *data, int ndim, const int64_t *shape) {
    return svdc_tensor_view(data, SVDC_DTYPE_F32, ctx->device, ndim, shape);
}
static inline svdc_tensor u_view1(const svdc_ctx *ctx, void *data, int64_t a) {
    int64_t s[1] = {a};
    return u_view(ctx, data, 1, s);
}
static inline svdc_tensor u_view2(const svdc_ctx *ctx, void *data, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return u_view(ctx, data, 2, s);
}
static inline svdc_tensor u_view3(const svdc_ctx *ctx, void *data, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return u_view(ctx, data, 3, s);
}
static inline svdc_tensor u_view4(const svdc_ctx *ctx, void *data, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    return u_view(ctx, data, 4, s);
}

/* Element offset into float32 device memory. */
static inline float *u_at(void *data, int64_t elements) { return (float *)data + elements; }

/* An arena float32 tensor; fails with SVDC_ERR_MEMORY (message set by the arena). */
static inline svdc_status u_alloc(const svdc_ctx *ctx, svdc_tensor *t, int ndim, const int64_t *shape) {
    return svdc_arena_tensor(ctx->arena, SVDC_DTYPE_F32, ndim, shape, t);
}
static inline svdc_status u_alloc2(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return u_alloc(ctx, t, 2, s);
}
static inline svdc_status u_alloc3(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return u_alloc(ctx, t, 3, s);
}
static inline svdc_status u_alloc4(const svdc_ctx *ctx, svdc_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    return u_alloc(ctx, t, 4, s);
}

/* Declares a weight of 1, 2 or 4 dims under "<prefix>.<name>". */
static inline svdc_status u_param1(svdc_params *p, svdc_tensor *slot, int64_t a, const char *prefix,
                                   const char *name) {
    int64_t s[1] = {a};
    return svdc_params_add(p, slot, 1, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}
static inline svdc_status u_param2(svdc_params *p, svdc_tensor *slot, int64_t a, int64_t b, const char *prefix,
                                   const char *name) {
    int64_t s[2] = {a, b};
    return svdc_params_add(p, slot, 2, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}
static inline svdc_status u_param4(svdc_params *p, svdc_tensor *slot, int64_t a, int64_t b, int64_t c, int64_t d,
                                   const char *prefix, const char *name) {
    int64_t s[4] = {a, b, c, d};
    return svdc_params_add(p, slot, 4, s, "%s%s%s", prefix, *prefix ? "." : "", name);
}

#endif
