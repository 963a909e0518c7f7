/* attention.c — BasicTransformerBlock's residual sub-layers (diffusers attention.py / attention_processor.py): each
 * runs in chunks of rows or batch entries whose scratch is capped near the backend's chunk budget (8 MiB on the CPU;
 * none on a GPU, which gets one op per layer), so the token stream is the only full-size buffer it touches. */
#include "attention.h"

#include <math.h>
#include <stdio.h>

#include "common.h"

#define LN_EPS 1e-5f                     /* nn.LayerNorm default: norm1..3 of every transformer block */

/* ---------------------------------------------------------------------------------------------------------------
 * Declarations (diffusers names) */

svdc_status svdc_attention_declare(svdc_attention *a, svdc_params *p, const char *prefix, int c, int ckv, int heads) {
    a->query_dim = c;
    a->context_dim = ckv;
    a->heads = heads;
    SVDC_TRY(blk_linear(p, &a->q_w, NULL, c, c, prefix, "to_q"));
    SVDC_TRY(blk_linear(p, &a->k_w, NULL, c, ckv, prefix, "to_k"));
    SVDC_TRY(blk_linear(p, &a->v_w, NULL, c, ckv, prefix, "to_v"));
    return blk_linear(p, &a->out_w, &a->out_b, c, c, prefix, "to_out.0");
}

svdc_status svdc_geglu_ff_declare(svdc_geglu_ff *f, svdc_params *p, const char *prefix, int dim) {
    f->dim = dim;
    f->inner = 4 * dim;
    SVDC_TRY(blk_linear(p, &f->proj_w, &f->proj_b, 2 * f->inner, dim, prefix, "net.0.proj"));
    return blk_linear(p, &f->out_w, &f->out_b, dim, f->inner, prefix, "net.2");
}

svdc_status svdc_basic_block_declare(svdc_basic_block *b, svdc_params *p, const char *prefix, int channels, int heads,
                                     int context_dim) {
    char pre[512];
    SVDC_TRY(blk_norm(p, &b->norm1_w, &b->norm1_b, channels, prefix, "norm1"));
    SVDC_TRY(blk_norm(p, &b->norm2_w, &b->norm2_b, channels, prefix, "norm2"));
    SVDC_TRY(blk_norm(p, &b->norm3_w, &b->norm3_b, channels, prefix, "norm3"));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "attn1"));
    SVDC_TRY(svdc_attention_declare(&b->attn1, p, pre, channels, channels, heads));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "attn2"));
    SVDC_TRY(svdc_attention_declare(&b->attn2, p, pre, channels, context_dim, heads));
    SVDC_TRY(blk_name(pre, sizeof pre, prefix, "ff"));
    return svdc_geglu_ff_declare(&b->ff, p, pre, channels);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Residual sub-layers */

/* Rows per chunk when each row needs `row_floats` floats of the largest scratch buffer (at least 1), under the
 * backend's chunk budget; all rows at once where the backend sets none. */
static int64_t chunk_rows(const svdc_ctx *ctx, int64_t row_floats, int64_t total) {
    const size_t budget = svdc_ctx_chunk_budget(ctx);
    if (!budget) return total;
    int64_t r = (int64_t)(budget / ((size_t)row_floats * sizeof(float)));
    if (r < 1) r = 1;
    return r < total ? r : total;
}

/* x (rows, C) += FF(LN(x)). The GEGLU hidden layer (8C wide, then 4C) only ever exists for one chunk of rows. */
svdc_status svdc_ff_residual(const svdc_ctx *ctx, const svdc_geglu_ff *ff, const svdc_tensor *nw,
                             const svdc_tensor *nb, float *x, int64_t rows) {
    const int64_t c = ff->dim, inner = ff->inner, co = ff->dim;
    const int64_t chunk = chunk_rows(ctx, 2 * inner, rows);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor N, H, G, O;
    svdc_status s = blk_alloc2(ctx, &N, chunk, c);
    if (!s) s = blk_alloc2(ctx, &H, chunk, 2 * inner);
    if (!s) s = blk_alloc2(ctx, &G, chunk, inner);
    if (!s) s = blk_alloc2(ctx, &O, chunk, co);
    for (int64_t r0 = 0; !s && r0 < rows; r0 += chunk) {
        const int64_t r = rows - r0 < chunk ? rows - r0 : chunk;
        svdc_tensor Xc = blk_view2(ctx, blk_at(x, r0 * c), r, c), Nc = blk_view2(ctx, N.data, r, c);
        svdc_tensor Hc = blk_view2(ctx, H.data, r, 2 * inner), Gc = blk_view2(ctx, G.data, r, inner);
        svdc_tensor Oc = blk_view2(ctx, O.data, r, co);
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
svdc_status svdc_self_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                      const svdc_tensor *nb, float *x, int64_t batch, int64_t len) {
    const int64_t c = a->query_dim;
    const int64_t chunk = chunk_rows(ctx, len * c, batch);
    const float scale = 1.0f / sqrtf((float)(c / a->heads));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor N, Q, K, V;
    svdc_status s = blk_alloc3(ctx, &N, chunk, len, c);
    if (!s) s = blk_alloc3(ctx, &Q, chunk, len, c);
    if (!s) s = blk_alloc3(ctx, &K, chunk, len, c);
    if (!s) s = blk_alloc3(ctx, &V, chunk, len, c);
    for (int64_t b0 = 0; !s && b0 < batch; b0 += chunk) {
        const int64_t nbat = batch - b0 < chunk ? batch - b0 : chunk;
        svdc_tensor Xc = blk_view3(ctx, blk_at(x, b0 * len * c), nbat, len, c);
        svdc_tensor Nc = blk_view3(ctx, N.data, nbat, len, c), Qc = blk_view3(ctx, Q.data, nbat, len, c);
        svdc_tensor Kc = blk_view3(ctx, K.data, nbat, len, c), Vc = blk_view3(ctx, V.data, nbat, len, c);
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
svdc_status svdc_cross_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *nw,
                                       const svdc_tensor *nb, float *x, int64_t batch, int64_t tokens,
                                       const svdc_tensor *context) {
    const int64_t c = a->query_dim, len = context->shape[1], d = context->shape[2];
    svdc_tensor X = blk_view3(ctx, x, batch, tokens, c);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s;
    if (len == 1) {
        svdc_tensor ctx2 = blk_view2(ctx, context->data, batch, d); /* (B, 1, D) -> (B, D) */
        svdc_tensor V, Ov;
        s = blk_alloc2(ctx, &V, batch, c);
        if (!s) s = blk_alloc2(ctx, &Ov, batch, c);
        if (!s) s = svdc_op_linear(ctx, &ctx2, &a->v_w, NULL, &V);
        if (!s) s = svdc_op_linear(ctx, &V, &a->out_w, &a->out_b, &Ov);
        if (!s) s = svdc_op_add_token_bias(ctx, &X, &Ov, &X);
    } else {
        /* keys/values once per video; queries in chunks of tokens of one video */
        const int64_t chunk = chunk_rows(ctx, c, tokens);
        svdc_tensor K, V, N, Q;
        s = blk_alloc3(ctx, &K, batch, len, c);
        if (!s) s = blk_alloc3(ctx, &V, batch, len, c);
        if (!s) s = blk_alloc3(ctx, &N, 1, chunk, c);
        if (!s) s = blk_alloc3(ctx, &Q, 1, chunk, c);
        if (!s) s = svdc_op_linear(ctx, context, &a->k_w, NULL, &K);
        if (!s) s = svdc_op_linear(ctx, context, &a->v_w, NULL, &V);
        const float scale = 1.0f / sqrtf((float)(c / a->heads));
        for (int64_t b = 0; !s && b < batch; b++) {
            svdc_tensor Kb = blk_view3(ctx, blk_at(K.data, b * len * c), 1, len, c);
            svdc_tensor Vb = blk_view3(ctx, blk_at(V.data, b * len * c), 1, len, c);
            for (int64_t t0 = 0; !s && t0 < tokens; t0 += chunk) {
                const int64_t n = tokens - t0 < chunk ? tokens - t0 : chunk;
                svdc_tensor Xc = blk_view3(ctx, blk_at(x, (b * tokens + t0) * c), 1, n, c);
                svdc_tensor Nc = blk_view3(ctx, N.data, 1, n, c), Qc = blk_view3(ctx, Q.data, 1, n, c);
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

svdc_status svdc_basic_block_forward(const svdc_ctx *ctx, const svdc_basic_block *b, float *x, int64_t rows,
                                     int64_t len, const svdc_tensor *context) {
    const int64_t bc = context->shape[0];
    if (bc < 1 || (rows * len) % bc)
        return svdc_fail(SVDC_ERR_SHAPE, "transformer block: %lld tokens do not split over %lld context entries",
                         (long long)(rows * len), (long long)bc);
    SVDC_TRY(svdc_self_attn_residual(ctx, &b->attn1, &b->norm1_w, &b->norm1_b, x, rows, len));
    /* (rows, len, C) viewed (Bc, rows*len/Bc, C): every token of entry b attends to context[b] */
    SVDC_TRY(svdc_cross_attn_residual(ctx, &b->attn2, &b->norm2_w, &b->norm2_b, x, bc, rows * len / bc, context));
    return svdc_ff_residual(ctx, &b->ff, &b->norm3_w, &b->norm3_b, x, rows * len);
}
