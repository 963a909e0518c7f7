/* clip_encoder.h — transformers' CLIPEncoder: a stack of pre-LN CLIPEncoderLayers, shared by the vision tower
 * (clip_vision.c, bidirectional, "class token only" output of the last layer) and the text tower (clip_text.c, causal,
 * all tokens, optionally stopping early for the penultimate-layer output). */
#ifndef SVDC_BLOCKS_CLIP_ENCODER_H
#define SVDC_BLOCKS_CLIP_ENCODER_H

#include "common.h"

typedef enum svdc_clip_act {
    SVDC_CLIP_ACT_GELU = 0,      /* "gelu": exact erf GELU (OpenCLIP ViT-H/14) */
    SVDC_CLIP_ACT_QUICK_GELU = 1 /* "quick_gelu": x * sigmoid(1.702 x) (OpenAI CLIP; transformers' default) */
} svdc_clip_act;

/* One CLIPEncoderLayer: x += out_proj(attn(LN1 x)); x += fc2(act(fc1(LN2 x))). */
typedef struct svdc_clip_layer {
    svdc_tensor ln1_w, ln1_b;
    svdc_tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b; /* (C, C) and (C,) each */
    svdc_tensor ln2_w, ln2_b;
    svdc_tensor fc1_w, fc1_b; /* (I, C), (I,) */
    svdc_tensor fc2_w, fc2_b; /* (C, I), (C,) */
} svdc_clip_layer;

typedef struct svdc_clip_encoder {
    int hidden_size, intermediate_size, num_heads, num_layers;
    float eps;
    svdc_clip_act act;
    svdc_clip_layer *layers; /* num_layers */
} svdc_clip_encoder;

/* Declares "<prefix>.layers.<i>.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}.*"
 * (prefix e.g. "vision_model.encoder"). The struct must not move afterwards. */
svdc_status svdc_clip_encoder_declare(svdc_clip_encoder *e, svdc_params *p, const char *prefix, int hidden_size,
                                      int intermediate_size, int num_heads, int num_layers, float eps,
                                      svdc_clip_act act);
void svdc_clip_encoder_free(svdc_clip_encoder *e); /* frees the layer array; NULL-safe */

/* Layers first .. first+count-1 on h (N, T, C), in place ("all tokens" output). causal: token i attends to j <= i
 * (the text tower). */
svdc_status svdc_clip_encoder_forward(const svdc_ctx *ctx, const svdc_clip_encoder *e, int first, int count,
                                      int causal, svdc_tensor *h);

/* Layer `index` computed for token 0 only ("class token only" output: all a pooled vision output reads): keys and
 * values still come from every token. h (N, T, C) -> cls (N, 1, C); bidirectional. */
svdc_status svdc_clip_encoder_layer_first_token(const svdc_ctx *ctx, const svdc_clip_encoder *e, int index,
                                                const svdc_tensor *h, svdc_tensor *cls);

/* Copies token 0 (the class token) of every batch item: h (N, T, C) -> y (N, 1, C). */
svdc_status svdc_clip_encoder_first_tokens(const svdc_ctx *ctx, const svdc_tensor *h, svdc_tensor *y);

#endif
