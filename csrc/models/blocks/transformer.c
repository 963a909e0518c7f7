/* transformer.c — Transformer2DModel and TransformerSpatioTemporalModel (diffusers transformer_2d.py /
 * transformer_temporal.py): the spatio-temporal kind is the 2-D transformer's entry, spatial blocks and exit with a
 * temporal block after each spatial block, mixed by the alpha blender (alpha = σ(m) on the spatial branch). */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resblocks.h"

#define GN_EPS 1e-6f /* the transformer's input GroupNorm */
#define GN_GROUPS 32

/* ---------------------------------------------------------------------------------------------------------------
 * Declarations (diffusers names) */

static svdc_status temporal_block_declare(svdc_temporal_block *s, svdc_params *p, const char *prefix, int c,
                                          int heads, int context_dim) {
    char pre[512];
    SVDC_TRY(blk_norm(p, &s->norm_in_w, &s->norm_in_b, c, prefix, "norm_in"));
    SVDC_TRY(blk_norm(p, &s->norm1_w, &s->norm1_b, c, prefix, "norm1"));
    SVDC_TRY(blk_norm(p, &s->norm2_w, &s->norm2_b, c, prefix, "norm2"));
    SVDC_TRY(blk_norm(p, &s->norm3_w, &s->norm3_b, c, prefix, "norm3"));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "ff_in"));
    SVDC_TRY(svdc_geglu_ff_declare(&s->ff_in, p, pre, c));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "attn1"));
    SVDC_TRY(svdc_attention_declare(&s->attn1, p, pre, c, c, heads));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "attn2"));
    SVDC_TRY(svdc_attention_declare(&s->attn2, p, pre, c, context_dim, heads));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "ff"));
    return svdc_geglu_ff_declare(&s->ff, p, pre, c);
}

/* proj_in / proj_out: a Linear (C, C) or a 1x1 Conv2d (C, C, 1, 1); the forward views both as (C, C). */
static svdc_status projection_declare(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int c, int linear,
                                      const char *prefix, const char *name) {
    if (!linear) return blk_conv(p, w, b, c, c, 1, prefix, name);
    return blk_linear(p, w, b, c, c, prefix, name);
}

svdc_status svdc_transformer_declare(svdc_transformer *t, svdc_params *p, const char *prefix, svdc_block_kind kind,
                                     int channels, int heads, int num_layers, int context_dim, int linear_projection) {
    memset(t, 0, sizeof *t);
    if (kind != SVDC_BLOCK_2D && kind != SVDC_BLOCK_SPATIO_TEMPORAL)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown block kind %d", prefix, (int)kind);
    if (channels <= 0 || channels % GN_GROUPS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: channels %d must be a positive multiple of %d (group norm)", prefix,
                         channels, GN_GROUPS);
    if (heads <= 0 || channels % heads)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: channels %d must be a multiple of num_attention_heads %d", prefix,
                         channels, heads);
    if (num_layers <= 0 || context_dim <= 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: num_layers %d and cross_attention_dim %d must be positive", prefix,
                         num_layers, context_dim);
    if (kind == SVDC_BLOCK_SPATIO_TEMPORAL && !linear_projection)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: the spatio-temporal transformer has linear projections only", prefix);
    t->kind = kind;
    t->channels = channels;
    t->heads = heads;
    t->num_layers = num_layers;
    t->context_dim = context_dim;
    t->linear_projection = linear_projection != 0;
    t->blocks = calloc((size_t)num_layers, sizeof *t->blocks);
    if (kind == SVDC_BLOCK_SPATIO_TEMPORAL) t->temporal = calloc((size_t)num_layers, sizeof *t->temporal);
    if (!t->blocks || (kind == SVDC_BLOCK_SPATIO_TEMPORAL && !t->temporal))
        return svdc_fail(SVDC_ERR_MEMORY, "%s: out of host memory", prefix);
    const int c = channels;
    char pre[512];

    SVDC_TRY(blk_norm(p, &t->norm_w, &t->norm_b, c, prefix, "norm"));
    SVDC_TRY(projection_declare(p, &t->proj_in_w, &t->proj_in_b, c, t->linear_projection, prefix, "proj_in"));
    for (int l = 0; l < num_layers; l++) {
        SVDC_TRY(blk_name(pre, sizeof pre, prefix, "transformer_blocks.%d", l));
        SVDC_TRY(svdc_basic_block_declare(&t->blocks[l], p, pre, c, heads, context_dim));
    }
    if (kind == SVDC_BLOCK_SPATIO_TEMPORAL) {
        for (int l = 0; l < num_layers; l++) {
            SVDC_TRY(blk_name(pre, sizeof pre, prefix, "temporal_transformer_blocks.%d", l));
            SVDC_TRY(temporal_block_declare(&t->temporal[l], p, pre, c, heads, context_dim));
        }
        SVDC_TRY(blk_linear(p, &t->pos1_w, &t->pos1_b, 4 * c, c, prefix, "time_pos_embed.linear_1"));
        SVDC_TRY(blk_linear(p, &t->pos2_w, &t->pos2_b, c, 4 * c, prefix, "time_pos_embed.linear_2"));
        SVDC_TRY(blk_param1(p, &t->mix_factor, 1, prefix, "time_mixer.mix_factor"));
    }
    return projection_declare(p, &t->proj_out_w, &t->proj_out_b, c, t->linear_projection, prefix, "proj_out");
}

void svdc_transformer_free(svdc_transformer *t) {
    if (!t) return;
    free(t->blocks);
    free(t->temporal);
    t->blocks = NULL;
    t->temporal = NULL;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Forward */

/* Frame position embedding: pos[f] = linear_2(silu(linear_1(sinusoid(f, C)))) for f < F, pos (F, C). */
static svdc_status frame_pos_embedding(const svdc_ctx *ctx, const svdc_transformer *t, int64_t num_frames,
                                       svdc_tensor *pos) {
    const int64_t c = t->channels;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor fidx, e, hdn;
    svdc_status s = blk_alloc(ctx, &fidx, 1, &num_frames);
    for (int64_t f = 0; !s && f < num_frames; f++) {
        svdc_tensor one = blk_view1(ctx, blk_at(fidx.data, f), 1);
        s = svdc_op_fill(ctx, &one, (float)f);
    }
    if (!s) s = blk_alloc2(ctx, &e, num_frames, c);
    if (!s) s = blk_alloc2(ctx, &hdn, num_frames, 4 * c);
    if (!s) s = svdc_op_timestep_embedding(ctx, &fidx, (int)c, &e);
    if (!s) s = svdc_op_linear(ctx, &e, &t->pos1_w, &t->pos1_b, &hdn);
    if (!s) s = svdc_op_silu(ctx, &hdn, &hdn);
    if (!s) s = svdc_op_linear(ctx, &hdn, &t->pos2_w, &t->pos2_b, pos);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* proj_in / proj_out weight as (C, C): a 1x1 conv's (C, C, 1, 1) drops its unit dims. */
static svdc_tensor projection_view(const svdc_ctx *ctx, const svdc_tensor *w) {
    const int64_t shape[2] = {w->shape[0], w->shape[1]};
    return svdc_tensor_view(w->data, w->dtype, ctx->device, 2, shape); /* in the weights' storage dtype */
}

/* Entry: per-frame group norm of x into wb, (N, C, h, w) -> (N, hw, C) into tt, proj_in into the stream hs. */
static svdc_status enter(const svdc_ctx *ctx, const svdc_transformer *t, const svdc_tensor *x, float *wb, float *tt,
                         svdc_tensor *hs) {
    const int64_t n = x->shape[0], c = t->channels, hw = x->shape[2] * x->shape[3];
    svdc_tensor w4 = blk_view4(ctx, wb, n, c, x->shape[2], x->shape[3]);
    SVDC_TRY(svdc_op_group_norm(ctx, x, GN_GROUPS, 1, &t->norm_w, &t->norm_b, GN_EPS, 0, &w4));
    svdc_tensor wchw = blk_view4(ctx, wb, n, c, hw, 1), thwc = blk_view4(ctx, tt, n, hw, c, 1);
    SVDC_TRY(svdc_op_permute_0213(ctx, &wchw, &thwc)); /* (N, C, hw) -> (N, hw, C) */
    svdc_tensor t2 = blk_view2(ctx, tt, n * hw, c), pw = projection_view(ctx, &t->proj_in_w);
    return svdc_op_linear(ctx, &t2, &pw, &t->proj_in_b, hs);
}

/* Exit: proj_out of the stream hs into tt, y = (N, hw, C) -> (N, C, h, w) of it + x, in one pass. */
static svdc_status leave(const svdc_ctx *ctx, const svdc_transformer *t, const svdc_tensor *hs, float *tt,
                         const svdc_tensor *x, svdc_tensor *y) {
    const int64_t n = x->shape[0], c = t->channels, hw = x->shape[2] * x->shape[3];
    svdc_tensor t2 = blk_view2(ctx, tt, n * hw, c), pw = projection_view(ctx, &t->proj_out_w);
    SVDC_TRY(svdc_op_linear(ctx, hs, &pw, &t->proj_out_b, &t2));
    svdc_tensor thwc = blk_view4(ctx, tt, n, hw, c, 1);
    svdc_tensor xchw = blk_view4(ctx, x->data, n, c, hw, 1), ychw = blk_view4(ctx, y->data, n, c, hw, 1);
    return svdc_op_permute_0213_axpby(ctx, 1.0f, &thwc, 1.0f, &xchw, &ychw); /* (N, hw, C) -> (N, C, hw), + x */
}

/* Three full-size token buffers (spatial stream, temporal stream, one for layout changes) + chunk scratch. */
static svdc_status forward_body(const svdc_ctx *ctx, const svdc_transformer *t, const svdc_tensor *x,
                                int num_frames, const svdc_tensor *context, svdc_tensor *y) {
    const int64_t bf = x->shape[0], c = t->channels, hw = x->shape[2] * x->shape[3];
    const int64_t b = bf / num_frames, f = num_frames, s_tok = bf * hw;
    svdc_tensor Hs, Tt, Wb;
    SVDC_TRY(blk_alloc2(ctx, &Hs, s_tok, c)); /* spatial token stream (B*F, hw, C) */
    SVDC_TRY(blk_alloc2(ctx, &Tt, s_tok, c)); /* temporal token stream (B, hw, F, C) */
    SVDC_TRY(blk_alloc2(ctx, &Wb, s_tok, c)); /* layout changes */
    float *h = Hs.data, *tt = Tt.data, *wb = Wb.data;
    SVDC_TRY(enter(ctx, t, x, wb, tt, &Hs));

    if (t->kind == SVDC_BLOCK_2D) {
        for (int l = 0; l < t->num_layers; l++) SVDC_TRY(svdc_basic_block_forward(ctx, &t->blocks[l], h, bf, hw, context));
        return leave(ctx, t, &Hs, tt, x, y);
    }

    svdc_tensor pos;
    SVDC_TRY(blk_alloc2(ctx, &pos, f, c));
    SVDC_TRY(frame_pos_embedding(ctx, t, f, &pos));
    float alpha;
    SVDC_TRY(svdc_read_mix_alpha(ctx, &t->mix_factor, &alpha)); /* σ(m); image_only_indicator is 0 at inference */

    for (int l = 0; l < t->num_layers; l++) {
        const svdc_temporal_block *tb = &t->temporal[l];
        /* spatial block on (BF, hw, C): attention over the hw tokens of each frame, every token of video b to
         * context[b] */
        SVDC_TRY(svdc_basic_block_forward(ctx, &t->blocks[l], h, bf, hw, context));

        /* temporal branch: (B, F, hw, C) -> (B, hw, F, C), + frame position embedding (only this branch gets it):
         * viewed (1, B*hw, F*C), pos (F, C) = (1, F*C) is added to every (b, location) row */
        svdc_tensor hbf = blk_view4(ctx, h, b, f, hw, c), tbf = blk_view4(ctx, tt, b, hw, f, c);
        SVDC_TRY(svdc_op_permute_0213(ctx, &hbf, &tbf));
        svdc_tensor trows = blk_view3(ctx, tt, 1, b * hw, f * c), prow = blk_view2(ctx, pos.data, 1, f * c);
        SVDC_TRY(svdc_op_add_token_bias(ctx, &trows, &prow, &trows));

        SVDC_TRY(svdc_ff_residual(ctx, &tb->ff_in, &tb->norm_in_w, &tb->norm_in_b, tt, s_tok)); /* is_res: dim == inner */
        SVDC_TRY(svdc_self_attn_residual(ctx, &tb->attn1, &tb->norm1_w, &tb->norm1_b, tt, b * hw, f)); /* over F */
        /* (B*hw, F, C) viewed (B, hw*F, C): cross-attention to frame 0's context = the video's context */
        SVDC_TRY(svdc_cross_attn_residual(ctx, &tb->attn2, &tb->norm2_w, &tb->norm2_b, tt, b, hw * f, context));
        SVDC_TRY(svdc_ff_residual(ctx, &tb->ff, &tb->norm3_w, &tb->norm3_b, tt, s_tok));

        /* σ(m)·spatial + (1-σ(m))·temporal, the temporal stream (B, hw, F, C) -> (B, F, hw, C) in the same pass */
        SVDC_TRY(svdc_op_permute_0213_axpby(ctx, 1.0f - alpha, &tbf, alpha, &hbf, &hbf));
    }
    return leave(ctx, t, &Hs, tt, x, y);
}

svdc_status svdc_transformer_forward(const svdc_ctx *ctx, const svdc_transformer *t, const svdc_tensor *x,
                                     int num_frames, const svdc_tensor *context, svdc_tensor *y) {
    char a[96], b[96];
    if (!x || x->ndim != 4 || x->shape[1] != t->channels)
        return svdc_fail(SVDC_ERR_SHAPE, "transformer: x has shape %s, expected (B*F, %d, h, w)",
                         x ? svdc_shape_str(x, a, sizeof a) : "NULL", t->channels);
    if (num_frames <= 0 || x->shape[0] % num_frames)
        return svdc_fail(SVDC_ERR_SHAPE, "transformer: %lld rows are not a whole number of videos of %d frames",
                         (long long)x->shape[0], num_frames);
    const int64_t batch = x->shape[0] / num_frames;
    if (!context || context->ndim != 3 || context->shape[0] != batch || context->shape[1] < 1 ||
        context->shape[2] != t->context_dim)
        return svdc_fail(SVDC_ERR_SHAPE, "transformer: context has shape %s, expected (%lld, L, %d)",
                         context ? svdc_shape_str(context, a, sizeof a) : "NULL", (long long)batch,
                         t->context_dim);
    if (!y || y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
        y->shape[2] != x->shape[2] || y->shape[3] != x->shape[3])
        return svdc_fail(SVDC_ERR_SHAPE, "transformer: y has shape %s, expected %s",
                         y ? svdc_shape_str(y, b, sizeof b) : "NULL", svdc_shape_str(x, a, sizeof a));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s = forward_body(ctx, t, x, num_frames, context, y);
    svdc_arena_release(ctx->arena, mark);
    return s;
}
