/* clip_text.c — the CLIP text transformer (transformers CLIPTextTransformer + text_projection) composed from the shared
 * CLIP encoder stack and svdc_op_* only. */
#include "clip_text.h"

#include <stdlib.h>
#include <string.h>

#include "blocks/common.h"

static svdc_status check_config(const svdc_clip_text_config *c) {
    if (c->vocab_size < 1 || c->max_position_embeddings < 1 || c->hidden_size < 1 || c->num_hidden_layers < 1 ||
        c->num_attention_heads < 1 || c->intermediate_size < 1 || c->projection_dim < 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_text config: vocab_size %d, max_position_embeddings %d, "
                         "hidden_size %d, num_hidden_layers %d, num_attention_heads %d, intermediate_size %d must be "
                         ">= 1 and projection_dim %d >= 0", c->vocab_size, c->max_position_embeddings, c->hidden_size,
                         c->num_hidden_layers, c->num_attention_heads, c->intermediate_size, c->projection_dim);
    if (!(c->layer_norm_eps > 0.0f))
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_text config: layer_norm_eps %g must be positive",
                         (double)c->layer_norm_eps);
    return SVDC_OK;
}

static svdc_status declare(svdc_clip_text *m) {
    const svdc_clip_text_config *c = &m->cfg;
    svdc_params *p = &m->params;
    const int64_t C = c->hidden_size;
    SVDC_TRY(blk_param2(p, &m->token_emb, c->vocab_size, C, "", "text_model.embeddings.token_embedding.weight"));
    SVDC_TRY(blk_param2(p, &m->pos_emb, c->max_position_embeddings, C, "",
                        "text_model.embeddings.position_embedding.weight"));
    SVDC_TRY(svdc_clip_encoder_declare(&m->encoder, p, "text_model.encoder", c->hidden_size, c->intermediate_size,
                                       c->num_attention_heads, c->num_hidden_layers, c->layer_norm_eps,
                                       c->hidden_act));
    SVDC_TRY(blk_norm(p, &m->final_ln_w, &m->final_ln_b, C, "", "text_model.final_layer_norm"));
    if (c->projection_dim > 0) SVDC_TRY(blk_linear(p, &m->proj_w, NULL, c->projection_dim, C, "", "text_projection"));
    return SVDC_OK;
}

svdc_status svdc_clip_text_init(svdc_clip_text **out, const svdc_clip_text_config *cfg, const svdc_backend *backend,
                                int device) {
    *out = NULL;
    SVDC_TRY(check_config(cfg));
    svdc_clip_text *m = calloc(1, sizeof *m);
    if (!m) return svdc_fail(SVDC_ERR_MEMORY, "clip_text: out of host memory");
    m->cfg = *cfg;
    svdc_params_init(&m->params, backend, device, SVDC_DTYPE_F32);
    svdc_status s = declare(m);
    if (!s) s = svdc_params_allocate(&m->params);
    if (s) {
        svdc_clip_text_free(m);
        return s;
    }
    *out = m;
    return SVDC_OK;
}

void svdc_clip_text_free(svdc_clip_text *m) {
    if (!m) return;
    svdc_params_free(&m->params);
    svdc_clip_encoder_free(&m->encoder);
    free(m);
}

/* Rows [row, row + rows) of the (R, C) weight w, in w's storage dtype. */
static svdc_tensor weight_rows(const svdc_tensor *w, int64_t row, int64_t rows) {
    const int64_t C = w->shape[1], shape[2] = {rows, C};
    return svdc_tensor_view((char *)w->data + (size_t)(row * C) * svdc_dtype_size(w->dtype), w->dtype, w->device,
                            2, shape);
}

/* h (N, T, C) = token_embedding[ids] + position_embedding[:T]: one row per token (ids live on the host), converted
 * from the weights' storage dtype (a plain copy for float32). */
static svdc_status embed(const svdc_ctx *ctx, const svdc_clip_text *m, const int32_t *ids, int64_t n, int64_t t,
                         svdc_tensor *h) {
    const int64_t C = m->cfg.hidden_size;
    svdc_tensor pos = weight_rows(&m->pos_emb, 0, t); /* the first T positions */
    for (int64_t b = 0; b < n; b++) {
        for (int64_t i = 0; i < t; i++) {
            svdc_tensor src = weight_rows(&m->token_emb, (int64_t)ids[b * t + i], 1);
            svdc_tensor dst = blk_view2(ctx, blk_at(h->data, (b * t + i) * C), 1, C);
            SVDC_TRY(svdc_op_convert(ctx, &src, &dst));
        }
        svdc_tensor hb = blk_view2(ctx, blk_at(h->data, b * t * C), t, C);
        SVDC_TRY(svdc_op_add(ctx, &hb, &pos, &hb));
    }
    return SVDC_OK;
}

static svdc_status forward_body(const svdc_ctx *ctx, const svdc_clip_text *m, const int32_t *ids, int64_t n,
                                int64_t t, int skip_layers, int final_norm, const int32_t *eos_index,
                                svdc_tensor *hidden, svdc_tensor *pooled, svdc_tensor *text_embeds) {
    const svdc_clip_text_config *c = &m->cfg;
    const int64_t C = c->hidden_size;
    svdc_tensor h = blk_view3(ctx, hidden->data, n, t, C);
    SVDC_TRY(embed(ctx, m, ids, n, t, &h));
    SVDC_TRY(svdc_clip_encoder_forward(ctx, &m->encoder, 0, c->num_hidden_layers - skip_layers, 1, &h));
    if (pooled) { /* final_layer_norm of the EOS rows: (N, C) gathered from (N, T, C) */
        for (int64_t b = 0; b < n; b++) {
            svdc_tensor src = blk_view1(ctx, blk_at(h.data, (b * t + eos_index[b]) * C), C);
            svdc_tensor dst = blk_view1(ctx, blk_at(pooled->data, b * C), C);
            SVDC_TRY(svdc_op_copy(ctx, &src, &dst));
        }
        SVDC_TRY(svdc_op_layer_norm(ctx, pooled, &m->final_ln_w, &m->final_ln_b, c->layer_norm_eps, pooled));
        if (text_embeds) SVDC_TRY(svdc_op_linear(ctx, pooled, &m->proj_w, NULL, text_embeds));
    }
    if (final_norm) SVDC_TRY(svdc_op_layer_norm(ctx, &h, &m->final_ln_w, &m->final_ln_b, c->layer_norm_eps, &h));
    return SVDC_OK;
}

svdc_status svdc_clip_text_forward(const svdc_ctx *ctx, const svdc_clip_text *m, const int32_t *input_ids, int64_t n,
                                   int64_t t, int skip_layers, int final_norm, const int32_t *eos_index,
                                   svdc_tensor *hidden, svdc_tensor *pooled, svdc_tensor *text_embeds) {
    const svdc_clip_text_config *c = &m->cfg;
    char a[96];
    if (n < 1 || t < 1 || t > c->max_position_embeddings)
        return svdc_fail(SVDC_ERR_SHAPE, "clip_text: input_ids has shape (%lld, %lld), expected (N >= 1, 1..%d)",
                         (long long)n, (long long)t, c->max_position_embeddings);
    for (int64_t i = 0; i < n * t; i++)
        if (input_ids[i] < 0 || input_ids[i] >= c->vocab_size)
            return svdc_fail(SVDC_ERR_VALUE, "clip_text: input_ids[%lld, %lld] = %d is outside the vocabulary "
                             "0..%d", (long long)(i / t), (long long)(i % t), input_ids[i], c->vocab_size - 1);
    if (skip_layers < 0 || skip_layers >= c->num_hidden_layers)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_text: skip_layers %d, expected 0..%d", skip_layers,
                         c->num_hidden_layers - 1);
    if (!hidden || hidden->ndim != 3 || hidden->shape[0] != n || hidden->shape[1] != t ||
        hidden->shape[2] != c->hidden_size)
        return svdc_fail(SVDC_ERR_SHAPE, "clip_text: hidden has shape %s, expected (%lld, %lld, %d)",
                         hidden ? svdc_shape_str(hidden, a, sizeof a) : "NULL", (long long)n, (long long)t,
                         c->hidden_size);
    if (pooled) {
        if (!eos_index) return svdc_fail(SVDC_ERR_ARGUMENT, "clip_text: pooled output needs eos_index");
        for (int64_t b = 0; b < n; b++)
            if (eos_index[b] < 0 || eos_index[b] >= t)
                return svdc_fail(SVDC_ERR_VALUE, "clip_text: eos_index[%lld] = %d, expected 0..%lld", (long long)b,
                                 eos_index[b], (long long)(t - 1));
        if (pooled->ndim != 2 || pooled->shape[0] != n || pooled->shape[1] != c->hidden_size)
            return svdc_fail(SVDC_ERR_SHAPE, "clip_text: pooled has shape %s, expected (%lld, %d)",
                             svdc_shape_str(pooled, a, sizeof a), (long long)n, c->hidden_size);
    }
    if (text_embeds) {
        if (!pooled || c->projection_dim < 1)
            return svdc_fail(SVDC_ERR_ARGUMENT, "clip_text: text_embeds needs the pooled output and a "
                             "text_projection (projection_dim %d)", c->projection_dim);
        if (text_embeds->ndim != 2 || text_embeds->shape[0] != n || text_embeds->shape[1] != c->projection_dim)
            return svdc_fail(SVDC_ERR_SHAPE, "clip_text: text_embeds has shape %s, expected (%lld, %d)",
                             svdc_shape_str(text_embeds, a, sizeof a), (long long)n, c->projection_dim);
    }
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s = forward_body(ctx, m, input_ids, n, t, skip_layers, final_norm, eos_index, hidden, pooled,
                                 text_embeds);
    svdc_arena_release(ctx->arena, mark);
    return s;
}
