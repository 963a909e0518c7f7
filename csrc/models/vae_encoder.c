/* vae_encoder.c — diffusers Encoder (conv_in, DownEncoderBlock2D per level, UNetMidBlock2D, norm, conv_out) and
 * quant_conv, to the posterior mean. Activations alternate between two planned arena slabs (vae_common.h); block
 * temporaries are taken above them and released when the block returns. */
#include "vae_encoder.h"

#include <stdio.h>
#include <stdlib.h>

#define EPS 1e-6f /* every group norm of the encoder */

svdc_status svdc_vae_encoder_declare(svdc_vae_encoder *e, svdc_params *p, const svdc_vae_encoder_config *cfg) {
    e->cfg = *cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block, G = cfg->norm_num_groups;
    const int *ch = cfg->block_out_channels, last = ch[L - 1], moments = 2 * cfg->latent_channels;
    e->down_factor = 1 << (L - 1);
    /* The block structs exist before any weight is declared: p keeps pointers to their slots. */
    e->resnet_storage = calloc((size_t)L * lpb, sizeof *e->resnet_storage);
    if (!e->resnet_storage) return svdc_fail(SVDC_ERR_MEMORY, "vae encoder: out of host memory");
    char name[256];

    SVDC_TRY(blk_conv(p, &e->conv_in_w, &e->conv_in_b, ch[0], cfg->in_channels, 3, "encoder", "conv_in"));
    int prev = ch[0];
    for (int i = 0; i < L; i++) {
        svdc_vae_down_level *d = &e->down[i];
        d->resnets = e->resnet_storage + (size_t)i * lpb;
        for (int j = 0; j < lpb; j++) {
            SVDC_TRY(blk_name(name, sizeof name, "encoder", "down_blocks.%d.resnets.%d", i, j));
            SVDC_TRY(svdc_resnet2d_declare(&d->resnets[j], p, name, j == 0 ? prev : ch[i], ch[i], 0, G, EPS));
        }
        d->has_downsample = i < L - 1;
        if (d->has_downsample) {
            SVDC_TRY(blk_name(name, sizeof name, "encoder", "down_blocks.%d.downsamplers.0", i));
            SVDC_TRY(svdc_downsample2d_declare(&d->downsampler, p, name, ch[i], SVDC_DOWNSAMPLE_PAD_RIGHT_BOTTOM));
        }
        prev = ch[i];
    }
    SVDC_TRY(svdc_resnet2d_declare(&e->mid_res[0], p, "encoder.mid_block.resnets.0", last, last, 0, G, EPS));
    SVDC_TRY(svdc_mid_attention_declare(&e->mid_attn, p, "encoder.mid_block.attentions.0", last, G));
    SVDC_TRY(svdc_resnet2d_declare(&e->mid_res[1], p, "encoder.mid_block.resnets.1", last, last, 0, G, EPS));
    SVDC_TRY(blk_norm(p, &e->norm_out_w, &e->norm_out_b, last, "encoder", "conv_norm_out"));
    SVDC_TRY(blk_conv(p, &e->conv_out_w, &e->conv_out_b, moments, last, 3, "encoder", "conv_out"));
    return blk_conv(p, &e->quant_w, &e->quant_b, moments, moments, 1, "", "quant_conv");
}

void svdc_vae_encoder_free(svdc_vae_encoder *e) {
    free(e->resnet_storage);
    e->resnet_storage = NULL;
}

/* The slab sizes of an encode of n images (H, W): the same activation sequence as the forward. */
static void plan(const svdc_vae_encoder *e, int64_t n, int64_t H, int64_t W, svdc_vae_slabs *s) {
    const svdc_vae_encoder_config *cfg = &e->cfg;
    const int *ch = cfg->block_out_channels;
    int64_t hh = H, ww = W;
    svdc_vae_slabs_plan_first(s, n * ch[0] * hh * ww); /* conv_in */
    for (int i = 0; i < cfg->num_levels; i++) {
        for (int j = 0; j < cfg->layers_per_block; j++) svdc_vae_slabs_plan_step(s, n * ch[i] * hh * ww);
        if (e->down[i].has_downsample) {
            hh /= 2;
            ww /= 2;
            svdc_vae_slabs_plan_step(s, n * ch[i] * hh * ww);
        }
    }
    for (int k = 0; k < 3; k++) svdc_vae_slabs_plan_step(s, n * ch[cfg->num_levels - 1] * hh * ww); /* res, attn, res */
    svdc_vae_slabs_plan_step(s, n * 2 * cfg->latent_channels * hh * ww);                           /* conv_out */
}

svdc_status svdc_vae_encoder_forward(const svdc_ctx *ctx, const svdc_vae_encoder *e, const svdc_tensor *x,
                                     svdc_tensor *mean) {
    const svdc_vae_encoder_config *cfg = &e->cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block;
    const int *ch = cfg->block_out_channels;
    SVDC_TRY(svdc_vae_check_input("encode", x, cfg->in_channels, e->down_factor));
    const int64_t n = x->shape[0], H = x->shape[2], W = x->shape[3];
    const int64_t lat = cfg->latent_channels;
    SVDC_TRY(svdc_vae_check_output("encode", mean, x, lat, H / e->down_factor, W / e->down_factor));
    SVDC_TRY(svdc_op_check_finite(ctx, x, "vae encode input"));

    const size_t m = svdc_arena_mark(ctx->arena);
    svdc_vae_slabs s;
    plan(e, n, H, W, &s);
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_alloc(ctx, &s));
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1}, one1 = {1, 1, 0, 0, 0, 0};

    int64_t c = ch[0], hh = H, ww = W;
    svdc_tensor cur, nxt;
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_view(ctx, &s, 0, n, c, hh, ww, &cur));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, x, &e->conv_in_w, &e->conv_in_b, &same3, &cur));
    for (int i = 0; i < L; i++) {
        const svdc_vae_down_level *d = &e->down[i];
        c = ch[i];
        for (int j = 0; j < lpb; j++) {
            SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &d->resnets[j], &cur, NULL, &nxt));
            svdc_vae_slabs_advance(&s, &cur, &nxt);
        }
        if (d->has_downsample) {
            /* (N, c, hh, ww) -> (N, c, hh/2, ww/2) */
            SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh / 2, ww / 2, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_downsample2d_forward(ctx, &d->downsampler, &cur, &nxt));
            svdc_vae_slabs_advance(&s, &cur, &nxt);
            hh /= 2;
            ww /= 2;
        }
    }
    /* mid: res, attention, res */
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &e->mid_res[0], &cur, NULL, &nxt));
    svdc_vae_slabs_advance(&s, &cur, &nxt);
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_mid_attention_forward(ctx, &e->mid_attn, &cur, &nxt));
    svdc_vae_slabs_advance(&s, &cur, &nxt);
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &e->mid_res[1], &cur, NULL, &nxt));
    svdc_vae_slabs_advance(&s, &cur, &nxt);
    /* silu(conv_norm_out) in place, conv_out -> moments (N, 2L, h, w) */
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &cur, cfg->norm_num_groups, 1, &e->norm_out_w, &e->norm_out_b,
                                                EPS, 1, &cur));
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, 2 * lat, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &e->conv_out_w, &e->conv_out_b, &same3, &nxt));
    /* quant_conv, mean only: the first L rows of the (2L, 2L, 1, 1) weight are contiguous -> (L, 2L, 1, 1). */
    svdc_tensor qw = e->quant_w, qb = e->quant_b;
    qw.shape[0] = lat;
    qb.shape[0] = lat;
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &nxt, &qw, &qb, &one1, mean));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}
