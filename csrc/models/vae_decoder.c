/* vae_decoder.c — the kind-generic VAE decoder (diffusers autoencoders/vae.py Decoder, autoencoder_kl_temporal_decoder.py
 * TemporalDecoder): [post_quant_conv], conv_in, mid block (res, attention, res), up blocks, norm, conv_out,
 * [time_conv_out]. The 2-D kind's activations alternate between two planned arena slabs (vae_common.h); block
 * temporaries are taken above them and released when the block returns. The spatio-temporal kind streams
 * (vae_decoder_stream.c). */
#include "vae_decoder.h"

#include <stdio.h>
#include <stdlib.h>

#define EPS SVDC_VAE_NORM_EPS
#define EPS_TEMPORAL 1e-5f /* the temporal halves of the spatio-temporal res blocks (diffusers TemporalResnetBlock) */

/* Res block j of the decoder, of the config's kind: no time embedding; the spatio-temporal blend is the VAE's
 * switch_spatial_to_temporal_mix direction. */
static svdc_status res_declare(const svdc_vae_decoder_config *cfg, svdc_resblock *r, svdc_params *p,
                               const char *prefix, int cin, int cout) {
    return svdc_resblock_declare(r, p, prefix, cfg->kind, cin, cout, 0, cfg->norm_num_groups, EPS, EPS_TEMPORAL,
                                 SVDC_BLEND_TEMPORAL_WEIGHT);
}

svdc_status svdc_vae_decoder_declare(svdc_vae_decoder *d, svdc_params *p, const svdc_vae_decoder_config *cfg) {
    d->cfg = *cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block, lat = cfg->latent_channels;
    const int *ch = cfg->block_out_channels, last = ch[L - 1];
    d->up_factor = 1 << (L - 1);
    d->num_mid_res = cfg->kind == SVDC_BLOCK_2D ? 2 : lpb;
    /* The block structs exist before any weight is declared: p keeps pointers to their slots. */
    d->storage = calloc((size_t)d->num_mid_res + (size_t)L * (lpb + 1), sizeof *d->storage);
    if (!d->storage) return svdc_fail(SVDC_ERR_MEMORY, "vae decoder: out of host memory");
    d->mid_res = d->storage;
    char name[256];

    if (cfg->post_quant_conv) SVDC_TRY(blk_conv(p, &d->post_quant_w, &d->post_quant_b, lat, lat, 1, "", "post_quant_conv"));
    SVDC_TRY(blk_conv(p, &d->conv_in_w, &d->conv_in_b, last, lat, 3, "decoder", "conv_in"));
    for (int j = 0; j < d->num_mid_res; j++) {
        SVDC_TRY(blk_name(name, sizeof name, "decoder", "mid_block.resnets.%d", j));
        SVDC_TRY(res_declare(cfg, &d->mid_res[j], p, name, last, last));
    }
    SVDC_TRY(svdc_mid_attention_declare(&d->mid_attn, p, "decoder.mid_block.attentions.0", last, cfg->norm_num_groups));
    int prev = last;
    for (int i = 0; i < L; i++) {
        const int c = ch[L - 1 - i];
        svdc_vae_up_level *u = &d->up[i];
        u->resnets = d->storage + d->num_mid_res + (size_t)i * (lpb + 1);
        for (int j = 0; j < lpb + 1; j++) {
            SVDC_TRY(blk_name(name, sizeof name, "decoder", "up_blocks.%d.resnets.%d", i, j));
            SVDC_TRY(res_declare(cfg, &u->resnets[j], p, name, j == 0 ? prev : c, c));
        }
        u->has_upsample = i < L - 1;
        if (u->has_upsample) {
            SVDC_TRY(blk_name(name, sizeof name, "decoder", "up_blocks.%d.upsamplers.0", i));
            SVDC_TRY(svdc_upsample2d_declare(&u->upsampler, p, name, c));
        }
        prev = c;
    }
    SVDC_TRY(blk_norm(p, &d->norm_out_w, &d->norm_out_b, ch[0], "decoder", "conv_norm_out"));
    SVDC_TRY(blk_conv(p, &d->conv_out_w, &d->conv_out_b, cfg->out_channels, ch[0], 3, "decoder", "conv_out"));
    if (!cfg->time_conv_out) return SVDC_OK;
    return blk_conv_temporal(p, &d->time_conv_out_w, &d->time_conv_out_b, cfg->out_channels, cfg->out_channels,
                             "decoder", "time_conv_out");
}

void svdc_vae_decoder_free(svdc_vae_decoder *d) {
    free(d->storage);
    d->storage = d->mid_res = NULL;
}

/* The slab sizes of a decode of n latents (h, w): the same activation sequence as the forward. */
static void plan(const svdc_vae_decoder *d, int64_t n, int64_t h, int64_t w, svdc_vae_slabs *s) {
    const svdc_vae_decoder_config *cfg = &d->cfg;
    const int L = cfg->num_levels, *ch = cfg->block_out_channels;
    int64_t hh = h, ww = w, c = ch[L - 1];
    svdc_vae_slabs_plan_first(s, n * c * hh * ww); /* conv_in */
    svdc_vae_slabs_plan_step(s, n * c * hh * ww);  /* mid resnets[0] */
    if (d->num_mid_res >= 2) {
        svdc_vae_slabs_plan_step(s, n * c * hh * ww); /* attention */
        svdc_vae_slabs_plan_step(s, n * c * hh * ww); /* resnets[1] */
    }
    for (int i = 0; i < L; i++) {
        c = ch[L - 1 - i];
        for (int j = 0; j < cfg->layers_per_block + 1; j++) svdc_vae_slabs_plan_step(s, n * c * hh * ww);
        if (d->up[i].has_upsample) {
            hh *= 2;
            ww *= 2;
            svdc_vae_slabs_plan_step(s, n * c * hh * ww); /* upsample + conv */
        }
    }
    svdc_vae_slabs_plan_step(s, n * cfg->out_channels * hh * ww); /* conv_out */
}

svdc_status svdc_vae_decoder_forward(const svdc_ctx *ctx, const svdc_vae_decoder *d, const svdc_tensor *z,
                                     int num_frames, svdc_tensor *y) {
    const svdc_vae_decoder_config *cfg = &d->cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block;
    const int *ch = cfg->block_out_channels;
    SVDC_TRY(svdc_vae_check_input("decode", z, cfg->latent_channels, 1));
    const int64_t n = z->shape[0], h = z->shape[2], w = z->shape[3];
    if (num_frames < 1 || n % num_frames != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "vae decode: %lld latent rows are not a whole number of videos of "
                                         "num_frames = %d", (long long)n, num_frames);
    SVDC_TRY(svdc_vae_check_output("decode", y, z, cfg->out_channels, h * d->up_factor, w * d->up_factor));
    SVDC_TRY(svdc_op_check_finite(ctx, z, "vae decode input"));
    /* The temporal decoder (time_conv_out, no post_quant_conv) streams: its memory is bounded by a few frames. */
    if (cfg->kind == SVDC_BLOCK_SPATIO_TEMPORAL && cfg->time_conv_out && !cfg->post_quant_conv)
        return svdc_vae_decoder_forward_streamed(ctx, d, z, num_frames, y);

    const size_t m = svdc_arena_mark(ctx->arena);
    svdc_vae_slabs s;
    plan(d, n, h, w, &s);
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_alloc(ctx, &s));
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const int F = num_frames;

    int64_t c = ch[L - 1], hh = h, ww = w;
    svdc_tensor cur, nxt, zq = *z;
    if (cfg->post_quant_conv) { /* (N, L, h, w) -> (N, L, h, w), 1x1, above the slabs */
        const svdc_conv2d_params one1 = {1, 1, 0, 0, 0, 0};
        SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &zq, n, cfg->latent_channels, h, w));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, z, &d->post_quant_w, &d->post_quant_b, &one1, &zq));
    }
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_view(ctx, &s, 0, n, c, hh, ww, &cur));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &zq, &d->conv_in_w, &d->conv_in_b, &same3, &cur));
    /* mid: diffusers runs resnets[0], then (attention, resnets[1]) once; further resnets are declared but unused. */
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &d->mid_res[0], &cur, F, NULL, &nxt));
    svdc_vae_slabs_advance(&s, &cur, &nxt);
    if (d->num_mid_res >= 2) {
        SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
        SVDC_TRY_RELEASE(ctx, m, svdc_mid_attention_forward(ctx, &d->mid_attn, &cur, &nxt));
        svdc_vae_slabs_advance(&s, &cur, &nxt);
        SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
        SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &d->mid_res[1], &cur, F, NULL, &nxt));
        svdc_vae_slabs_advance(&s, &cur, &nxt);
    }
    for (int i = 0; i < L; i++) {
        const svdc_vae_up_level *u = &d->up[i];
        c = ch[L - 1 - i];
        for (int j = 0; j < lpb + 1; j++) {
            SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, hh, ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &u->resnets[j], &cur, F, NULL, &nxt));
            svdc_vae_slabs_advance(&s, &cur, &nxt);
        }
        if (u->has_upsample) {
            /* nearest x2 then conv 3x3: (N, c, hh, ww) -> (N, c, 2hh, 2ww) */
            SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, c, 2 * hh, 2 * ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_upsample2d_forward(ctx, &u->upsampler, &cur, &nxt));
            svdc_vae_slabs_advance(&s, &cur, &nxt);
            hh *= 2;
            ww *= 2;
        }
    }
    /* silu(conv_norm_out) in place, conv_out (N, out, H, W) */
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &cur, cfg->norm_num_groups, 1, &d->norm_out_w, &d->norm_out_b,
                                                EPS, 1, &cur));
    if (!cfg->time_conv_out) {
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &d->conv_out_w, &d->conv_out_b, &same3, y));
        svdc_arena_release(ctx->arena, m);
        return SVDC_OK;
    }
    /* time_conv_out over each video's frames: (b f) c h w is diffusers' b c f h w with frames minor */
    SVDC_TRY_RELEASE(ctx, m, svdc_vae_slabs_next(ctx, &s, n, cfg->out_channels, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &d->conv_out_w, &d->conv_out_b, &same3, &nxt));
    svdc_tensor tw = blk_temporal_kernel(&d->time_conv_out_w);
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &nxt, F, &tw, &d->time_conv_out_b, y));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}
