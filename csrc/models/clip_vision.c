/* clip_vision.c — CLIPVisionModelWithProjection forward (SVD's image_encoder: ViT-H/14) composed from svdc_op_* only: weight table under
 * transformers names, embeddings, pre-LN encoder layers, post-LN on the class token and the projection. */
#include "clip_vision.h"

#include <math.h>
#include <stdlib.h>

svdc_status svdc_clip_vision_config_check(const svdc_clip_vision_config *c) {
    if (c->image_size < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: image_size must be >= 1, got %d", c->image_size);
    if (c->patch_size < 1 || c->patch_size > c->image_size)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: patch_size must be in 1..image_size (%d), got %d",
                         c->image_size, c->patch_size);
    if (c->num_channels < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: num_channels must be >= 1, got %d", c->num_channels);
    if (c->hidden_size < 1 || c->num_attention_heads < 1 || c->hidden_size % c->num_attention_heads != 0)
        return svdc_fail(SVDC_ERR_ARGUMENT,
                         "clip_vision: hidden_size (%d) must be a positive multiple of num_attention_heads (%d)",
                         c->hidden_size, c->num_attention_heads);
    if (c->num_hidden_layers < 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: num_hidden_layers must be >= 0, got %d", c->num_hidden_layers);
    if (c->intermediate_size < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: intermediate_size must be >= 1, got %d", c->intermediate_size);
    if (c->projection_dim < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: projection_dim must be >= 1, got %d", c->projection_dim);
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: layer_norm_eps must be a positive finite number, got %g",
                         (double)c->layer_norm_eps);
    if (c->hidden_act != SVDC_CLIP_ACT_GELU && c->hidden_act != SVDC_CLIP_ACT_QUICK_GELU)
        return svdc_fail(SVDC_ERR_ARGUMENT, "clip_vision: unknown hidden_act %d", (int)c->hidden_act);
    return SVDC_OK;
}

static int64_t grid_of(const svdc_clip_vision_config *c) { return c->image_size / c->patch_size; }

/* The weight table in transformers' naming (CLIPVisionModelWithProjection.state_dict() minus the position_ids
 * buffer, which the Python layer puts on its ignore list). */
static svdc_status declare(svdc_clip_vision *m) {
    const svdc_clip_vision_config *c = &m->cfg;
    svdc_params *p = &m->params;
    const int64_t C = c->hidden_size, I = c->intermediate_size, g = grid_of(c);
    const char *emb = "vision_model.embeddings";
    SVDC_TRY(blk_param4(p, &m->patch_w, C, c->num_channels, c->patch_size, c->patch_size, emb, "patch_embedding.weight"));
    SVDC_TRY(blk_param1(p, &m->class_emb, C, emb, "class_embedding"));
    SVDC_TRY(blk_param2(p, &m->pos_emb, g * g + 1, C, emb, "position_embedding.weight"));
    SVDC_TRY(blk_norm(p, &m->pre_ln_w, &m->pre_ln_b, C, "", "vision_model.pre_layrnorm")); /* sic */
    SVDC_TRY(svdc_clip_encoder_declare(&m->encoder, p, "vision_model.encoder", (int)C, (int)I, c->num_attention_heads,
                                       c->num_hidden_layers, c->layer_norm_eps, c->hidden_act));
    SVDC_TRY(blk_norm(p, &m->post_ln_w, &m->post_ln_b, C, "", "vision_model.post_layernorm"));
    return blk_linear(p, &m->proj_w, NULL, c->projection_dim, C, "", "visual_projection");
}

svdc_status svdc_clip_vision_init(svdc_clip_vision **out, const svdc_clip_vision_config *cfg,
                                  const svdc_backend *backend, int device) {
    *out = NULL;
    SVDC_TRY(svdc_clip_vision_config_check(cfg));
    svdc_clip_vision *m = calloc(1, sizeof *m);
    if (!m) return svdc_fail(SVDC_ERR_MEMORY, "clip_vision: out of host memory");
    m->cfg = *cfg;
    svdc_params_init(&m->params, backend, device, SVDC_DTYPE_F32);
    svdc_status s = declare(m);
    if (!s) s = svdc_params_allocate(&m->params);
    if (s) {
        svdc_clip_vision_free(m);
        return s;
    }
    *out = m;
    return SVDC_OK;
}

void svdc_clip_vision_free(svdc_clip_vision *m) {
    if (!m) return;
    svdc_params_free(&m->params);
    svdc_clip_encoder_free(&m->encoder);
    free(m);
}

/* Embeddings: h (N, T, C) = [class_embedding; patch_conv(x) tokens] + position_embedding, T = g² + 1. */
static svdc_status embed(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *x, svdc_tensor *h) {
    const svdc_clip_vision_config *c = &m->cfg;
    const int64_t N = x->shape[0], C = c->hidden_size, g = grid_of(c), P = g * g, T = P + 1;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor pe, tok;
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc4(ctx, &pe, (int64_t)N, (int64_t)C, g, g));
    svdc_conv2d_params cp = {c->patch_size, c->patch_size, 0, 0, 0, 0};
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_conv2d(ctx, x, &m->patch_w, NULL, &cp, &pe)); /* (N, C, g, g); stride = kernel = patch */
    int64_t pe4[4] = {N, C, P, 1};
    svdc_tensor pe_flat = blk_view(ctx, pe.data, 4, pe4); /* (N, C, g, g) -> (N, C, P, 1) */
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc4(ctx, &tok, (int64_t)N, P, (int64_t)C, (int64_t)1));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_permute_0213(ctx, &pe_flat, &tok)); /* (N, C, P, 1) -> (N, P, C, 1): channels-last tokens */
    int64_t row[1] = {C}, patches[2] = {P, C}, all[2] = {T, C};
    for (int64_t n = 0; n < N; n++) {
        svdc_tensor cls = blk_view(ctx, blk_at(h->data, n * T * C), 1, row);           /* h[n, 0, :] */
        svdc_tensor body = blk_view(ctx, blk_at(h->data, n * T * C + C), 2, patches);  /* h[n, 1:, :] */
        svdc_tensor src = blk_view(ctx, blk_at(tok.data, n * P * C), 2, patches);    /* tok[n] (P, C) */
        svdc_tensor hn = blk_view(ctx, blk_at(h->data, n * T * C), 2, all);            /* h[n] (T, C) */
        SVDC_TRY_RELEASE(ctx, mark, svdc_op_convert(ctx, &m->class_emb, &cls)); /* from its storage dtype */
        SVDC_TRY_RELEASE(ctx, mark, svdc_op_copy(ctx, &src, &body));
        SVDC_TRY_RELEASE(ctx, mark, svdc_op_add(ctx, &hn, &m->pos_emb, &hn));
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

svdc_status svdc_clip_vision_forward(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *x,
                                     svdc_tensor *y) {
    const svdc_clip_vision_config *c = &m->cfg;
    char got[96];
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != c->num_channels || x->shape[2] != c->image_size ||
        x->shape[3] != c->image_size)
        return svdc_fail(SVDC_ERR_SHAPE, "clip_vision: pixel_values must be (N, %d, %d, %d) with N >= 1, got %s",
                         c->num_channels, c->image_size, c->image_size, svdc_shape_str(x, got, sizeof got));
    const int64_t N = x->shape[0], C = c->hidden_size, g = grid_of(c), T = g * g + 1;
    if (y->ndim != 2 || y->shape[0] != N || y->shape[1] != c->projection_dim)
        return svdc_fail(SVDC_ERR_SHAPE, "clip_vision: image_embeds must be (%lld, %d), got %s", (long long)N,
                         c->projection_dim, svdc_shape_str(y, got, sizeof got));
    SVDC_TRY(svdc_op_check_finite(ctx, x, "clip_vision: pixel_values"));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor h, cls, pooled;
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &h, N, T, C));
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc3(ctx, &cls, N, (int64_t)1, C));
    SVDC_TRY_RELEASE(ctx, mark, embed(ctx, m, x, &h));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, &h, &m->pre_ln_w, &m->pre_ln_b, c->layer_norm_eps, &h));
    const int n = c->num_hidden_layers;
    /* every layer but the last on all tokens; the last only for the class token, the one row pooling reads */
    SVDC_TRY_RELEASE(ctx, mark, svdc_clip_encoder_forward(ctx, &m->encoder, 0, n > 0 ? n - 1 : 0, 0, &h));
    if (n > 0)
        SVDC_TRY_RELEASE(ctx, mark, svdc_clip_encoder_layer_first_token(ctx, &m->encoder, n - 1, &h, &cls));
    else
        SVDC_TRY_RELEASE(ctx, mark, svdc_clip_encoder_first_tokens(ctx, &h, &cls));
    /* pooler_output = post_layernorm(last_hidden_state[:, 0]); image_embeds = pooled · projᵀ (no bias) */
    SVDC_TRY_RELEASE(ctx, mark, blk_alloc2(ctx, &pooled, N, C));
    int64_t nc[2] = {N, C};
    svdc_tensor cls2 = blk_view(ctx, cls.data, 2, nc); /* (N, 1, C) -> (N, C) */
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_layer_norm(ctx, &cls2, &m->post_ln_w, &m->post_ln_b, c->layer_norm_eps, &pooled));
    SVDC_TRY_RELEASE(ctx, mark, svdc_op_linear(ctx, &pooled, &m->proj_w, NULL, y));
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}
