/* vae_encoder.h — the VAE encoder of both diffusers VAE classes (AutoencoderKL and AutoencoderKLTemporalDecoder share
 * it: vae.py Encoder with double_z) followed by quant_conv, computing the posterior mean. */
#ifndef SVDC_VAE_ENCODER_H
#define SVDC_VAE_ENCODER_H

#include "blocks/mid_attention.h"
#include "blocks/resblocks.h"
#include "blocks/sampling.h"
#include "vae_common.h"

typedef struct svdc_vae_encoder_config {
    int in_channels;     /* 3 */
    int latent_channels; /* 4: conv_out and quant_conv have 2x as many (mean and log-variance) */
    int num_levels;      /* len(block_out_channels), one DownEncoderBlock2D each */
    int block_out_channels[SVDC_VAE_MAX_LEVELS];
    int layers_per_block;
    int norm_num_groups;
} svdc_vae_encoder_config;

typedef struct svdc_vae_down_level {
    svdc_resnet2d *resnets; /* layers_per_block */
    int has_downsample;
    svdc_downsample2d downsampler; /* downsamplers.0.conv (C, C, 3, 3), stride 2, pad (0,1,0,1) */
} svdc_vae_down_level;

typedef struct svdc_vae_encoder {
    svdc_vae_encoder_config cfg;
    int down_factor; /* 2^(num_levels-1) */
    svdc_tensor conv_in_w, conv_in_b;
    svdc_vae_down_level down[SVDC_VAE_MAX_LEVELS];
    svdc_resnet2d mid_res[2];
    svdc_mid_attention mid_attn;
    svdc_tensor norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    svdc_tensor quant_w, quant_b; /* (2L, 2L, 1, 1); the forward uses the first L output rows (the mean) */
    svdc_resnet2d *resnet_storage; /* one allocation behind every down level's resnets */
} svdc_vae_encoder;

/* Declares encoder.* and quant_conv.* (diffusers names) into p; the config was checked by the caller. `e` must not
 * move afterwards (p points into it). Release with svdc_vae_encoder_free, also after a failure. */
svdc_status svdc_vae_encoder_declare(svdc_vae_encoder *e, svdc_params *p, const svdc_vae_encoder_config *cfg);
void svdc_vae_encoder_free(svdc_vae_encoder *e); /* frees what declare allocated; the struct is the caller's */

/* x (N, in_channels, H, W), H and W multiples of down_factor -> mean (N, latent_channels, H/f, W/f), unscaled. */
svdc_status svdc_vae_encoder_forward(const svdc_ctx *ctx, const svdc_vae_encoder *e, const svdc_tensor *x,
                                     svdc_tensor *mean);

#endif
