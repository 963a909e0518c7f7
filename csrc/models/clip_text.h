/* clip_text.h — CLIPTextModel / CLIPTextModelWithProjection (transformers semantics): token + position embedding, the
 * causal CLIP encoder (blocks/clip_encoder.h), final layer norm, optional early stop (the penultimate-layer output SD
 * 2.x conditions on), pooling at the EOS token and the optional text projection. Weight names are transformers'. */
#ifndef SVDC_CLIP_TEXT_H
#define SVDC_CLIP_TEXT_H

#include "../core/ops.h"
#include "../core/params.h"
#include "blocks/clip_encoder.h"

typedef struct svdc_clip_text_config {
    int vocab_size, max_position_embeddings;
    int hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
    int projection_dim; /* 0: CLIPTextModel (no text_projection); > 0: CLIPTextModelWithProjection */
    float layer_norm_eps;
    svdc_clip_act hidden_act;
} svdc_clip_text_config;

typedef struct svdc_clip_text {
    svdc_clip_text_config cfg;
    svdc_params params;
    svdc_tensor token_emb;        /* text_model.embeddings.token_embedding.weight (vocab, C) */
    svdc_tensor pos_emb;          /* text_model.embeddings.position_embedding.weight (max_positions, C) */
    svdc_clip_encoder encoder;    /* text_model.encoder.layers.* */
    svdc_tensor final_ln_w, final_ln_b;
    svdc_tensor proj_w;           /* text_projection.weight (projection_dim, C), no bias; only with projection */
} svdc_clip_text;

svdc_status svdc_clip_text_init(svdc_clip_text **out, const svdc_clip_text_config *cfg, const svdc_backend *backend,
                                int device);
void svdc_clip_text_free(svdc_clip_text *m); /* NULL is a no-op */

/* input_ids (N*T host int32, 0 <= id < vocab, T <= max_position_embeddings) ->
 *   hidden (N, T, C): the output of the first num_hidden_layers - skip_layers layers, then final_layer_norm when
 *     final_norm (skip 0 + norm: last_hidden_state; skip 1, no norm: hidden_states[-2]; skip 1 + norm: SD 2.x's
 *     "penultimate" conditioning);
 *   pooled (N, C) or NULL: final_layer_norm(that output) at eos_index[n] (host int32, N values; the caller finds the
 *     EOS as transformers does);
 *   text_embeds (N, projection_dim) or NULL: pooled · text_projectionᵀ (needs projection_dim > 0 and pooled).
 * The causal mask hides later tokens, so padding after the EOS never changes earlier positions. */
svdc_status svdc_clip_text_forward(const svdc_ctx *ctx, const svdc_clip_text *m, const int32_t *input_ids, int64_t n,
                                   int64_t t, int skip_layers, int final_norm, const int32_t *eos_index,
                                   svdc_tensor *hidden, svdc_tensor *pooled, svdc_tensor *text_embeds);

#endif
