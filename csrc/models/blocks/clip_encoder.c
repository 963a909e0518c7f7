/* clip_encoder.c — CLIPEncoder (transformers modeling_clip.py): pre-LN layers of multi-head self-attention (optional
 * causal mask) and an MLP with GELU or quick-GELU, in place on the (N, T, C) token stream. */
#include "clip_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

svdc_status svdc_clip_encoder_declare(svdc_clip_encoder *e, svdc_params *p, const char *prefix, int hidden_size,
                                      int intermediate_size, int num_heads, int num_layers, float eps,
                                      svdc_clip_act act) {
    memset(e, 0, sizeof *e);
    if (hidden_size < 1 || intermediate_size < 1 || num_heads < 1 || hidden_size % num_heads || num_layers < 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: hidden_size %d must be a positive multiple of num_attention_heads %d "
                         "(intermediate_size %d, %d layers)", prefix, hidden_size, num_heads, intermediate_size,
                         num_layers);
    if (act != SVDC_CLIP_ACT_GELU && act != SVDC_CLIP_ACT_QUICK_GELU)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown hidden_act %d", prefix, (int)act);
    e->hidden_size = hidden_size;
    e->intermediate_size = intermediate_size;
    e->num_heads = num_heads;
    e->num_layers = num_layers;
    e->eps = eps;
    e->act = act;
    if (num_layers > 0) {
        e->layers = calloc((size_t)num_layers, sizeof *e->layers);
        if (!e->layers) return svdc_fail(SVDC_ERR_MEMORY, "%s: out of host memory for %d layers", prefix, num_layers);
    }
    const int64_t C = hidden_size, I = intermediate_size;
    for (int i = 0; i < num_layers; i++) {
        svdc_clip_layer *L = &e->layers[i];
        char base[256];
        SVDC_TRY(blk_name(base, sizeof base, prefix, "layers.%d", i));
        SVDC_TRY(blk_norm(p, &L->ln1_w, &L->ln1_b, C, base, "layer_norm1"));
        SVDC_TRY(blk_linear(p, &L->q_w, &L->q_b, C, C, base, "self_attn.q_proj"));
        SVDC_TRY(blk_linear(p, &L->k_w, &L->k_b, C, C, base, "self_attn.k_proj"));
        SVDC_TRY(blk_linear(p, &L->v_w, &L->v_b, C, C, base, "self_attn.v_proj"));
        SVDC_TRY(blk_linear(p, &L->o_w, &L->o_b, C, C, base, "self_attn.out_proj"));
        SVDC_TRY(blk_norm(p, &L->ln2_w, &L->ln2_b, C, base, "layer_norm2"));
        SVDC_TRY(blk_linear(p, &L->fc1_w, &L->fc1_b, I, C, base, "mlp.fc1"));
        SVDC_TRY(blk_linear(p, &L->fc2_w, &L->fc2_b, C, I, base, "mlp.fc2"));
    }
    return SVDC_OK;
}

void svdc_clip_encoder_free(svdc_clip_encoder *e) {
    if (!e) return;
    free(e->layers);
    e->layers = NULL;
}

/* y = act(x) in place. quick_gelu(x) = x·σ(1.702x) = silu(1.702x) / 1.702, composed from existing ops. */
static svdc_status activation(const svdc_ctx *ctx, svdc_clip_act act, svdc_tensor *x) {
    if (act == SVDC_CLIP_ACT_GELU) return svdc_op_gelu(ctx, x, x);
    svdc_status s = svdc_op_scale(ctx, x, 1.702f, x);
    if (!s) s = svdc_op_silu(ctx, x, x);
    if (!s) s = svdc_op_scale(ctx, x, 1.0f / 1.702f, x);
    return s;
}

svdc_status svdc_clip_encoder_first_tokens(const svdc_ctx *ctx, const svdc_tensor *h, svdc_tensor *y) {
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2];
    int64_t row[1] = {C};
    for (int64_t n = 0; n < N; n++) {
        svdc_tensor src = blk_view(ctx, blk_at(h->data, n * T * C), 1, row), dst = blk_view(ctx, blk_at(y->data, n * C), 1, row);
        svdc_status s = svdc_op_copy(ctx, &src, &dst);
        if (s) return s;
    }
    return SVDC_OK;
}

/* One pre-LN encoder layer on h (N, T, C), in place. */
static svdc_status encoder_layer(const svdc_ctx *ctx, const svdc_clip_encoder *e, const svdc_clip_layer *L, int causal,
                                 svdc_tensor *h) {
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2], I = e->intermediate_size;
    const int heads = e->num_heads;
    const float scale = 1.0f / sqrtf((float)(C / heads)); /* head_dim^-0.5 */
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor t, q, k, v, a, f;
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &t, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &q, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &k, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &v, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &a, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, h, &L->ln1_w, &L->ln1_b, e->eps, &t));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->q_w, &L->q_b, &q));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->k_w, &L->k_b, &k));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->v_w, &L->v_b, &v));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_attention(ctx, &q, &k, &v, heads, scale, causal, &a)); /* heads split head-major in the last dim */
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &a, &L->o_w, &L->o_b, &q));            /* q reused as the attention output */
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_add(ctx, h, &q, h));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, h, &L->ln2_w, &L->ln2_b, e->eps, &t));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &f, N, T, I));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->fc1_w, &L->fc1_b, &f));
    SVDC_TRY_RELEASE(ctx, mark, activation(ctx, e->act, &f));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &f, &L->fc2_w, &L->fc2_b, &q));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_add(ctx, h, &q, h));
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

svdc_status svdc_clip_encoder_forward(const svdc_ctx *ctx, const svdc_clip_encoder *e, int first, int count,
                                      int causal, svdc_tensor *h) {
    if (first < 0 || count < 0 || first + count > e->num_layers)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip encoder: layers %d..%d requested of %d", first, first + count - 1,
                         e->num_layers);
    for (int i = first; i < first + count; i++) SVDC_TRY(encoder_layer(ctx, e, &e->layers[i], causal, h));
    return SVDC_OK;
}

svdc_status svdc_clip_encoder_layer_first_token(const svdc_ctx *ctx, const svdc_clip_encoder *e, int index,
                                                const svdc_tensor *h, svdc_tensor *cls) {
    const svdc_clip_layer *L = &e->layers[index];
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2], I = e->intermediate_size;
    const int heads = e->num_heads;
    const float scale = 1.0f / sqrtf((float)(C / heads));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor t, k, v, t0, q, a, o, t2, f;
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &t, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &k, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &v, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &t0, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &q, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &a, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &o, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &t2, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &f, N, (int64_t)1, I));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, h, &L->ln1_w, &L->ln1_b, e->eps, &t));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->k_w, &L->k_b, &k));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t, &L->v_w, &L->v_b, &v));
    SVDC_TRY_RELEASE(ctx, mark, svdc_clip_encoder_first_tokens(ctx, &t, &t0)); /* LN1(h)[:, 0:1] (N, 1, C) */
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t0, &L->q_w, &L->q_b, &q));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_attention(ctx, &q, &k, &v, heads, scale, 0, &a)); /* Lq = 1 against Lk = T */
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &a, &L->o_w, &L->o_b, &o));
    SVDC_TRY_RELEASE(ctx, mark, svdc_clip_encoder_first_tokens(ctx, h, cls));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_add(ctx, cls, &o, cls));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, cls, &L->ln2_w, &L->ln2_b, e->eps, &t2));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &t2, &L->fc1_w, &L->fc1_b, &f));
    SVDC_TRY_RELEASE(ctx, mark, activation(ctx, e->act, &f));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &f, &L->fc2_w, &L->fc2_b, &o));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_add(ctx, cls, &o, cls));
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

