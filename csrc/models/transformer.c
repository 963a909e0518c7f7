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

/* ---------------------------------------------------------------------------------------------------------------
 * Declarations (diffusers names) */

static svdc_status attention_declare(svdc_attention *a, svdc_params *p, const char *prefix, int c, int ckv,
                                     int heads) {
    a->query_dim = c;
    a->context_dim = ckv;
    a->heads = heads;
    SVDC_TRY(u_param2(p, &a->q_w, c, c, prefix, "to_q.weight"));
    SVDC_TRY(u_param2(p, &a->k_w, c, ckv, prefix, "to_k.weight"));
    SVDC_TRY(u_param2(p, &a->v_w, c, ckv, prefix, "to_v.weight"));
    SVDC_TRY(u_param2(p, &a->out_w, c, c, prefix, "to_out.0.weight"));
    return u_param1(p, &a->out_b, c, prefix, "to_out.0.bias");
}

static svdc_status ff_declare(svdc_geglu_ff *f, svdc_params *p, const char *prefix, int dim) {
    f->dim = dim;
    f->inner = 4 * dim;
    f->dim_out = dim;
    SVDC_TRY(u_param2(p, &f->proj_w, 2 * f->inner, dim, prefix, "net.0.proj.weight"));
    SVDC_TRY(u_param1(p, &f->proj_b, 2 * f->inner, prefix, "net.0.proj.bias"));
    SVDC_TRY(u_param2(p, &f->out_w, f->dim_out, f->inner, prefix, "net.2.weight"));
    return u_param1(p, &f->out_b, f->dim_out, prefix, "net.2.bias");
}

static svdc_status norm_declare(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int c, const char *prefix,
                                const char *name) {
    char n[64];
    snprintf(n, sizeof n, "%s.weight", name);
    SVDC_TRY(u_param1(p, w, c, prefix, n));
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

    SVDC_TRY(norm_declare(p, &t->norm_w, &t->norm_b, c, prefix, "norm"));
    SVDC_TRY(u_param2(p, &t->proj_in_w, c, c, prefix, "proj_in.weight"));
    SVDC_TRY(u_param1(p, &t->proj_in_b, c, prefix, "proj_in.bias"));
    for (int l = 0; l < num_layers; l++) {
        svdc_spatial_block *s = &t->blocks[l];
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d", prefix, l);
        SVDC_TRY(norm_declare(p, &s->norm1_w, &s->norm1_b, c, pre, "norm1"));
        SVDC_TRY(norm_declare(p, &s->norm2_w, &s->norm2_b, c, pre, "norm2"));
        SVDC_TRY(norm_declare(p, &s->norm3_w, &s->norm3_b, c, pre, "norm3"));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.attn1", prefix, l);
        SVDC_TRY(attention_declare(&s->attn1, p, pre, c, c, heads));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.attn2", prefix, l);
        SVDC_TRY(attention_declare(&s->attn2, p, pre, c, context_dim, heads));
        snprintf(pre, sizeof pre, "%s.transformer_blocks.%d.ff", prefix, l);
        SVDC_TRY(ff_declare(&s->ff, p, pre, c));
    }
    for (int l = 0; l < num_layers; l++) {
        svdc_temporal_block *s = &t->temporal[l];
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d", prefix, l);
        SVDC_TRY(norm_declare(p, &s->norm_in_w, &s->norm_in_b, c, pre, "norm_in"));
        SVDC_TRY(norm_declare(p, &s->norm1_w, &s->norm1_b, c, pre, "norm1"));
        SVDC_TRY(norm_declare(p, &s->norm2_w, &s->norm2_b, c, pre, "norm2"));
        SVDC_TRY(norm_declare(p, &s->norm3_w, &s->norm3_b, c, pre, "norm3"));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.ff_in", prefix, l);
        SVDC_TRY(ff_declare(&s->ff_in, p, pre, c));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.attn1", prefix, l);
        SVDC_TRY(attention_declare(&s->attn1, p, pre, c, c, heads));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.attn2", prefix, l);
        SVDC_TRY(attention_declare(&s->attn2, p, pre, c, context_dim, heads));
        snprintf(pre, sizeof pre, "%s.temporal_transformer_blocks.%d.ff", prefix, l);
        SVDC_TRY(ff_declare(&s->ff, p, pre, c));
    }
    SVDC_TRY(u_param2(p, &t->pos1_w, 4 * c, c, prefix, "time_pos_embed.linear_1.weight"));
    SVDC_TRY(u_param1(p, &t->pos1_b, 4 * c, prefix, "time_pos_embed.linear_1.bias"));
    SVDC_TRY(u_param2(p, &t->pos2_w, c, 4 * c, prefix, "time_pos_embed.linear_2.weight"));
    SVDC_TRY(u_param1(p, &t->pos2_b, c, prefix, "time_pos_embed.linear_2.bias"));
    SVDC_TRY(u_param1(p, &t->mix_factor, 1, prefix, "time_mixer.mix_factor"));
    SVDC_TRY(u_param2(p, &t->proj_out_w, c, c, prefix, "proj_out.weight"));
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
 * Residual sub-layers. Each updates the token stream x in place. Every sub-layer is independent across rows (LN, FF)
 * or across batch entries (attention), so it runs in chunks whose scratch is capped near the backend's chunk budget: the stream
 * itself is the only full-size buffer a sub-layer touches. Scratch comes from the arena and is released on return. */

/* Rows per chunk when each row needs `row_floats` floats of the largest scratch buffer (at least 1): capped near the
 * backend's chunk budget (8 MiB on the CPU), all rows at once where the backend sets none (a GPU: one op per layer). */
static int64_t chunk_rows(const svdc_ctx *ctx, int64_t row_floats, int64_t total) {
    const size_t budget = svdc_ctx_chunk_budget(ctx);
    if (!budget) return total;
    int64_t r = (int64_t)(budget / ((size_t)row_floats * sizeof(float)));
    if (r < 1) r = 1;
    return r < total ? r : total;
}

/* x (rows, C) += FF(LN(x)). The GEGLU hidden layer (8C wide, then 4C) only ever exists for one chunk of rows. */
static svdc_status ff_residual(const svdc_ctx *ctx, const svdc_geglu_ff *ff, const svdc_tensor *nw,
                               const svdc_tensor *nb, float *x, int64_t rows) {
    const int64_t c = ff->dim, inner = ff->inner, co = ff->dim_out;
    const int64_t chunk = chunk_rows(ctx, 2 * inner, rows);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor N, H, G, O;
    svdc_status s = u_alloc2(ctx, &N, chunk, c);
    if (!s) s = u_alloc2(ctx, &H, chunk, 2 * inner);
    if (!s) s = u_alloc2(ctx, &G, chunk, inner);
    if (!s) s = u_alloc2(ctx, &O, chunk, co);
    for (int64_t r0 = 0; !s && r0 < rows; r0 += chunk) {
        const int64_t r = rows - r0 < chunk ? rows - r0 : chunk;
        svdc_tensor Xc = u_view2(ctx, u_at(x, r0 * c), r, c), Nc = u_view2(ctx, N.data, r, c);
        svdc_tensor Hc = u_view2(ctx, H.data, r, 2 * inner), Gc = u_view2(ctx, G.data, r, inner);
        svdc_tensor Oc = u_view2(ctx, O.data, r, co);
        s = svdc_op_layer_norm(ctx, &Xc, nw, nb, LN_EPS, &Nc);
        if (!s) s = svdc_op_linear(ctx, &Nc, &ff->proj_w, &ff->proj_b, &Hc);
        if (!s) s = svdc_op_geglu(ctx, &Hc, &Gc); /* [a | g] -> a * gelu(g) */
        if (!s) s = svdc_op_linear(ctx, &Gc, &ff->out_w, &ff->out_b, &Oc);
        if (!s) s = svdc_op_add(ctx, &Xc, &Oc, &Xc);
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* x (batch, len, C) += Attn(LN(x)): self-attention over the `len` tokens of each batch entry, in chunks of entries. */
static svdc_status self_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                      const svdc_tensor *nb, float *x, int64_t batch, int64_t len) {
    const int64_t c = a->query_dim;
    const int64_t chunk = chunk_rows(ctx, len * c, batch);
    const float scale = 1.0f / sqrtf((float)(c / a->heads));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor N, Q, K, V;
    svdc_status s = u_alloc3(ctx, &N, chunk, len, c);
    if (!s) s = u_alloc3(ctx, &Q, chunk, len, c);
    if (!s) s = u_alloc3(ctx, &K, chunk, len, c);
    if (!s) s = u_alloc3(ctx, &V, chunk, len, c);
    for (int64_t b0 = 0; !s && b0 < batch; b0 += chunk) {
        const int64_t nbat = batch - b0 < chunk ? batch - b0 : chunk;
        svdc_tensor Xc = u_view3(ctx, u_at(x, b0 * len * c), nbat, len, c);
        svdc_tensor Nc = u_view3(ctx, N.data, nbat, len, c), Qc = u_view3(ctx, Q.data, nbat, len, c);
        svdc_tensor Kc = u_view3(ctx, K.data, nbat, len, c), Vc = u_view3(ctx, V.data, nbat, len, c);
        s = svdc_op_layer_norm(ctx, &Xc, nw, nb, LN_EPS, &Nc);
        if (!s) s = svdc_op_linear(ctx, &Nc, &a->q_w, NULL, &Qc);
        if (!s) s = svdc_op_linear(ctx, &Nc, &a->k_w, NULL, &Kc);
        if (!s) s = svdc_op_linear(ctx, &Nc, &a->v_w, NULL, &Vc);
        /* softmax(q kᵀ / sqrt(head_dim)) v, streamed (no len x len matrix); the result overwrites N */
        if (!s) s = svdc_op_attention(ctx, &Qc, &Kc, &Vc, a->heads, scale, 0, &Nc);
        if (!s) s = svdc_op_linear(ctx, &Nc, &a->out_w, &a->out_b, &Kc); /* to_out.0 -> K (free now) */
        if (!s) s = svdc_op_add(ctx, &Xc, &Kc, &Xc);
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* x (B, T, C) += Attn(LN(x), context[b]) for every token of video b; context (B, L, D).
 * L == 1: the softmax over one key is exactly 1, so the output is to_out(to_v(ctx[b])) for every query: computed
 * once per video and broadcast (LN and to_q cannot influence the result and are skipped). */
static svdc_status cross_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                       const svdc_tensor *nb, float *x, int64_t batch, int64_t tokens,
                                       const svdc_tensor *context) {
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
        /* keys/values once per video; queries in chunks of tokens of one video */
        const int64_t chunk = chunk_rows(ctx, c, tokens);
        svdc_tensor K, V, N, Q;
        s = u_alloc3(ctx, &K, batch, len, c);
        if (!s) s = u_alloc3(ctx, &V, batch, len, c);
        if (!s) s = u_alloc3(ctx, &N, 1, chunk, c);
        if (!s) s = u_alloc3(ctx, &Q, 1, chunk, c);
        if (!s) s = svdc_op_linear(ctx, context, &a->k_w, NULL, &K);
        if (!s) s = svdc_op_linear(ctx, context, &a->v_w, NULL, &V);
        const float scale = 1.0f / sqrtf((float)(c / a->heads));
        for (int64_t b = 0; !s && b < batch; b++) {
            svdc_tensor Kb = u_view3(ctx, u_at(K.data, b * len * c), 1, len, c);
            svdc_tensor Vb = u_view3(ctx, u_at(V.data, b * len * c), 1, len, c);
            for (int64_t t0 = 0; !s && t0 < tokens; t0 += chunk) {
                const int64_t n = tokens - t0 < chunk ? tokens - t0 : chunk;
                svdc_tensor Xc = u_view3(ctx, u_at(x, (b * tokens + t0) * c), 1, n, c);
                svdc_tensor Nc = u_view3(ctx, N.data, 1, n, c), Qc = u_view3(ctx, Q.data, 1, n, c);
                s = svdc_op_layer_norm(ctx, &Xc, nw, nb, LN_EPS, &Nc);
                if (!s) s = svdc_op_linear(ctx, &Nc, &a->q_w, NULL, &Qc);
                if (!s) s = svdc_op_attention(ctx, &Qc, &Kb, &Vb, a->heads, scale, 0, &Nc);
                if (!s) s = svdc_op_linear(ctx, &Nc, &a->out_w, &a->out_b, &Qc);
                if (!s) s = svdc_op_add(ctx, &Xc, &Qc, &Xc);
            }
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* Frame position embedding: pos[f] = linear_2(silu(linear_1(sinusoid(f, C)))) for f < F, pos (F, C). */
static svdc_status frame_pos_embedding(const svdc_ctx *ctx, const svdc_st_transformer *t, int64_t num_frames,
                                       svdc_tensor *pos) {
    const int64_t c = t->channels;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor fidx, e, hdn;
    svdc_status s = u_alloc(ctx, &fidx, 1, &num_frames);
    for (int64_t f = 0; !s && f < num_frames; f++) {
        svdc_tensor one = u_view1(ctx, u_at(fidx.data, f), 1);
        s = svdc_op_fill(ctx, &one, (float)f);
    }
    if (!s) s = u_alloc2(ctx, &e, num_frames, c);
    if (!s) s = u_alloc2(ctx, &hdn, num_frames, 4 * c);
    if (!s) s = svdc_op_timestep_embedding(ctx, &fidx, (int)c, &e);
    if (!s) s = svdc_op_linear(ctx, &e, &t->pos1_w, &t->pos1_b, &hdn);
    if (!s) s = svdc_op_silu(ctx, &hdn, &hdn);
    if (!s) s = svdc_op_linear(ctx, &hdn, &t->pos2_w, &t->pos2_b, pos);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Forward: three full-size token buffers (spatial stream, temporal stream, one for layout changes) + chunk scratch */

static svdc_status forward_body(const svdc_ctx *ctx, const svdc_st_transformer *t, const svdc_tensor *x,
                                int num_frames, const svdc_tensor *context, svdc_tensor *y) {
    const int64_t bf = x->shape[0], c = t->channels, hh = x->shape[2], ww = x->shape[3];
    const int64_t b = bf / num_frames, f = num_frames, hw = hh * ww, s_tok = bf * hw;
    svdc_tensor Hs, Tt, Wb, pos;
    SVDC_TRY(u_alloc2(ctx, &Hs, s_tok, c)); /* spatial token stream (B*F, hw, C) */
    SVDC_TRY(u_alloc2(ctx, &Tt, s_tok, c)); /* temporal token stream (B, hw, F, C) */
    SVDC_TRY(u_alloc2(ctx, &Wb, s_tok, c)); /* layout changes */
    SVDC_TRY(u_alloc2(ctx, &pos, f, c));
    float *h = Hs.data, *tt = Tt.data, *wb = Wb.data;

    /* input: per-frame group norm, (BF, C, h, w) -> (BF, hw, C), proj_in */
    svdc_tensor w4 = u_view4(ctx, wb, bf, c, hh, ww);
    SVDC_TRY(svdc_op_group_norm(ctx, x, GN_GROUPS, 1, &t->norm_w, &t->norm_b, GN_EPS, 0, &w4));
    svdc_tensor wchw = u_view4(ctx, wb, bf, c, hw, 1), thwc = u_view4(ctx, tt, bf, hw, c, 1);
    SVDC_TRY(svdc_op_permute_0213(ctx, &wchw, &thwc)); /* (BF, C, hw) -> (BF, hw, C) */
    svdc_tensor T2 = u_view2(ctx, tt, s_tok, c);
    SVDC_TRY(svdc_op_linear(ctx, &T2, &t->proj_in_w, &t->proj_in_b, &Hs));

    SVDC_TRY(frame_pos_embedding(ctx, t, f, &pos));
    float alpha;
    SVDC_TRY(svdc_read_mix_alpha(ctx, &t->mix_factor, &alpha)); /* σ(m); image_only_indicator is 0 at inference */

    for (int l = 0; l < t->num_layers; l++) {
        const svdc_spatial_block *sb = &t->blocks[l];
        const svdc_temporal_block *tb = &t->temporal[l];
        /* spatial block on (BF, hw, C): attention over the hw tokens of each frame */
        SVDC_TRY(self_attn_residual(ctx, &sb->attn1, &sb->norm1_w, &sb->norm1_b, h, bf, hw));
        /* (BF, hw, C) viewed (B, F*hw, C): every token of video b attends to its context */
        SVDC_TRY(cross_attn_residual(ctx, &sb->attn2, &sb->norm2_w, &sb->norm2_b, h, b, f * hw, context));
        SVDC_TRY(ff_residual(ctx, &sb->ff, &sb->norm3_w, &sb->norm3_b, h, s_tok));

        /* temporal branch: (B, F, hw, C) -> (B, hw, F, C), + frame position embedding (only this branch gets it):
         * viewed (1, B*hw, F*C), pos (F, C) = (1, F*C) is added to every (b, location) row */
        svdc_tensor hbf = u_view4(ctx, h, b, f, hw, c), tbf = u_view4(ctx, tt, b, hw, f, c);
        SVDC_TRY(svdc_op_permute_0213(ctx, &hbf, &tbf));
        svdc_tensor trows = u_view3(ctx, tt, 1, b * hw, f * c), prow = u_view2(ctx, pos.data, 1, f * c);
        SVDC_TRY(svdc_op_add_token_bias(ctx, &trows, &prow, &trows));

        SVDC_TRY(ff_residual(ctx, &tb->ff_in, &tb->norm_in_w, &tb->norm_in_b, tt, s_tok)); /* is_res: dim == inner */
        SVDC_TRY(self_attn_residual(ctx, &tb->attn1, &tb->norm1_w, &tb->norm1_b, tt, b * hw, f)); /* over F */
        /* (B*hw, F, C) viewed (B, hw*F, C): cross-attention to frame 0's context = the video's context */
        SVDC_TRY(cross_attn_residual(ctx, &tb->attn2, &tb->norm2_w, &tb->norm2_b, tt, b, hw * f, context));
        SVDC_TRY(ff_residual(ctx, &tb->ff, &tb->norm3_w, &tb->norm3_b, tt, s_tok));

        svdc_tensor wbf = u_view4(ctx, wb, b, f, hw, c);
        SVDC_TRY(svdc_op_permute_0213(ctx, &tbf, &wbf)); /* (B, hw, F, C) -> (B, F, hw, C) */
        svdc_tensor W2 = u_view2(ctx, wb, s_tok, c);
        SVDC_TRY(svdc_op_alpha_blend(ctx, &Hs, &W2, alpha, &Hs)); /* σ(m)·spatial + (1-σ(m))·temporal */
    }

    /* output: proj_out, (BF, hw, C) -> (BF, C, h, w), + residual */
    SVDC_TRY(svdc_op_linear(ctx, &Hs, &t->proj_out_w, &t->proj_out_b, &T2));
    svdc_tensor whwc = u_view4(ctx, wb, bf, c, hw, 1);
    SVDC_TRY(svdc_op_permute_0213(ctx, &thwc, &whwc)); /* (BF, hw, C) -> (BF, C, hw) */
    return svdc_op_add(ctx, &w4, x, y);
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
