/* clip_vision.h — CLIPVisionModelWithProjection (transformers semantics; spec §3): patch conv, class token, learned
 * position embedding, pre-LN, pre-LN transformer blocks, post-LN on the class token, projection -> image_embeds.
 * The config struct mirrors transformers' CLIPVisionConfig; the weight table uses transformers' names. */
#ifndef SVDC_CLIP_VISION_H
#define SVDC_CLIP_VISION_H

#include "../core/ops.h"
#include "../core/params.h"

typedef enum svdc_clip_act {
    SVDC_CLIP_ACT_GELU = 0,       /* "gelu": exact erf GELU (OpenCLIP ViT-H/14) */
    SVDC_CLIP_ACT_QUICK_GELU = 1  /* "quick_gelu": x * sigmoid(1.702 x) (OpenAI CLIP; transformers' default) */
} svdc_clip_act;

typedef struct svdc_clip_vision_config {
    int image_size, patch_size, num_channels;
    int hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, projection_dim;
    float layer_norm_eps;
    svdc_clip_act hidden_act;
} svdc_clip_vision_config;

/* One CLIPEncoderLayer: x += out_proj(attn(LN1 x)); x += fc2(act(fc1(LN2 x))). */
typedef struct svdc_clip_layer {
    svdc_tensor ln1_w, ln1_b;
    svdc_tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b; /* (C, C) and (C,) each */
    svdc_tensor ln2_w, ln2_b;
    svdc_tensor fc1_w, fc1_b; /* (I, C), (I,) */
    svdc_tensor fc2_w, fc2_b; /* (C, I), (C,) */
} svdc_clip_layer;

typedef struct svdc_clip_vision {
    svdc_clip_vision_config cfg;
    svdc_params params;
    svdc_tensor patch_w;            /* (C, channels, p, p), no bias */
    svdc_tensor class_emb;          /* (C,) */
    svdc_tensor pos_emb;            /* (tokens, C), tokens = (image_size / p)^2 + 1 */
    svdc_tensor pre_ln_w, pre_ln_b; /* "pre_layrnorm" (sic) */
    svdc_clip_layer *layers;
    svdc_tensor post_ln_w, post_ln_b;
    svdc_tensor proj_w;             /* visual_projection.weight (projection_dim, C), no bias */
} svdc_clip_vision;

/* SVDC_ERR_ARGUMENT naming the field when a config value is impossible. */
svdc_status svdc_clip_vision_config_check(const svdc_clip_vision_config *cfg);

/* Declares the weight table and allocates it (one block) on `device`; the weights are then filled by name through
 * m->params (svdc_params_set / the Python loader). On failure everything is freed. */
svdc_status svdc_clip_vision_init(svdc_clip_vision *m, const svdc_clip_vision_config *cfg,
                                  const svdc_backend *backend, int device);
void svdc_clip_vision_free(svdc_clip_vision *m); /* NULL is a no-op */

/* pixel_values (N, num_channels, image_size, image_size), normalised -> image_embeds (N, projection_dim), not
 * L2-normalised. Temporaries come from ctx->arena and are released before returning. */
svdc_status svdc_clip_vision_forward(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *pixel_values,
                                     svdc_tensor *image_embeds);

#endif
