/* vae.c — svdc_vae: checks the config, and declares the encoder and the decoder of its kind into one weight table. */
#include "vae.h"

#include <stdlib.h>
#include <string.h>

static svdc_status check_config(const svdc_vae_config *c) {
    if (c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "vae config: in_channels %d, out_channels %d, latent_channels %d must be >= 1",
                         c->in_channels, c->out_channels, c->latent_channels);
    if (c->num_levels < 1 || c->num_levels > SVDC_VAE_MAX_LEVELS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "vae config: block_out_channels has %d entries, expected 1..%d",
                         c->num_levels, SVDC_VAE_MAX_LEVELS);
    if (c->layers_per_block < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "vae config: layers_per_block %d, expected >= 1", c->layers_per_block);
    if (c->decoder_kind != SVDC_BLOCK_2D && c->decoder_kind != SVDC_BLOCK_SPATIO_TEMPORAL)
        return svdc_fail(SVDC_ERR_ARGUMENT, "vae config: unknown decoder kind %d", (int)c->decoder_kind);
    if (c->norm_num_groups < 1 || c->norm_num_groups > SVDC_VAE_STREAM_MAX_GROUPS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "vae config: norm_num_groups %d, expected 1..%d", c->norm_num_groups,
                         SVDC_VAE_STREAM_MAX_GROUPS);
    for (int i = 0; i < c->num_levels; i++) {
        int ch = c->block_out_channels[i];
        if (ch < 1 || ch % c->norm_num_groups != 0)
            return svdc_fail(SVDC_ERR_ARGUMENT,
                             "vae config: block_out_channels[%d] = %d is not a positive multiple of the %d norm groups",
                             i, ch, c->norm_num_groups);
    }
    return SVDC_OK;
}

/* The weight table in diffusers' order: encoder, quant_conv, [post_quant_conv], decoder. */
static svdc_status declare(svdc_vae *v) {
    const svdc_vae_config *c = &v->cfg;
    svdc_vae_encoder_config enc = {
        .in_channels = c->in_channels, .latent_channels = c->latent_channels, .num_levels = c->num_levels,
        .layers_per_block = c->layers_per_block, .norm_num_groups = c->norm_num_groups};
    svdc_vae_decoder_config dec = {
        .kind = c->decoder_kind, .out_channels = c->out_channels, .latent_channels = c->latent_channels,
        .num_levels = c->num_levels, .layers_per_block = c->layers_per_block, .norm_num_groups = c->norm_num_groups,
        .post_quant_conv = c->use_post_quant_conv != 0,
        .time_conv_out = c->decoder_kind == SVDC_BLOCK_SPATIO_TEMPORAL}; /* AutoencoderKLTemporalDecoder always has it */
    memcpy(enc.block_out_channels, c->block_out_channels, sizeof enc.block_out_channels);
    memcpy(dec.block_out_channels, c->block_out_channels, sizeof dec.block_out_channels);
    SVDC_TRY(svdc_vae_encoder_declare(&v->encoder, &v->params, &enc));
    return svdc_vae_decoder_declare(&v->decoder, &v->params, &dec);
}

svdc_status svdc_vae_init(svdc_vae **out, const svdc_vae_config *cfg, const svdc_backend *backend, int device) {
    *out = NULL;
    SVDC_TRY(check_config(cfg));
    svdc_vae *v = calloc(1, sizeof *v);
    if (!v) return svdc_fail(SVDC_ERR_MEMORY, "vae: out of host memory");
    v->cfg = *cfg;
    v->down_factor = 1 << (cfg->num_levels - 1);
    svdc_params_init(&v->params, backend, device, SVDC_DTYPE_F32);
    svdc_status s = declare(v);
    if (!s) s = svdc_params_allocate(&v->params);
    if (s) {
        svdc_vae_free(v);
        return s;
    }
    *out = v;
    return SVDC_OK;
}

void svdc_vae_free(svdc_vae *v) {
    if (!v) return;
    svdc_params_free(&v->params);
    svdc_vae_encoder_free(&v->encoder);
    svdc_vae_decoder_free(&v->decoder);
    free(v);
}

svdc_status svdc_vae_encode(const svdc_ctx *ctx, const svdc_vae *v, const svdc_tensor *x, svdc_tensor *mean) {
    return svdc_vae_encoder_forward(ctx, &v->encoder, x, mean);
}

svdc_status svdc_vae_decode(const svdc_ctx *ctx, const svdc_vae *v, const svdc_tensor *z, int num_frames,
                            svdc_tensor *y) {
    return svdc_vae_decoder_forward(ctx, &v->decoder, z, num_frames, y);
}
