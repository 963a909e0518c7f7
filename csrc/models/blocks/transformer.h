/* transformer.h — the UNets' transformer in both arrangements, behind one declare/forward:
 *   SVDC_BLOCK_2D                diffusers Transformer2DModel (SD 2.x): GroupNorm -> proj_in -> BasicTransformerBlocks
 *                                -> proj_out -> + x;
 *   SVDC_BLOCK_SPATIO_TEMPORAL   diffusers TransformerSpatioTemporalModel (SVD; sgm SpatialVideoTransformer): the same
 *                                2-D transformer with, after each spatial block, a temporal block over the frames of
 *                                each location (on x + a frame-position embedding) mixed in by the alpha blender. */
#ifndef SVDC_BLOCKS_TRANSFORMER_H
#define SVDC_BLOCKS_TRANSFORMER_H

#include "attention.h"
#include "common.h"

/* TemporalBasicTransformerBlock: norm_in + ff_in (residual), self-attention over frames, cross-attention, FF. */
typedef struct svdc_temporal_block {
    svdc_tensor norm_in_w, norm_in_b, norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b;
    svdc_geglu_ff ff_in, ff;
    svdc_attention attn1, attn2;
} svdc_temporal_block;

typedef struct svdc_transformer {
    svdc_block_kind kind;
    int channels, heads, num_layers, context_dim;
    int linear_projection;                  /* 1: proj_in/out are Linear (C, C); 0: 1x1 Conv2d (C, C, 1, 1) */
    svdc_tensor norm_w, norm_b;             /* GroupNorm(32, C, eps 1e-6), per frame */
    svdc_tensor proj_in_w, proj_in_b;       /* C -> C */
    svdc_tensor proj_out_w, proj_out_b;     /* C -> C */
    svdc_basic_block *blocks;               /* num_layers spatial blocks */
    /* spatio-temporal kind only */
    svdc_temporal_block *temporal;          /* num_layers */
    svdc_tensor pos1_w, pos1_b, pos2_w, pos2_b; /* time_pos_embed.linear_1 (4C, C), linear_2 (C, 4C) */
    svdc_tensor mix_factor;                 /* time_mixer.mix_factor (1,): alpha = σ(m) weights the spatial branch */
} svdc_transformer;

/* Declares the weights under `prefix` (e.g. "down_blocks.0.attentions.1") in diffusers naming. channels must be a
 * multiple of 32 (group norm) and of heads. The struct must not move afterwards (the weight table points into it). */
svdc_status svdc_transformer_declare(svdc_transformer *t, svdc_params *p, const char *prefix, svdc_block_kind kind,
                                     int channels, int heads, int num_layers, int context_dim, int linear_projection);
void svdc_transformer_free(svdc_transformer *t); /* frees the block arrays; NULL-safe */

/* x (B*F, C, h, w) frames minor (the 2-D kind: F = 1); context (B, L, context_dim) per video (the diffusers UNet
 * repeats it per frame, so it is also every frame's and frame 0's context); y (B*F, C, h, w), not aliasing x.
 * Temporaries come from ctx->arena and are released before returning. */
svdc_status svdc_transformer_forward(const svdc_ctx *ctx, const svdc_transformer *t, const svdc_tensor *x,
                                     int num_frames, const svdc_tensor *context, svdc_tensor *y);

#endif
