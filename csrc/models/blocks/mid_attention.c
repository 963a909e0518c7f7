/* mid_attention.c — the single-head spatial self-attention of the VAE mid blocks (see mid_attention.h). */
#include "mid_attention.h"

#include <math.h>

svdc_status svdc_mid_attention_declare(svdc_mid_attention *a, svdc_params *p, const char *prefix, int channels,
                                       int groups) {
    a->channels = channels;
    a->groups = groups;
    a->eps = 1e-6f;
    SVDC_TRY(blk_norm(p, &a->norm_w, &a->norm_b, channels, prefix, "group_norm"));
    SVDC_TRY(blk_linear(p, &a->q_w, &a->q_b, channels, channels, prefix, "to_q"));
    SVDC_TRY(blk_linear(p, &a->k_w, &a->k_b, channels, channels, prefix, "to_k"));
    SVDC_TRY(blk_linear(p, &a->v_w, &a->v_b, channels, channels, prefix, "to_v"));
    return blk_linear(p, &a->out_w, &a->out_b, channels, channels, prefix, "to_out.0");
}

svdc_status svdc_mid_attention_forward(const svdc_ctx *ctx, const svdc_mid_attention *a, const svdc_tensor *x,
                                       svdc_tensor *y) {
    const int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    const float scale = 1.0f / sqrtf((float)c);
    for (int64_t r = 0; r < n; r++) {
        size_t m = svdc_arena_mark(ctx->arena);
        svdc_tensor t, tt, q, k, v;
        SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &t, 1, c, hw, 1));
        SVDC_TRY_RELEASE(ctx, m, blk_alloc3(ctx, &tt, 1, hw, c));
        SVDC_TRY_RELEASE(ctx, m, blk_alloc3(ctx, &q, 1, hw, c));
        SVDC_TRY_RELEASE(ctx, m, blk_alloc3(ctx, &k, 1, hw, c));
        SVDC_TRY_RELEASE(ctx, m, blk_alloc3(ctx, &v, 1, hw, c));
        /* group norm of image r: (1, C, h, w) viewed as (1, C, hw, 1) */
        svdc_tensor xr = blk_view4(ctx, blk_rows(x, r, 1).data, 1, c, hw, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &xr, a->groups, 1, &a->norm_w, &a->norm_b, a->eps, 0, &t));
        /* (1, C, hw, 1) -> (1, hw, C, 1): tokens by channels */
        svdc_tensor tt4 = blk_view4(ctx, tt.data, 1, hw, c, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_permute_0213(ctx, &t, &tt4));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->q_w, &a->q_b, &q));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->k_w, &a->k_b, &k));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->v_w, &a->v_b, &v));
        /* t (dead) takes the attention output (1, hw, C); tt (dead) the projection */
        svdc_tensor o = blk_view3(ctx, t.data, 1, hw, c);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_attention(ctx, &q, &k, &v, 1, scale, 0, &o));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &o, &a->out_w, &a->out_b, &tt));
        /* (1, hw, C, 1) -> (1, C, hw, 1) into image r of y, then the residual */
        svdc_tensor yr = blk_view4(ctx, blk_rows(y, r, 1).data, 1, c, hw, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_permute_0213(ctx, &tt4, &yr));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, &yr, &xr, &yr));
        svdc_arena_release(ctx->arena, m);
    }
    return SVDC_OK;
}
