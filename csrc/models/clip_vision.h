/* clip_vision.h — CLIPVisionModelWithProjection (transformers semantics; SVD's ViT-H/14): patch conv, class token, learned
 * position embedding, pre-LN, pre-LN transformer blocks, post-LN on the class token, projection -> image_embeds.
 * The config struct mirrors transformers' CLIPVisionConfig; the weight table uses transformers' names. */
#ifndef SVDC_CLIP_VISION_H
#define SVDC_CLIP_VISION_H

#include "../core/ops.h"
#include "../core/params.h"
#include "blocks/clip_encoder.h"

typedef struct svdc_clip_vision_config {
    int image_size, patch_size, num_channels;
    int hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, projection_dim;
    float layer_norm_eps;
    svdc_clip_act hidden_act;
} svdc_clip_vision_config;

typedef struct svdc_clip_vision {
    svdc_clip_vision_config cfg;
    svdc_params params;
    svdc_tensor patch_w;            /* (C, channels, p, p), no bias */
    svdc_tensor class_emb;          /* (C,) */
    svdc_tensor pos_emb;            /* (tokens, C), tokens = (image_size / p)^2 + 1 */
    svdc_tensor pre_ln_w, pre_ln_b; /* "pre_layrnorm" (sic) */
    svdc_clip_encoder encoder;      /* vision_model.encoder.layers.* */
    svdc_tensor post_ln_w, post_ln_b;
    svdc_tensor proj_w;             /* visual_projection.weight (projection_dim, C), no bias */
} svdc_clip_vision;

/* SVDC_ERR_ARGUMENT naming the field when a config value is impossible. */
svdc_status svdc_clip_vision_config_check(const svdc_clip_vision_config *cfg);

/* Checks cfg, declares the weight table and allocates it (one block) on `device`, and sets *out (NULL on failure); the
 * weights are then filled by name through params (svdc_params_set / the Python loader). */
svdc_status svdc_clip_vision_init(svdc_clip_vision **out, const svdc_clip_vision_config *cfg,
                                  const svdc_backend *backend, int device);
void svdc_clip_vision_free(svdc_clip_vision *m); /* NULL is a no-op */

/* pixel_values (N, num_channels, image_size, image_size), normalised -> image_embeds (N, projection_dim), not
 * L2-normalised. Temporaries come from ctx->arena and are released before returning. */
svdc_status svdc_clip_vision_forward(const svdc_ctx *ctx, const svdc_clip_vision *m, const svdc_tensor *pixel_values,
                                     svdc_tensor *image_embeds);

#endif
