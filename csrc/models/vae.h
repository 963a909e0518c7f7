/* vae.h — the VAEs of both families: one encoder (+ quant_conv, posterior mean) and one decoder built from blocks of
 * the config's kind: SVDC_BLOCK_2D = diffusers AutoencoderKL (SD 2.x; post_quant_conv, 2-D res blocks),
 * SVDC_BLOCK_SPATIO_TEMPORAL = AutoencoderKLTemporalDecoder (SVD; spatio-temporal res blocks + time_conv_out).
 * Config struct and weight table declared under diffusers names. */
#ifndef SVDC_VAE_H
#define SVDC_VAE_H

#include "../core/ops.h"
#include "../core/params.h"
#include "blocks/resblocks.h"
#include "blocks/sampling.h"

#define SVDC_VAE_MAX_LEVELS 8

/* diffusers AutoencoderKLTemporalDecoder config (down_block_types all DownEncoderBlock2D, one per level). */
typedef struct svdc_vae_config {
    int in_channels;      /* 3 */
    int out_channels;     /* 3 */
    int num_levels;       /* len(block_out_channels) */
    int block_out_channels[SVDC_VAE_MAX_LEVELS]; /* (128, 256, 512, 512) */
    int layers_per_block; /* 2 */
    int latent_channels;  /* 4 */
    int norm_num_groups;  /* 32 (AutoencoderKLTemporalDecoder hard-codes 32; AutoencoderKL's norm_num_groups) */
    svdc_block_kind decoder_kind; /* SPATIO_TEMPORAL: temporal decoder + time_conv_out; 2D: AutoencoderKL's decoder */
    int use_post_quant_conv;      /* 1: post_quant_conv (L, L, 1, 1) before the decoder (AutoencoderKL) */
} svdc_vae_config;

/* Fills the AutoencoderKLTemporalDecoder defaults: in/out 3, block_out_channels (64,), layers_per_block 1, latent 4,
 * groups 32, spatio-temporal decoder, no post_quant_conv. */
void svdc_vae_config_default(svdc_vae_config *cfg);

/* Single-head spatial self-attention of the VAE mid blocks (diffusers Attention with a group norm and a residual). */
typedef struct svdc_vae_attention {
    int channels, groups;
    float eps;
    svdc_tensor norm_w, norm_b, q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b;
} svdc_vae_attention;

typedef struct svdc_vae_down_level {
    svdc_resnet2d *resnets; /* layers_per_block */
    int has_downsample;
    svdc_downsample2d downsampler; /* downsamplers.0.conv (C, C, 3, 3), stride 2, pad (0,1,0,1) */
} svdc_vae_down_level;

typedef struct svdc_vae_up_level {
    svdc_resblock *resnets; /* layers_per_block + 1 */
    int has_upsample;
    svdc_upsample2d upsampler; /* upsamplers.0.conv (C, C, 3, 3) after nearest x2 */
} svdc_vae_up_level;

typedef struct svdc_vae {
    svdc_vae_config cfg;
    svdc_params params;
    int down_factor; /* 2^(num_levels-1) */

    /* encoder.* and quant_conv.* */
    svdc_tensor enc_conv_in_w, enc_conv_in_b;
    svdc_vae_down_level down[SVDC_VAE_MAX_LEVELS];
    svdc_resnet2d enc_mid_res[2];
    svdc_vae_attention enc_mid_attn;
    svdc_tensor enc_norm_out_w, enc_norm_out_b, enc_conv_out_w, enc_conv_out_b;
    svdc_tensor quant_w, quant_b; /* (2L, 2L, 1, 1); encode uses the first L output rows (the mean) */

    /* post_quant_conv.* (optional) and decoder.* */
    svdc_tensor post_quant_w, post_quant_b; /* (L, L, 1, 1) */
    svdc_tensor dec_conv_in_w, dec_conv_in_b;
    int num_dec_mid_res;          /* temporal: layers_per_block (diffusers runs only the first two); 2-D: 2 */
    svdc_resblock *dec_mid_res;
    svdc_vae_attention dec_mid_attn;
    svdc_vae_up_level up[SVDC_VAE_MAX_LEVELS];
    svdc_tensor dec_norm_out_w, dec_norm_out_b, dec_conv_out_w, dec_conv_out_b;
    svdc_tensor time_conv_out_w, time_conv_out_b; /* (out, out, 3, 1, 1); spatio-temporal decoder only */

    svdc_resnet2d *resnet_storage;   /* one allocation behind every down level's resnets */
    svdc_resblock *dec_storage;      /* one allocation behind the decoder's blocks */
} svdc_vae;

/* Validates cfg, declares every weight and allocates the weight block on (backend, device). *out is NULL on failure. */
svdc_status svdc_vae_create(svdc_vae **out, const svdc_vae_config *cfg, const svdc_backend *backend, int device);
void svdc_vae_free(svdc_vae *vae); /* NULL is a no-op */

/* Encoder + quant_conv, posterior mean: x (N, in_channels, H, W), H and W multiples of down_factor ->
 * mean (N, latent_channels, H/down_factor, W/down_factor), unscaled. */
svdc_status svdc_vae_encode(const svdc_ctx *ctx, const svdc_vae *vae, const svdc_tensor *x, svdc_tensor *mean);

/* Decoder: z (N, latent_channels, h, w) already divided by scaling_factor, N a multiple of num_frames; each run of
 * num_frames consecutive rows is one video (the 2-D decoder treats rows alone: pass 1) ->
 * y (N, out_channels, h*down_factor, w*down_factor). */
svdc_status svdc_vae_decode(const svdc_ctx *ctx, const svdc_vae *vae, const svdc_tensor *z, int num_frames,
                            svdc_tensor *y);

#endif
