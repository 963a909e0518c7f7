/* vae.h — svdc_vae, the VAE model of both diffusers classes: the shared encoder (vae_encoder.h) and the decoder of the
 * config's kind (vae_decoder.h) in one weight table under diffusers names:
 *   AutoencoderKL                 decoder_kind 2-D, post_quant_conv as configured (SD 2.x: yes; SV3D's sgm
 *                                 AutoencodingEngine: no), no time_conv_out;
 *   AutoencoderKLTemporalDecoder  decoder_kind spatio-temporal, time_conv_out, no post_quant_conv (SVD). */
#ifndef SVDC_VAE_H
#define SVDC_VAE_H

#include "vae_decoder.h"
#include "vae_encoder.h"

/* The diffusers config (down_block_types all DownEncoderBlock2D, one per level). */
typedef struct svdc_vae_config {
    int in_channels;      /* 3 */
    int out_channels;     /* 3 */
    int num_levels;       /* len(block_out_channels) */
    int block_out_channels[SVDC_VAE_MAX_LEVELS]; /* (128, 256, 512, 512) */
    int layers_per_block; /* 2 */
    int latent_channels;  /* 4 */
    int norm_num_groups;  /* 32 (AutoencoderKLTemporalDecoder hard-codes 32; AutoencoderKL's norm_num_groups) */
    svdc_block_kind decoder_kind; /* SPATIO_TEMPORAL: the temporal decoder + time_conv_out; 2D: AutoencoderKL's */
    int use_post_quant_conv;      /* 1: post_quant_conv (L, L, 1, 1) before the decoder (AutoencoderKL) */
} svdc_vae_config;

typedef struct svdc_vae {
    svdc_vae_config cfg;
    svdc_params params;
    int down_factor; /* 2^(num_levels-1) */
    svdc_vae_encoder encoder; /* encoder.*, quant_conv.* */
    svdc_vae_decoder decoder; /* post_quant_conv.* (optional), decoder.* */
} svdc_vae;

/* Validates cfg, declares every weight and allocates the weight block on (backend, device). *out is NULL on failure. */
svdc_status svdc_vae_init(svdc_vae **out, const svdc_vae_config *cfg, const svdc_backend *backend, int device);
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
