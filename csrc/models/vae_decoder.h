/* vae_decoder.h — the VAE decoder, one arrangement for both diffusers classes with the res blocks of the config's kind:
 *   SVDC_BLOCK_2D               AutoencoderKL's Decoder (UNetMidBlock2D, UpDecoderBlock2D): SD 2.x, SV3D;
 *   SVDC_BLOCK_SPATIO_TEMPORAL  AutoencoderKLTemporalDecoder's TemporalDecoder (MidBlockTemporalDecoder,
 *                               UpBlockTemporalDecoder): SVD;
 * with an optional post_quant_conv before it (AutoencoderKL) and an optional time_conv_out after it (the temporal
 * decoder). */
#ifndef SVDC_VAE_DECODER_H
#define SVDC_VAE_DECODER_H

#include "blocks/mid_attention.h"
#include "blocks/resblocks.h"
#include "blocks/sampling.h"
#include "vae_common.h"

#define SVDC_VAE_NORM_EPS 1e-6f /* the group norms, and the 2-D res blocks (and the spatial halves) */
/* The streamed decode keeps each group norm's statistics on the stack: at most this many groups. */
#define SVDC_VAE_STREAM_MAX_GROUPS 256

typedef struct svdc_vae_decoder_config {
    svdc_block_kind kind;
    int out_channels;     /* 3 */
    int latent_channels;  /* 4 */
    int num_levels;       /* len(block_out_channels), one up block each */
    int block_out_channels[SVDC_VAE_MAX_LEVELS];
    int layers_per_block; /* an up block has layers_per_block + 1 res blocks */
    int norm_num_groups;
    int post_quant_conv;  /* 1: post_quant_conv (L, L, 1, 1) on the latents first */
    int time_conv_out;    /* 1: time_conv_out, a Conv3d (3, 1, 1) over each video's frames, last */
} svdc_vae_decoder_config;

typedef struct svdc_vae_up_level {
    svdc_resblock *resnets; /* layers_per_block + 1 */
    int has_upsample;
    svdc_upsample2d upsampler; /* upsamplers.0.conv (C, C, 3, 3) after nearest x2 */
} svdc_vae_up_level;

typedef struct svdc_vae_decoder {
    svdc_vae_decoder_config cfg;
    int up_factor; /* 2^(num_levels-1) */
    svdc_tensor post_quant_w, post_quant_b; /* (L, L, 1, 1) */
    svdc_tensor conv_in_w, conv_in_b;
    int num_mid_res; /* 2-D: 2; spatio-temporal: layers_per_block (diffusers runs at most the first two) */
    svdc_resblock *mid_res;
    svdc_mid_attention mid_attn;
    svdc_vae_up_level up[SVDC_VAE_MAX_LEVELS];
    svdc_tensor norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    svdc_tensor time_conv_out_w, time_conv_out_b; /* (out, out, 3, 1, 1) */
    svdc_resblock *storage; /* one allocation behind every res block */
} svdc_vae_decoder;

/* Declares [post_quant_conv.*] and decoder.* (diffusers names) into p; the config was checked by the caller. `d` must
 * not move afterwards. Release with svdc_vae_decoder_free, also after a failure. */
svdc_status svdc_vae_decoder_declare(svdc_vae_decoder *d, svdc_params *p, const svdc_vae_decoder_config *cfg);
void svdc_vae_decoder_free(svdc_vae_decoder *d); /* frees what declare allocated; the struct is the caller's */

/* z (N, latent_channels, h, w), already divided by scaling_factor, N a multiple of num_frames; each run of num_frames
 * consecutive rows is one video for the temporal parts (the 2-D blocks treat rows alone) ->
 * y (N, out_channels, h*up_factor, w*up_factor). */
svdc_status svdc_vae_decoder_forward(const svdc_ctx *ctx, const svdc_vae_decoder *d, const svdc_tensor *z,
                                     int num_frames, svdc_tensor *y);

/* The spatio-temporal decoder's forward in bounded memory (vae_decoder_stream.c): every video's frames in one window,
 * frame-local layers a few frames at a time, the temporal halves over pixel bands with statistics gathered first. The
 * arguments were checked by svdc_vae_decoder_forward, which calls it for that kind. */
svdc_status svdc_vae_decoder_forward_streamed(const svdc_ctx *ctx, const svdc_vae_decoder *d, const svdc_tensor *z,
                                              int num_frames, svdc_tensor *y);

#endif
