/* transformer.c — TransformerSpatioTemporalModel (spec §1.6–1.8; diffusers transformer_temporal.py / attention.py):
 * group norm + proj_in, per layer a spatial BasicTransformerBlock and a temporal block on x + frame-position
 * embedding, mixed by the alpha blender (alpha = σ(m) on the spatial branch), proj_out and the outer residual. */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resblocks.h"
#include "unet_common.h"

#define LN_EPS 1e-5f      /* nn.LayerNorm default, every LN of both blocks */
#define GN_EPS 1e-6f      /* the transformer's input GroupNorm */
#define GN_GROUPS 32
#define FF_CHUNK_BYTES ((size_t)32 << 20) /* cap on the GEGLU hidden buffer: rows are processed in chunks */

/* ---------------------------------------------------------------------------------------------------------------
 * Declarations (diffusers names) */

static svdc_status attention_declare(svdc_attention *a, svdc_params *p, const char *prefix, int c, int ckv,
                                     int heads) {
    a->query_dim = c;
    a->context_dim = ckv;
    a->heads = heads;
    UTRY(u_param2(p, &a->q_w, c, c, prefix, "to_q.weight"));
    UTRY(u_param2(p, &a->k_w, c, ckv, prefix, "to_k.weight"));
    UTRY(u_param2(p, &a->v_w, c, ckv, prefix, "to_v.weight"));
    UTRY(u_param2(p, &a->out_w, c, c, prefix, "to_out.0.weight"));
    return u_param1(p, &a->out_b, c, prefix, "to_out.0.bias");
}

static svdc_status ff_declare(svdc_geglu_ff *f, svdc_params *p, const char *prefix, int dim) {
    f->dim = dim;
    f->inner = 4 * dim;
    f->dim_out = dim;
    UTRY(u_param2(p, &f->proj_w, 2 * f->inner, dim, prefix, "net.0.proj.weight"));
    UTRY(u_param1(p, &f->proj_b, 2 * f->inner, prefix, "net.0.proj.bias"));
    UTRY(u_param2(p, &f->out_w, f->dim_out, f->inner, prefix, "net.2.weight"));
    return u_param1(p, &f->out_b, f->dim_out, prefix, "net.2.bias");
}

static svdc_status norm_declare(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int c, const char *prefix,
                                const char *name) {
    char n[64];
    snprintf(n, sizeof n, "%s.weight", name);
    UTRY(u_param1(p, w, c, prefix, n));
    snprintf(n, sizeof n, "%s.bias", name);
    return u_param1(p, b, c, prefix, n);
}

svdc_status svdc_st_transformer_declare(svdc_st_transformer *t, svdc_params *p, const char *prefix, int channels,
                                        int heads, int num_layers, int context_dim) {
    memset(t, 0, sizeof *t);
    if (channels <= 0 || channels % GN_GROUPS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: channels %d must be a positive multiple of %d (group norm)", prefix,
                         channels, GN_GROUPS);
    if (heads <= 0 || channels % heads)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: channels %d must be a multiple of num_attention_heads %d", prefix,
                         channels, heads);
    if (num_layers <= 0 || context_dim <= 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: num_layers %d and cross_attention_dim %d must be positive", prefix,
                         num_layers, context_dim);
    t->channels = channels;
    t->heads = heads;
    t->num_layers = num_layers;
    t->context_dim = context_dim;
    t->blocks = calloc((size_t)num_layers, sizeof *t->blocks);
    t->temporal = calloc((size_t)num_layers, sizeof *t->temporal);
    if (!t->blocks || !t->temporal) return svdc_fail(SVDC_ERR_MEMORY, "%s: out of host memory", prefix);
    const int c = channels;
    char pre[512];

    UTRY(norm_declare(p, &t->norm_w, &t->norm_b, c, prefix, "norm"));
    UTRY(u_param2(p, &t->proj_in_w, c, c, prefix, "proj_in.weight"));
    UTRY(u_param1(p, &t->proj_in_b, c, prefix, "proj_in.bias"));
    for (int l = 0; l < num_layers; l++) {
        svdc_spatial_block *s = &t->blocks[l];
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d", prefix, l);
        UTRY(norm_declare(p, &s->norm1_w, &s->norm1_b, c, pre, "norm1"));
        UTRY(norm_declare(p, &s->norm2_w, &s->norm2_b, c, pre, "norm2"));
        UTRY(norm_declare(p, &s->norm3_w, &s->norm3_b, c, pre, "norm3"));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.attn1", prefix, l);
        UTRY(attention_declare(&s->attn1, p, pre, c, c, heads));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.attn2", prefix, l);
        UTRY(attention_declare(&s->attn2, p, pre, c, context_dim, heads));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.ff", prefix, l);
        UTRY(ff_declare(&s->ff, p, pre, c));
    }
    for (int l = 0; l < num_layers; l++) {
        svdc_temporal_block *s = &t->temporal[l];
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d", prefix, l);
        UTRY(norm_declare(p, &s->norm_in_w, &s->norm_in_b, c, pre, "norm_in"));
        UTRY(norm_declare(p, &s->norm1_w, &s->norm1_b, c, pre, "norm1"));
        UTRY(norm_declare(p, &s->norm2_w, &s->norm2_b, c, pre, "norm2"));
        UTRY(norm_declare(p, &s->norm3_w, &s->norm3_b, c, pre, "norm3"));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.ff_in", prefix, l);
        UTRY(ff_declare(&s->ff_in, p, pre, c));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.attn1", prefix, l);
        UTRY(attention_declare(&s->attn1, p, pre, c, c, heads));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.attn2", prefix, l);
        UTRY(attention_declare(&s->attn2, p, pre, c, context_dim, heads));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.ff", prefix, l);
        UTRY(ff_declare(&s->ff, p, pre, c));
    }
    UTRY(u_param2(p, &t->pos1_w, 4 * c, c, prefix, "time_pos_embed.linear_1.weight"));
    UTRY(u_param1(p, &t->pos1_b, 4 * c, prefix, "time_pos_embed.linear_1.bias"));
    UTRY(u_param2(p, &t->pos2_w, c, 4 * c, prefix, "time_pos_embed.linear_2.weight"));
    UTRY(u_param1(p, &t->pos2_b, c, prefix, "time_pos_embed.linear_2.bias"));
    UTRY(u_param1(p, &t->mix_factor, 1, prefix, "time_mixer.mix_factor"));
    UTRY(u_param2(p, &t->proj_out_w, c, c, prefix, "proj_out.weight"));
    return u_param1(p, &t->proj_out_b, c, prefix, "proj_out.bias");
}

void svdc_st_transformer_free(svdc_st_transformer *t) {
    if (!t) return;
    free(t->blocks);
    free(t->temporal);
    t->blocks = NULL;
    t->temporal = NULL;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Residual sub-layers. Each updates the token stream x in place and uses the caller's scratch buffers n and o (each
 * as large as x); anything else comes from the arena and is released before returning. */

/* x (rows, C) += FF(LN(x)). The GEGLU hidden layer (rows x 8C, then 4C) is produced in row chunks so that it never
 * exists for all rows at once; every row's result is the same as unchunked. */
static svdc_status ff_residual(const svdc_ctx *ctx, const svdc_geglu_ff *ff, const svdc_tensor *nw,
                               const svdc_tensor *nb, float *x, int64_t rows, float *n, float *o) {
    const int64_t c = ff->dim, inner = ff->inner;
    svdc_tensor X = u_view2(ctx, x, rows, c), N = u_view2(ctx, n, rows, c), O = u_view2(ctx, o, rows, ff->dim_out);
    UTRY(svdc_op_layer_norm(ctx, &X, nw, nb, LN_EPS, &N));
    int64_t chunk = (int64_t)(FF_CHUNK_BYTES / ((size_t)2 * (size_t)inner * sizeof(float)));
    if (chunk < 64) chunk = 64;
    if (chunk > rows) chunk = rows;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor H, G;
    svdc_status s = u_alloc2(ctx, &H, chunk, 2 * inner);
    if (!s) s = u_alloc2(ctx, &G, chunk, inner);
    for (int64_t r0 = 0; !s && r0 < rows; r0 += chunk) {
        int64_t r = rows - r0 < chunk ? rows - r0 : chunk;
        svdc_tensor Nc = u_view2(ctx, u_at(n, r0 * c), r, c);
        svdc_tensor Hc = u_view2(ctx, H.data, r, 2 * inner), Gc = u_view2(ctx, G.data, r, inner);
        svdc_tensor Oc = u_view2(ctx, u_at(o, r0 * ff->dim_out), r, ff->dim_out);
        s = svdc_op_linear(ctx, &Nc, &ff->proj_w, &ff->proj_b, &Hc);
        if (!s) s = svdc_op_geglu(ctx, &Hc, &Gc); /* [a | g] -> a * gelu(g) */
        if (!s) s = svdc_op_linear(ctx, &Gc, &ff->out_w, &ff->out_b, &Oc);
    }
    svdc_arena_release(ctx->arena, mark);
    UTRY(s);
    return svdc_op_add(ctx, &X, &O, &X);
}

/* x (batch, len, C) += Attn(LN(x)) with self-attention over the `len` tokens of each batch row. */
static svdc_status self_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                      const svdc_tensor *nb, float *x, int64_t batch, int64_t len, float *n,
                                      float *o) {
    const int64_t c = a->query_dim;
    svdc_tensor X = u_view3(ctx, x, batch, len, c), N = u_view3(ctx, n, batch, len, c);
    svdc_tensor Q = u_view3(ctx, o, batch, len, c);
    UTRY(svdc_op_layer_norm(ctx, &X, nw, nb, LN_EPS, &N));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor K, V;
    svdc_status s = u_alloc3(ctx, &K, batch, len, c);
    if (!s) s = u_alloc3(ctx, &V, batch, len, c);
    if (!s) s = svdc_op_linear(ctx, &N, &a->q_w, NULL, &Q);
    if (!s) s = svdc_op_linear(ctx, &N, &a->k_w, NULL, &K);
    if (!s) s = svdc_op_linear(ctx, &N, &a->v_w, NULL, &V);
    /* softmax(q kᵀ / sqrt(head_dim)) v, streamed: no len x len matrix; the result overwrites N (no longer needed) */
    if (!s) s = svdc_op_attention(ctx, &Q, &K, &V, a->heads, 1.0f / sqrtf((float)(c / a->heads)), 0, &N);
    if (!s) s = svdc_op_linear(ctx, &N, &a->out_w, &a->out_b, &K); /* to_out.0 -> K (free now) */
    if (!s) s = svdc_op_add(ctx, &X, &K, &X);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* x (B, T, C) += Attn(LN(x), context[b]) for every token of video b; context (B, L, D).
 * L == 1: the softmax over one key is exactly 1, so the output is to_out(to_v(ctx[b])) for every query: computed
 * once per video and broadcast (LN and to_q do not influence the result and are skipped). */
static svdc_status cross_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                       const svdc_tensor *nb, float *x, int64_t batch, int64_t tokens,
                                       const svdc_tensor *context, float *n, float *o) {
    const int64_t c = a->query_dim, len = context->shape[1], d = context->shape[2];
    svdc_tensor X = u_view3(ctx, x, batch, tokens, c);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s;
    if (len == 1) {
        svdc_tensor ctx2 = u_view2(ctx, context->data, batch, d); /* (B, 1, D) -> (B, D) */
        svdc_tensor V, Ov;
        s = u_alloc2(ctx, &V, batch, c);
        if (!s) s = u_alloc2(ctx, &Ov, batch, c);
        if (!s) s = svdc_op_linear(ctx, &ctx2, &a->v_w, NULL, &V);
        if (!s) s = svdc_op_linear(ctx, &V, &a->out_w, &a->out_b, &Ov);
        if (!s) s = svdc_op_add_token_bias(ctx, &X, &Ov, &X);
    } else {
        svdc_tensor N = u_view3(ctx, n, batch, tokens, c), Q = u_view3(ctx, o, batch, tokens, c);
        svdc_tensor K, V;
        s = svdc_op_layer_norm(ctx, &X, nw, nb, LN_EPS, &N);
        if (!s) s = svdc_op_linear(ctx, &N, &a->q_w, NULL, &Q);
        if (!s) s = u_alloc3(ctx, &K, batch, len, c);
        if (!s) s = u_alloc3(ctx, &V, batch, len, c);
        if (!s) s = svdc_op_linear(ctx, context, &a->k_w, NULL, &K);
        if (!s) s = svdc_op_linear(ctx, context, &a->v_w, NULL, &V);
        if (!s) s = svdc_op_attention(ctx, &Q, &K, &V, a->heads, 1.0f / sqrtf((float)(c / a->heads)), 0, &N);
        if (!s) s = svdc_op_linear(ctx, &N, &a->out_w, &a->out_b, &Q);
        if (!s) s = svdc_op_add(ctx, &X, &Q, &X);
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* Frame position embedding: pos[b*F + f] = linear_2(silu(linear_1(sinusoid(f, C)))), pos (B*F, C). */
static svdc_status frame_pos_embedding(const svdc_ctx *ctx, const svdc_st_transformer *t, int64_t bf,
                                       int num_frames, svdc_tensor *pos) {
    const int64_t c = t->channels;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor fidx, e, hdn;
    svdc_status s = u_alloc(ctx, &fidx, 1, &bf);
    for (int64_t r = 0; !s && r < bf; r++) {
        svdc_tensor one = u_view1(ctx, u_at(fidx.data, r), 1);
        s = svdc_op_fill(ctx, &one, (float)(r % num_frames)); /* frames minor: row b*F + f has index f */
    }
    if (!s) s = u_alloc2(ctx, &e, bf, c);
    if (!s) s = u_alloc2(ctx, &hdn, bf, 4 * c);
    if (!s) s = svdc_op_timestep_embedding(ctx, &fidx, (int)c, &e);
    if (!s) s = svdc_op_linear(ctx, &e, &t->pos1_w, &t->pos1_b, &hdn);
    if (!s) s = svdc_op_silu(ctx, &hdn, &hdn);
    if (!s) s = svdc_op_linear(ctx, &hdn, &t->pos2_w, &t->pos2_b, pos);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Forward */

static svdc_status forward_body(const svdc_ctx *ctx, const svdc_st_transformer *t, const svdc_tensor *x,
                                int num_frames, const svdc_tensor *context, svdc_tensor *y) {
    const int64_t bf = x->shape[0], c = t->channels, hh = x->shape[2], ww = x->shape[3];
    const int64_t b = bf / num_frames, f = num_frames, hw = hh * ww, s_tok = bf * hw;
    svdc_tensor Hs, Tt, Nb, Ob, pos;
    UTRY(u_alloc2(ctx, &Hs, s_tok, c)); /* spatial token stream (B*F, hw, C) */
    UTRY(u_alloc2(ctx, &Tt, s_tok, c)); /* temporal token stream (B, hw, F, C) */
    UTRY(u_alloc2(ctx, &Nb, s_tok, c)); /* scratch */
    UTRY(u_alloc2(ctx, &Ob, s_tok, c)); /* scratch */
    UTRY(u_alloc2(ctx, &pos, bf, c));
    float *h = Hs.data, *tt = Tt.data, *n = Nb.data, *o = Ob.data;

    /* input: per-frame group norm, (BF, C, h, w) -> (BF, hw, C), proj_in */
    svdc_tensor n4 = u_view4(ctx, n, bf, c, hh, ww);
    UTRY(svdc_op_group_norm(ctx, x, GN_GROUPS, 1, &t->norm_w, &t->norm_b, GN_EPS, 0, &n4));
    svdc_tensor nchw = u_view4(ctx, n, bf, c, hw, 1), nhwc = u_view4(ctx, o, bf, hw, c, 1);
    UTRY(svdc_op_permute_0213(ctx, &nchw, &nhwc)); /* (BF, C, hw) -> (BF, hw, C) */
    svdc_tensor O2 = u_view2(ctx, o, s_tok, c);
    UTRY(svdc_op_linear(ctx, &O2, &t->proj_in_w, &t->proj_in_b, &Hs));

    UTRY(frame_pos_embedding(ctx, t, bf, num_frames, &pos));
    float alpha;
    UTRY(svdc_read_mix_alpha(ctx, &t->mix_factor, &alpha)); /* σ(m); image_only_indicator is 0 at inference */

    for (int l = 0; l < t->num_layers; l++) {
        const svdc_spatial_block *sb = &t->blocks[l];
        const svdc_temporal_block *tb = &t->temporal[l];
        /* spatial block on (BF, hw, C): attention over the hw tokens of each frame */
        UTRY(self_attn_residual(ctx, &sb->attn1, &sb->norm1_w, &sb->norm1_b, h, bf, hw, n, o));
        /* (BF, hw, C) viewed (B, F*hw, C): every token of video b attends to its context */
        UTRY(cross_attn_residual(ctx, &sb->attn2, &sb->norm2_w, &sb->norm2_b, h, b, f * hw, context, n, o));
        UTRY(ff_residual(ctx, &sb->ff, &sb->norm3_w, &sb->norm3_b, h, s_tok, n, o));

        /* temporal branch input: x + frame position embedding (only this branch gets it) */
        svdc_tensor h3 = u_view3(ctx, h, bf, hw, c), n3 = u_view3(ctx, n, bf, hw, c);
        UTRY(svdc_op_add_token_bias(ctx, &h3, &pos, &n3));
        svdc_tensor nbf = u_view4(ctx, n, b, f, hw, c), tbf = u_view4(ctx, tt, b, hw, f, c);
        UTRY(svdc_op_permute_0213(ctx, &nbf, &tbf)); /* (B, F, hw, C) -> (B, hw, F, C) = (B*hw, F, C) */

        UTRY(ff_residual(ctx, &tb->ff_in, &tb->norm_in_w, &tb->norm_in_b, tt, s_tok, n, o)); /* is_res */
        UTRY(self_attn_residual(ctx, &tb->attn1, &tb->norm1_w, &tb->norm1_b, tt, b * hw, f, n, o)); /* over F */
        /* (B*hw, F, C) viewed (B, hw*F, C): cross-attention to frame 0's context = the video's context */
        UTRY(cross_attn_residual(ctx, &tb->attn2, &tb->norm2_w, &tb->norm2_b, tt, b, hw * f, context, n, o));
        UTRY(ff_residual(ctx, &tb->ff, &tb->norm3_w, &tb->norm3_b, tt, s_tok, n, o));

        svdc_tensor tback = u_view4(ctx, n, b, f, hw, c);
        UTRY(svdc_op_permute_0213(ctx, &tbf, &tback)); /* (B, hw, F, C) -> (B, F, hw, C) */
        svdc_tensor N2 = u_view2(ctx, n, s_tok, c);
        UTRY(svdc_op_alpha_blend(ctx, &Hs, &N2, alpha, &Hs)); /* σ(m)·spatial + (1-σ(m))·temporal */
    }

    /* output: proj_out, (BF, hw, C) -> (BF, C, h, w), + residual */
    UTRY(svdc_op_linear(ctx, &Hs, &t->proj_out_w, &t->proj_out_b, &O2));
    svdc_tensor ohwc = u_view4(ctx, o, bf, hw, c, 1), nchw2 = u_view4(ctx, n, bf, c, hw, 1);
    UTRY(svdc_op_permute_0213(ctx, &ohwc, &nchw2)); /* (BF, hw, C) -> (BF, C, hw) */
    svdc_tensor n4b = u_view4(ctx, n, bf, c, hh, ww);
    return svdc_op_add(ctx, &n4b, x, y);
}

svdc_status svdc_st_transformer_forward(const svdc_ctx *ctx, const svdc_st_transformer *t, const svdc_tensor *x,
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
