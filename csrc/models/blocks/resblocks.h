/* resblocks.h — the residual blocks of the UNets and VAE decoders (diffusers resnet.py): ResnetBlock2D (optional time
 * embedding), TemporalResnetBlock ((3,1,1) convs, group norm pooled over the frames of each video), and svdc_resblock:
 * one declare/forward with a kind tag, a ResnetBlock2D (2-D kind) or a SpatioTemporalResBlock (both, mixed by the alpha
 * blender).
 *
 * Every *_declare registers the block's weights under `prefix` in diffusers naming; every *_forward takes its input
 * and a preallocated output (no aliasing), draws temporaries from ctx->arena and releases them before returning. */
#ifndef SVDC_BLOCKS_RESBLOCKS_H
#define SVDC_BLOCKS_RESBLOCKS_H

#include "../../core/ops.h"
#include "../../core/params.h"
#include "common.h"

/* The weights both res-block halves have, in diffusers' declaration order: norm1, conv1, time_emb_proj (only with a
 * time embedding), norm2, conv2. The convs are (Cout, Cin, 3, 3) in ResnetBlock2D and (C, C, 3, 1, 1) in
 * TemporalResnetBlock. */
typedef struct svdc_res_weights {
    svdc_tensor norm1_w, norm1_b, conv1_w, conv1_b;
    svdc_tensor temb_w, temb_b; /* time_emb_proj (Cout, temb_channels) */
    svdc_tensor norm2_w, norm2_b, conv2_w, conv2_b;
} svdc_res_weights;

/* diffusers ResnetBlock2D: y = shortcut(x) + conv2(silu(gn2(conv1(silu(gn1(x))) + proj(silu(temb))))). */
typedef struct svdc_resnet2d {
    int in_channels, out_channels, temb_channels, groups;
    float eps;
    svdc_res_weights w;
    svdc_tensor shortcut_w, shortcut_b; /* conv_shortcut 1x1 (Cout, Cin, 1, 1); only if Cin != Cout */
} svdc_resnet2d;

/* temb_channels = 0: no time embedding (VAE). */
svdc_status svdc_resnet2d_declare(svdc_resnet2d *r, svdc_params *p, const char *prefix, int in_channels,
                                  int out_channels, int temb_channels, int groups, float eps);
/* x (N, Cin, H, W), temb (N, temb_channels) or NULL -> y (N, Cout, H, W). */
svdc_status svdc_resnet2d_forward(const svdc_ctx *ctx, const svdc_resnet2d *r, const svdc_tensor *x,
                                  const svdc_tensor *temb, svdc_tensor *y);

/* The same block for an input the caller gives up (no time embedding, Cout < Cin): x's storage is overwritten (it
 * holds intermediates), so a single frame needs x, y and one (N, Cout, H, W) temporary instead of also
 * svdc_resnet2d_forward's (N, Cin, H, W) normalised copy; the streamed VAE decoder's upsampled frames. Other blocks
 * run svdc_resnet2d_forward (x untouched). */
svdc_status svdc_resnet2d_forward_consuming(const svdc_ctx *ctx, const svdc_resnet2d *r, svdc_tensor *x,
                                            svdc_tensor *y);

/* diffusers TemporalResnetBlock (channels in == out): y = x + conv2(silu(gn2(conv1(silu(gn1(x))) + proj(silu(temb)))))
 * with the group norms pooled over frames and the convs temporal (kernel 3 over frames, zero padded). */
typedef struct svdc_temporal_resnet {
    int channels, temb_channels, groups;
    float eps;
    svdc_res_weights w;
} svdc_temporal_resnet;

svdc_status svdc_temporal_resnet_declare(svdc_temporal_resnet *r, svdc_params *p, const char *prefix, int channels,
                                         int temb_channels, int groups, float eps);
/* x (B*F, C, H, W) frames minor, temb (B*F, temb_channels) or NULL -> y (B*F, C, H, W). */
svdc_status svdc_temporal_resnet_forward(const svdc_ctx *ctx, const svdc_temporal_resnet *r, const svdc_tensor *x,
                                         int num_frames, const svdc_tensor *temb, svdc_tensor *y);

/* Which way the alpha blender mixes (spec fact 8). */
typedef enum svdc_blend_direction {
    SVDC_BLEND_SPATIAL_WEIGHT = 0, /* UNet: y = σ(m)·spatial + (1-σ(m))·temporal */
    SVDC_BLEND_TEMPORAL_WEIGHT = 1 /* VAE (switch_spatial_to_temporal_mix): y = (1-σ(m))·spatial + σ(m)·temporal */
} svdc_blend_direction;

/* The res block of a UNet or VAE decoder level, by kind:
 *   SVDC_BLOCK_2D: a ResnetBlock2D with keys {prefix}.norm1.*, .conv1.*, ... (temporal, mix_factor unused);
 *   SVDC_BLOCK_SPATIO_TEMPORAL: diffusers SpatioTemporalResBlock, keys {prefix}.spatial_res_block.*,
 *     .temporal_res_block.*, .time_mixer.mix_factor. */
typedef struct svdc_resblock {
    svdc_block_kind kind;
    svdc_resnet2d spatial;
    svdc_temporal_resnet temporal;
    svdc_tensor mix_factor; /* (1,) logit */
    svdc_blend_direction direction;
} svdc_resblock;

/* eps_temporal and direction matter for the spatio-temporal kind only. */
svdc_status svdc_resblock_declare(svdc_resblock *b, svdc_params *p, const char *prefix, svdc_block_kind kind,
                                  int in_channels, int out_channels, int temb_channels, int groups, float eps_spatial,
                                  float eps_temporal, svdc_blend_direction direction);
/* x (B*F, Cin, H, W), temb (B*F, temb_channels) or NULL -> y (B*F, Cout, H, W); num_frames is used by the
 * spatio-temporal kind only. */
svdc_status svdc_resblock_forward(const svdc_ctx *ctx, const svdc_resblock *b, const svdc_tensor *x, int num_frames,
                                  const svdc_tensor *temb, svdc_tensor *y);

/* σ(mix_factor) read from a (1,) weight on any device. */
svdc_status svdc_read_mix_alpha(const svdc_ctx *ctx, const svdc_tensor *mix_factor, float *sigmoid_out);

#endif
