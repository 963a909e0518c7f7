/* unet.h — the UNet of both families, one skip stack and forward loop over blocks of one kind:
 *   SVDC_BLOCK_SPATIO_TEMPORAL  diffusers UNetSpatioTemporalConditionModel (SVD / SVD-XT / SV3D), video rows
 *                               (B*F, C, h, w) frames minor, time + added-id embedding;
 *   SVDC_BLOCK_2D               diffusers UNet2DConditionModel (SD 2.x): images (B, C, h, w) = one-frame videos,
 *                               time embedding only (num_ids = 0).
 * Config struct, declared weight table (diffusers names) and forward. */
#ifndef SVDC_UNET_H
#define SVDC_UNET_H

#include "../core/ops.h"
#include "../core/params.h"
#include "blocks/resblocks.h"
#include "blocks/sampling.h"
#include "blocks/transformer.h"

#define SVDC_UNET_MAX_LEVELS 8
#define SVDC_UNET_MAX_IDS 16

typedef struct svdc_unet_config {
    svdc_block_kind kind;
    int in_channels, out_channels;
    int num_levels;                                  /* len(block_out_channels) */
    int block_out_channels[SVDC_UNET_MAX_LEVELS];
    int down_attention[SVDC_UNET_MAX_LEVELS];        /* 1: CrossAttnDownBlock{2D,SpatioTemporal}, 0: DownBlock... */
    int up_attention[SVDC_UNET_MAX_LEVELS];          /* up block i (i = 0 is the deepest): 1: CrossAttnUp..., 0: Up... */
    int layers_per_block[SVDC_UNET_MAX_LEVELS];      /* per level (down order); up block i has reversed[i] + 1 */
    int num_attention_heads[SVDC_UNET_MAX_LEVELS];   /* per level (down order) */
    int transformer_layers[SVDC_UNET_MAX_LEVELS];    /* per level (down order); mid uses the last */
    int cross_attention_dim;
    int linear_projection; /* transformers' proj_in/out: 1 Linear (SD 2.x, SVD), 0 1x1 Conv2d (SD 1.x); ST kind: 1 */
    float norm_eps;        /* 2-D kind: the group-norm eps of every res block (diffusers norm_eps, 1e-5) */
    /* Added conditioning: num_ids scalars per frame, id j embedded by a cos-first sinusoid of width id_widths[j]; the
     * concatenation (sum of widths = projection_class_embeddings_input_dim) feeds add_embedding.
     * SVD: 3 x 256 (fps_id, motion_bucket_id, cond_aug); SV3D_u: 1 x 256; SV3D_p: 256, 512, 512.
     * num_ids = 0: no add_embedding (the 2-D kind; SD 2.x). */
    int num_ids;
    int id_widths[SVDC_UNET_MAX_IDS];
    int projection_input_dim;
    /* Spatio-temporal res-block group-norm epsilons: 0 = diffusers (1e-6 in CrossAttnDown and every Up block, 1e-5 in DownBlock and
     * mid), 1 = sgm (1e-5 everywhere; what the Stability single-file checkpoints were trained with). */
    int sgm_eps;
} svdc_unet_config;

typedef struct svdc_unet_down {
    int num_layers, has_attention, has_downsample;
    svdc_resblock *resnets;
    svdc_transformer *attentions; /* NULL without attention */
    svdc_downsample2d downsampler; /* downsamplers.0: k3, stride 2, pad 1 */
} svdc_unet_down;

typedef struct svdc_unet_up {
    int num_layers, has_attention, has_upsample;
    svdc_resblock *resnets;
    svdc_transformer *attentions;
    svdc_upsample2d upsampler; /* upsamplers.0: nearest x2 then k3 pad 1 */
} svdc_unet_up;

typedef struct svdc_unet {
    svdc_unet_config cfg;
    svdc_params params;
    svdc_tensor conv_in_w, conv_in_b;
    svdc_tensor time1_w, time1_b, time2_w, time2_b; /* time_embedding.linear_{1,2} */
    svdc_tensor add1_w, add1_b, add2_w, add2_b;     /* add_embedding.linear_{1,2}; only with num_ids > 0 */
    svdc_unet_down down[SVDC_UNET_MAX_LEVELS];
    svdc_resblock mid_resnets[2];
    svdc_transformer mid_attention;
    svdc_unet_up up[SVDC_UNET_MAX_LEVELS];
    svdc_tensor norm_out_w, norm_out_b, conv_out_w, conv_out_b;
} svdc_unet;

/* Validates the config, declares every weight and allocates the weight block on (backend, device). The weights are
 * then filled by name (svdc_params_set / the Python loader) and checked with svdc_params_check_complete. */
svdc_status svdc_unet_init(svdc_unet **out, const svdc_unet_config *cfg, const svdc_backend *backend, int device);
void svdc_unet_free(svdc_unet *u); /* NULL is a no-op */

/* The per-frame conditioning vector: emb[b*F + f] = time_embedding(sinusoid(timesteps[b], C0))
 *                                                  + add_embedding(concat_j sinusoid(ids[b*F + f, j], width_j)).
 * timesteps (B,), ids (B*F, num_ids) (NULL when num_ids = 0: no added term) -> emb (B*F, 4*C0). With equal rows per video this is diffusers' emb after
 * repeat_interleave; rows may differ per frame (SV3D camera). */
svdc_status svdc_unet_embedding(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *timesteps,
                                const svdc_tensor *ids, int num_frames, svdc_tensor *emb);

/* sample (B*F, in_channels, h, w) frames minor (2-D kind: num_frames = 1); timesteps (B,); context
 * (B, L, cross_attention_dim) per video; ids (B*F, num_ids) per frame or NULL when num_ids = 0;
 * y (B*F, out_channels, h, w). Any h, w >= 1: a level whose skip is odd-sized gets the
 * upsampled map cropped to the skip size, which equals diffusers' nearest interpolation to that size. All
 * activations come from ctx->arena (released on return; the caller reads svdc_arena_peak). */
svdc_status svdc_unet_forward(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *sample, int num_frames,
                              const svdc_tensor *timesteps, const svdc_tensor *context, const svdc_tensor *ids,
                              svdc_tensor *y);

#endif
