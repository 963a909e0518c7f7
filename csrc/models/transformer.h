/* transformer.h — the spatio-temporal transformer of the SVD UNet (diffusers TransformerSpatioTemporalModel, sgm
 * SpatialVideoTransformer; spec §1.6–1.8): attention, GEGLU feed-forward, the spatial and temporal blocks. */
#ifndef SVDC_TRANSFORMER_H
#define SVDC_TRANSFORMER_H

#include "../core/ops.h"
#include "../core/params.h"

/* diffusers Attention as used by the UNet: to_q/to_k/to_v without bias, to_out.0 with bias; heads split head-major. */
typedef struct svdc_attention {
    int query_dim;   /* C = heads * head_dim */
    int context_dim; /* C for self-attention, cross_attention_dim for cross-attention */
    int heads;
    svdc_tensor q_w, k_w, v_w;  /* (C, C), (C, Ckv), (C, Ckv) */
    svdc_tensor out_w, out_b;   /* (C, C), (C,) */
} svdc_attention;

/* diffusers FeedForward with GEGLU: net.0.proj (2*inner, dim) -> a * gelu(g) -> net.2 (dim_out, inner). */
typedef struct svdc_geglu_ff {
    int dim, inner, dim_out;
    svdc_tensor proj_w, proj_b, out_w, out_b;
} svdc_geglu_ff;

/* BasicTransformerBlock (pre-LN; LN eps 1e-5): self-attn, cross-attn, FF. */
typedef struct svdc_spatial_block {
    svdc_tensor norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b;
    svdc_attention attn1, attn2;
    svdc_geglu_ff ff;
} svdc_spatial_block;

/* TemporalBasicTransformerBlock: norm_in + ff_in (residual), self-attn over frames, cross-attn, FF. */
typedef struct svdc_temporal_block {
    svdc_tensor norm_in_w, norm_in_b, norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b;
    svdc_geglu_ff ff_in, ff;
    svdc_attention attn1, attn2;
} svdc_temporal_block;

typedef struct svdc_st_transformer {
    int channels, heads, num_layers, context_dim;
    svdc_tensor norm_w, norm_b;             /* GroupNorm(32, C, eps 1e-6), per frame */
    svdc_tensor proj_in_w, proj_in_b;       /* Linear C -> C */
    svdc_tensor proj_out_w, proj_out_b;     /* Linear C -> C */
    svdc_tensor pos1_w, pos1_b, pos2_w, pos2_b; /* time_pos_embed.linear_1 (4C, C), linear_2 (C, 4C) */
    svdc_tensor mix_factor;                 /* time_mixer.mix_factor (1,): alpha = sigmoid(m) weights the spatial branch */
    svdc_spatial_block *blocks;             /* num_layers */
    svdc_temporal_block *temporal;          /* num_layers */
} svdc_st_transformer;

/* Declares the weights under `prefix` (e.g. "down_blocks.0.attentions.1") in diffusers naming. channels must be a
 * multiple of 32 (group norm) and of heads. The struct must not move afterwards (the weight table points into it). */
svdc_status svdc_st_transformer_declare(svdc_st_transformer *t, svdc_params *p, const char *prefix, int channels,
                                        int heads, int num_layers, int context_dim);
void svdc_st_transformer_free(svdc_st_transformer *t); /* frees the block arrays; NULL-safe */

/* x (B*F, C, h, w) frames minor; context (B, L, context_dim) per video (the diffusers UNet repeats it per frame, so it
 * is also every frame's and frame 0's context); y (B*F, C, h, w), not aliasing x. Temporaries come from ctx->arena
 * and are released before returning. A context of length 1 takes the exact softmax-free path to_out(to_v(ctx)). */
svdc_status svdc_st_transformer_forward(const svdc_ctx *ctx, const svdc_st_transformer *t, const svdc_tensor *x,
                                        int num_frames, const svdc_tensor *context, svdc_tensor *y);

#endif
