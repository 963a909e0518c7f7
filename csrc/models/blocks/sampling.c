/* sampling.c — Downsample2D / Upsample2D from svdc_op_conv2d and svdc_op_upsample_nearest2x. */
#include "sampling.h"

#include <stdio.h>

svdc_status svdc_downsample2d_declare(svdc_downsample2d *d, svdc_params *p, const char *prefix, int channels,
                                      svdc_downsample_padding padding) {
    static const svdc_conv2d_params same = {2, 2, 1, 1, 1, 1}, right_bottom = {2, 2, 0, 1, 0, 1};
    if (padding != SVDC_DOWNSAMPLE_PAD_SAME && padding != SVDC_DOWNSAMPLE_PAD_RIGHT_BOTTOM)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown downsample padding %d", prefix, (int)padding);
    d->conv = padding == SVDC_DOWNSAMPLE_PAD_SAME ? same : right_bottom;
    return blk_conv(p, &d->w, &d->b, channels, channels, 3, prefix, "conv");
}

svdc_status svdc_downsample2d_forward(const svdc_ctx *ctx, const svdc_downsample2d *d, const svdc_tensor *x,
                                      svdc_tensor *y) {
    return svdc_op_conv2d(ctx, x, &d->w, &d->b, &d->conv, y);
}

svdc_status svdc_upsample2d_declare(svdc_upsample2d *u, svdc_params *p, const char *prefix, int channels) {
    return blk_conv(p, &u->w, &u->b, channels, channels, 3, prefix, "conv");
}

svdc_status svdc_upsample2d_forward(const svdc_ctx *ctx, const svdc_upsample2d *u, const svdc_tensor *x,
                                    svdc_tensor *y) {
    const int64_t n = x->shape[0], c = x->shape[1], h2 = 2 * x->shape[2], w2 = 2 * x->shape[3];
    const int64_t th = y->shape[2], tw = y->shape[3];
    if (y->ndim != 4 || y->shape[0] != n || y->shape[1] != c || th < h2 - 1 || th > h2 || tw < w2 - 1 || tw > w2) {
        char a[96];
        return svdc_fail(SVDC_ERR_SHAPE, "Upsample2D: y has shape %s, expected (%lld, %lld, %lld or %lld, %lld or %lld)",
                         svdc_shape_str(y, a, sizeof a), (long long)n, (long long)c, (long long)(h2 - 1),
                         (long long)h2, (long long)(w2 - 1), (long long)w2);
    }
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const int64_t in_row = c * x->shape[2] * x->shape[3], out_row = c * th * tw;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor up, src;
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc4(ctx, &up, 1, c, h2, w2));
    src = up;
    if (th != h2 || tw != w2) SVDC_TRY_RELEASE(ctx, mark, blk_alloc4(ctx, &src, 1, c, th, tw));
    /* Last row first: y row r ends past x row r and starts at or after x's rows < r end (out_row >= in_row), so y
     * may start at x's address (the UNet's running-map buffer); x row r is read into `up` before y row r is written. */
    for (int64_t r = n - 1; r >= 0; r--) {
        svdc_tensor xr = blk_view4(ctx, blk_at(x->data, r * in_row), 1, c, x->shape[2], x->shape[3]);
        svdc_tensor yr = blk_view4(ctx, blk_at(y->data, r * out_row), 1, c, th, tw);
        SVDC_TRY_RELEASE(ctx, mark, svdc_op_upsample_nearest2x(ctx, &xr, &up));
        if (th != h2 || tw != w2)
            for (int64_t k = 0; k < c * th; k++) { /* (C, 2h, 2w) -> (C, th, tw), line by line */
                const int64_t ch = k / th, line = k % th;
                svdc_tensor a = blk_view1(ctx, blk_at(up.data, (ch * h2 + line) * w2), tw);
                svdc_tensor b = blk_view1(ctx, blk_at(src.data, k * tw), tw);
                SVDC_TRY_RELEASE(ctx, mark, svdc_op_copy(ctx, &a, &b));
            }
        SVDC_TRY_RELEASE(ctx, mark, svdc_op_conv2d(ctx, &src, &u->w, &u->b, &same3, &yr));
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}
