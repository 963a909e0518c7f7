/* clip_vision.c — CLIPVisionModelWithProjection forward (spec §3) composed from svdc_op_* only: weight table under
 * transformers names, embeddings, pre-LN encoder layers, post-LN on the class token and the projection. */
#include "clip_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/tensor.h"

#define TRY(expr)                  \
    do {                           \
        s = (expr);                \
        if (s != SVDC_OK) goto out; \
    } while (0)

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

/* Registers "<prefix>.weight" (C,) and "<prefix>.bias" (C,) of a LayerNorm. */
static svdc_status add_norm(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t dim, const char *prefix) {
    svdc_status s = svdc_params_add(p, w, 1, &dim, "%s.weight", prefix);
    if (s) return s;
    return svdc_params_add(p, b, 1, &dim, "%s.bias", prefix);
}

/* Registers "<prefix>.weight" (out, in) and "<prefix>.bias" (out,) of a Linear. */
static svdc_status add_linear(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in,
                              const char *prefix) {
    int64_t ws[2] = {out, in};
    svdc_status s = svdc_params_add(p, w, 2, ws, "%s.weight", prefix);
    if (s) return s;
    return svdc_params_add(p, b, 1, &out, "%s.bias", prefix);
}

/* The weight table in transformers' naming (CLIPVisionModelWithProjection.state_dict() minus the position_ids
 * buffer, which the Python layer puts on its ignore list). */
static svdc_status declare(svdc_clip_vision *m) {
    const svdc_clip_vision_config *c = &m->cfg;
    svdc_params *p = &m->params;
    const int64_t C = c->hidden_size, I = c->intermediate_size, g = grid_of(c);
    svdc_status s;
    int64_t patch[4] = {C, c->num_channels, c->patch_size, c->patch_size};
    int64_t pos[2] = {g * g + 1, C};
    int64_t proj[2] = {c->projection_dim, C};
    if ((s = svdc_params_add(p, &m->patch_w, 4, patch, "vision_model.embeddings.patch_embedding.weight"))) return s;
    if ((s = svdc_params_add(p, &m->class_emb, 1, &C, "vision_model.embeddings.class_embedding"))) return s;
    if ((s = svdc_params_add(p, &m->pos_emb, 2, pos, "vision_model.embeddings.position_embedding.weight"))) return s;
    if ((s = add_norm(p, &m->pre_ln_w, &m->pre_ln_b, C, "vision_model.pre_layrnorm"))) return s; /* sic */
    for (int i = 0; i < c->num_hidden_layers; i++) {
        svdc_clip_layer *L = &m->layers[i];
        char base[96], name[160];
        snprintf(base, sizeof base, "vision_model.encoder.layers.%d", i);
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", base, suffix), name)
        if ((s = add_norm(p, &L->ln1_w, &L->ln1_b, C, NAME("layer_norm1")))) return s;
        if ((s = add_linear(p, &L->q_w, &L->q_b, C, C, NAME("self_attn.q_proj")))) return s;
        if ((s = add_linear(p, &L->k_w, &L->k_b, C, C, NAME("self_attn.k_proj")))) return s;
        if ((s = add_linear(p, &L->v_w, &L->v_b, C, C, NAME("self_attn.v_proj")))) return s;
        if ((s = add_linear(p, &L->o_w, &L->o_b, C, C, NAME("self_attn.out_proj")))) return s;
        if ((s = add_norm(p, &L->ln2_w, &L->ln2_b, C, NAME("layer_norm2")))) return s;
        if ((s = add_linear(p, &L->fc1_w, &L->fc1_b, I, C, NAME("mlp.fc1")))) return s;
        if ((s = add_linear(p, &L->fc2_w, &L->fc2_b, C, I, NAME("mlp.fc2")))) return s;
#undef NAME
    }
    if ((s = add_norm(p, &m->post_ln_w, &m->post_ln_b, C, "vision_model.post_layernorm"))) return s;
    return svdc_params_add(p, &m->proj_w, 2, proj, "visual_projection.weight");
}

svdc_status svdc_clip_vision_init(svdc_clip_vision *m, const svdc_clip_vision_config *cfg,
                                  const svdc_backend *backend, int device) {
    memset(m, 0, sizeof *m);
    svdc_status s = svdc_clip_vision_config_check(cfg);
    if (s) return s;
    m->cfg = *cfg;
    svdc_params_init(&m->params, backend, device, SVDC_DTYPE_F32);
    if (cfg->num_hidden_layers > 0) {
        m->layers = calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers);
        if (!m->layers) return svdc_fail(SVDC_ERR_MEMORY, "clip_vision: out of host memory for %d layers",
                                         cfg->num_hidden_layers);
    }
    if ((s = declare(m)) || (s = svdc_params_allocate(&m->params))) {
        svdc_clip_vision_free(m);
        return s;
    }
    return SVDC_OK;
}

void svdc_clip_vision_free(svdc_clip_vision *m) {
    if (!m) return;
    svdc_params_free(&m->params);
    free(m->layers);
    m->layers = NULL;
}

/* A view of `ndim`/`shape` starting `offset` elements into base's data (same device and dtype). */
static svdc_tensor view_at(const svdc_tensor *base, int64_t offset, int ndim, const int64_t *shape) {
    return svdc_tensor_view((char *)base->data + offset * (int64_t)svdc_dtype_size(base->dtype), base->dtype,
                            base->device, ndim, shape);
}

/* y = act(x) in place. quick_gelu(x) = x·σ(1.702x) = silu(1.702x) / 1.702, composed from existing ops. */
static svdc_status activation(const svdc_ctx *ctx, svdc_clip_act act, svdc_tensor *x) {
    if (act == SVDC_CLIP_ACT_GELU) return svdc_op_gelu(ctx, x, x);
    svdc_status s = svdc_op_scale(ctx, x, 1.702f, x);
    if (!s) s = svdc_op_silu(ctx, x, x);
    if (!s) s = svdc_op_scale(ctx, x, 1.0f / 1.702f, x);
    return s;
}

/* Copies row 0 (the class token) of every batch item: h (N, T, C) -> y (N, 1, C). */
static svdc_status gather_class_tokens(const svdc_ctx *ctx, const svdc_tensor *h, svdc_tensor *y) {
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2];
    int64_t row[1] = {C};
    for (int64_t n = 0; n < N; n++) {
        svdc_tensor src = view_at(h, n * T * C, 1, row), dst = view_at(y, n * C, 1, row);
        svdc_status s = svdc_op_copy(ctx, &src, &dst);
        if (s) return s;
    }
    return SVDC_OK;
}

/* Embeddings: h (N, T, C) = [class_embedding; patch_conv(x) tokens] + position_embedding, T = g² + 1. */
static svdc_status embed(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *x, svdc_tensor *h) {
    const svdc_clip_vision_config *c = &m->cfg;
    const int64_t N = x->shape[0], C = c->hidden_size, g = grid_of(c), P = g * g, T = P + 1;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s;
    svdc_tensor pe, tok;
    TRY(svdc_arena_f32(ctx->arena, &pe, 4, (int64_t)N, (int64_t)C, g, g));
    svdc_conv2d_params cp = {c->patch_size, c->patch_size, 0, 0, 0, 0};
    TRY(svdc_op_conv2d(ctx, x, &m->patch_w, NULL, &cp, &pe)); /* (N, C, g, g); stride = kernel = patch */
    int64_t pe4[4] = {N, C, P, 1};
    svdc_tensor pe_flat = view_at(&pe, 0, 4, pe4); /* (N, C, g, g) -> (N, C, P, 1) */
    TRY(svdc_arena_f32(ctx->arena, &tok, 4, (int64_t)N, P, (int64_t)C, (int64_t)1));
    TRY(svdc_op_permute_0213(ctx, &pe_flat, &tok)); /* (N, C, P, 1) -> (N, P, C, 1): channels-last tokens */
    int64_t row[1] = {C}, patches[2] = {P, C}, all[2] = {T, C};
    for (int64_t n = 0; n < N; n++) {
        svdc_tensor cls = view_at(h, n * T * C, 1, row);           /* h[n, 0, :] */
        svdc_tensor body = view_at(h, n * T * C + C, 2, patches);  /* h[n, 1:, :] */
        svdc_tensor src = view_at(&tok, n * P * C, 2, patches);    /* tok[n] (P, C) */
        svdc_tensor hn = view_at(h, n * T * C, 2, all);            /* h[n] (T, C) */
        TRY(svdc_op_copy(ctx, &m->class_emb, &cls));
        TRY(svdc_op_copy(ctx, &src, &body));
        TRY(svdc_op_add(ctx, &hn, &m->pos_emb, &hn));
    }
out:
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* One pre-LN encoder layer on h (N, T, C), in place. */
static svdc_status encoder_layer(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_clip_layer *L,
                                 svdc_tensor *h) {
    const svdc_clip_vision_config *c = &m->cfg;
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2], I = c->intermediate_size;
    const int heads = c->num_attention_heads;
    const float scale = 1.0f / sqrtf((float)(C / heads)); /* head_dim^-0.5 */
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s;
    svdc_tensor t, q, k, v, a, f;
    TRY(svdc_arena_f32(ctx->arena, &t, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &q, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &k, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &v, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &a, 3, N, T, C));
    TRY(svdc_op_layer_norm(ctx, h, &L->ln1_w, &L->ln1_b, c->layer_norm_eps, &t));
    TRY(svdc_op_linear(ctx, &t, &L->q_w, &L->q_b, &q));
    TRY(svdc_op_linear(ctx, &t, &L->k_w, &L->k_b, &k));
    TRY(svdc_op_linear(ctx, &t, &L->v_w, &L->v_b, &v));
    TRY(svdc_op_attention(ctx, &q, &k, &v, heads, scale, 0, &a)); /* heads split head-major in the last dim */
    TRY(svdc_op_linear(ctx, &a, &L->o_w, &L->o_b, &q));            /* q reused as the attention output */
    TRY(svdc_op_add(ctx, h, &q, h));
    TRY(svdc_op_layer_norm(ctx, h, &L->ln2_w, &L->ln2_b, c->layer_norm_eps, &t));
    TRY(svdc_arena_f32(ctx->arena, &f, 3, N, T, I));
    TRY(svdc_op_linear(ctx, &t, &L->fc1_w, &L->fc1_b, &f));
    TRY(activation(ctx, c->hidden_act, &f));
    TRY(svdc_op_linear(ctx, &f, &L->fc2_w, &L->fc2_b, &q));
    TRY(svdc_op_add(ctx, h, &q, h));
out:
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* The last encoder layer, computed only for the class token (the only row the pooled output reads): keys and values
 * still come from every token. h (N, T, C) -> cls (N, 1, C). */
static svdc_status last_layer_class_token(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_clip_layer *L,
                                          const svdc_tensor *h, svdc_tensor *cls) {
    const svdc_clip_vision_config *c = &m->cfg;
    const int64_t N = h->shape[0], T = h->shape[1], C = h->shape[2], I = c->intermediate_size;
    const int heads = c->num_attention_heads;
    const float scale = 1.0f / sqrtf((float)(C / heads));
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s;
    svdc_tensor t, k, v, t0, q, a, o, t2, f;
    TRY(svdc_arena_f32(ctx->arena, &t, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &k, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &v, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &t0, 3, N, (int64_t)1, C));
    TRY(svdc_arena_f32(ctx->arena, &q, 3, N, (int64_t)1, C));
    TRY(svdc_arena_f32(ctx->arena, &a, 3, N, (int64_t)1, C));
    TRY(svdc_arena_f32(ctx->arena, &o, 3, N, (int64_t)1, C));
    TRY(svdc_arena_f32(ctx->arena, &t2, 3, N, (int64_t)1, C));
    TRY(svdc_arena_f32(ctx->arena, &f, 3, N, (int64_t)1, I));
    TRY(svdc_op_layer_norm(ctx, h, &L->ln1_w, &L->ln1_b, c->layer_norm_eps, &t));
    TRY(svdc_op_linear(ctx, &t, &L->k_w, &L->k_b, &k));
    TRY(svdc_op_linear(ctx, &t, &L->v_w, &L->v_b, &v));
    TRY(gather_class_tokens(ctx, &t, &t0)); /* LN1(h)[:, 0:1] (N, 1, C) */
    TRY(svdc_op_linear(ctx, &t0, &L->q_w, &L->q_b, &q));
    TRY(svdc_op_attention(ctx, &q, &k, &v, heads, scale, 0, &a)); /* Lq = 1 against Lk = T */
    TRY(svdc_op_linear(ctx, &a, &L->o_w, &L->o_b, &o));
    TRY(gather_class_tokens(ctx, h, cls));
    TRY(svdc_op_add(ctx, cls, &o, cls));
    TRY(svdc_op_layer_norm(ctx, cls, &L->ln2_w, &L->ln2_b, c->layer_norm_eps, &t2));
    TRY(svdc_op_linear(ctx, &t2, &L->fc1_w, &L->fc1_b, &f));
    TRY(activation(ctx, c->hidden_act, &f));
    TRY(svdc_op_linear(ctx, &f, &L->fc2_w, &L->fc2_b, &o));
    TRY(svdc_op_add(ctx, cls, &o, cls));
out:
    svdc_arena_release(ctx->arena, mark);
    return s;
}

svdc_status svdc_clip_vision_forward(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *x,
                                     svdc_tensor *y) {
    const svdc_clip_vision_config *c = &m->cfg;
    char got[96];
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != c->num_channels || x->shape[2] != c->image_size ||
        x->shape[3] != c->image_size)
        return svdc_fail(SVDC_ERR_SHAPE, "image_encoder: pixel_values must be (N, %d, %d, %d) with N >= 1, got %s",
                         c->num_channels, c->image_size, c->image_size, svdc_shape_str(x, got, sizeof got));
    const int64_t N = x->shape[0], C = c->hidden_size, g = grid_of(c), T = g * g + 1;
    if (y->ndim != 2 || y->shape[0] != N || y->shape[1] != c->projection_dim)
        return svdc_fail(SVDC_ERR_SHAPE, "image_encoder: image_embeds must be (%lld, %d), got %s", (long long)N,
                         c->projection_dim, svdc_shape_str(y, got, sizeof got));
    svdc_status s = svdc_op_check_finite(ctx, x, "image_encoder: pixel_values");
    if (s) return s;
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor h, cls, pooled;
    TRY(svdc_arena_f32(ctx->arena, &h, 3, N, T, C));
    TRY(svdc_arena_f32(ctx->arena, &cls, 3, N, (int64_t)1, C));
    TRY(embed(ctx, m, x, &h));
    TRY(svdc_op_layer_norm(ctx, &h, &m->pre_ln_w, &m->pre_ln_b, c->layer_norm_eps, &h));
    for (int i = 0; i + 1 < c->num_hidden_layers; i++) TRY(encoder_layer(ctx, m, &m->layers[i], &h));
    if (c->num_hidden_layers > 0)
        TRY(last_layer_class_token(ctx, m, &m->layers[c->num_hidden_layers - 1], &h, &cls));
    else
        TRY(gather_class_tokens(ctx, &h, &cls));
    /* pooler_output = post_layernorm(last_hidden_state[:, 0]); image_embeds = pooled · projᵀ (no bias) */
    TRY(svdc_arena_f32(ctx->arena, &pooled, 2, N, C));
    int64_t nc[2] = {N, C};
    svdc_tensor cls2 = view_at(&cls, 0, 2, nc); /* (N, 1, C) -> (N, C) */
    TRY(svdc_op_layer_norm(ctx, &cls2, &m->post_ln_w, &m->post_ln_b, c->layer_norm_eps, &pooled));
    TRY(svdc_op_linear(ctx, &pooled, &m->proj_w, NULL, y));
out:
    svdc_arena_release(ctx->arena, mark);
    return s;
}
