/* vae.c — AutoencoderKL / AutoencoderKLTemporalDecoder: weight declaration under diffusers names, the encoder to the
 * posterior mean, and the decoder of the config's block kind. Activations live in two arena slabs that alternate layer by layer
 * (each sized, by a planning walk, for the largest activation it receives); block temporaries are taken above them
 * and released when the block returns. */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/tensor.h"
#include "../core/try.h"

void svdc_vae_config_default(svdc_vae_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    cfg->num_levels = 1;
    cfg->block_out_channels[0] = 64;
    cfg->layers_per_block = 1;
    cfg->latent_channels = 4;
    cfg->norm_num_groups = 32;
    cfg->decoder_kind = SVDC_BLOCK_SPATIO_TEMPORAL;
    cfg->use_post_quant_conv = 0;
}

/* ------------------------------------------------------------------------------------------------ declaration */

static svdc_status add_conv(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in, int64_t k,
                            const char *prefix) {
    int64_t sw[4] = {out, in, k, k}, sb[1] = {out};
    SVDC_TRY(svdc_params_add(p, w, 4, sw, "%s.weight", prefix));
    SVDC_TRY(svdc_params_add(p, b, 1, sb, "%s.bias", prefix));
    return SVDC_OK;
}

static svdc_status add_norm(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t c, const char *prefix) {
    int64_t s[1] = {c};
    SVDC_TRY(svdc_params_add(p, w, 1, s, "%s.weight", prefix));
    SVDC_TRY(svdc_params_add(p, b, 1, s, "%s.bias", prefix));
    return SVDC_OK;
}

static svdc_status add_linear(svdc_params *p, svdc_tensor *w, svdc_tensor *b, int64_t out, int64_t in,
                              const char *prefix) {
    int64_t sw[2] = {out, in}, sb[1] = {out};
    SVDC_TRY(svdc_params_add(p, w, 2, sw, "%s.weight", prefix));
    SVDC_TRY(svdc_params_add(p, b, 1, sb, "%s.bias", prefix));
    return SVDC_OK;
}

static svdc_status attention_declare(svdc_vae_attention *a, svdc_params *p, const char *prefix, int channels,
                                     int groups) {
    char name[256];
    a->channels = channels;
    a->groups = groups;
    a->eps = 1e-6f;
    snprintf(name, sizeof name, "%s.group_norm", prefix);
    SVDC_TRY(add_norm(p, &a->norm_w, &a->norm_b, channels, name));
    snprintf(name, sizeof name, "%s.to_q", prefix);
    SVDC_TRY(add_linear(p, &a->q_w, &a->q_b, channels, channels, name));
    snprintf(name, sizeof name, "%s.to_k", prefix);
    SVDC_TRY(add_linear(p, &a->k_w, &a->k_b, channels, channels, name));
    snprintf(name, sizeof name, "%s.to_v", prefix);
    SVDC_TRY(add_linear(p, &a->v_w, &a->v_b, channels, channels, name));
    snprintf(name, sizeof name, "%s.to_out.0", prefix);
    SVDC_TRY(add_linear(p, &a->out_w, &a->out_b, channels, channels, name));
    return SVDC_OK;
}

static svdc_status check_config(const svdc_vae_config *c) {
    if (c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "VAE config: in_channels %d, out_channels %d, latent_channels %d must be >= 1",
                         c->in_channels, c->out_channels, c->latent_channels);
    if (c->num_levels < 1 || c->num_levels > SVDC_VAE_MAX_LEVELS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "VAE config: block_out_channels has %d entries, expected 1..%d",
                         c->num_levels, SVDC_VAE_MAX_LEVELS);
    if (c->layers_per_block < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "VAE config: layers_per_block %d, expected >= 1", c->layers_per_block);
    if (c->decoder_kind != SVDC_BLOCK_2D && c->decoder_kind != SVDC_BLOCK_SPATIO_TEMPORAL)
        return svdc_fail(SVDC_ERR_ARGUMENT, "VAE config: unknown decoder kind %d", (int)c->decoder_kind);
    if (c->norm_num_groups < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "VAE config: norm_num_groups %d, expected >= 1", c->norm_num_groups);
    for (int i = 0; i < c->num_levels; i++) {
        int ch = c->block_out_channels[i];
        if (ch < 1 || ch % c->norm_num_groups != 0)
            return svdc_fail(SVDC_ERR_ARGUMENT,
                             "VAE config: block_out_channels[%d] = %d is not a positive multiple of the %d norm groups",
                             i, ch, c->norm_num_groups);
    }
    return SVDC_OK;
}

svdc_status svdc_vae_create(svdc_vae **out, const svdc_vae_config *cfg, const svdc_backend *backend, int device) {
    *out = NULL;
    SVDC_TRY(check_config(cfg));
    svdc_vae *v = calloc(1, sizeof *v);
    if (!v) return svdc_fail(SVDC_ERR_MEMORY, "VAE: out of host memory");
    v->cfg = *cfg;
    svdc_params_init(&v->params, backend, device, SVDC_DTYPE_F32);
    const int L = cfg->num_levels, lpb = cfg->layers_per_block, G = cfg->norm_num_groups;
    const int *ch = cfg->block_out_channels;
    const int last = ch[L - 1];
    v->down_factor = 1 << (L - 1);
    const svdc_block_kind kind = cfg->decoder_kind;
    v->num_dec_mid_res = kind == SVDC_BLOCK_2D ? 2 : lpb;
    /* Block structs are allocated before any weight is declared: params keeps pointers to their slots. */
    v->resnet_storage = calloc((size_t)L * lpb, sizeof *v->resnet_storage);
    v->dec_storage = calloc((size_t)v->num_dec_mid_res + (size_t)L * (lpb + 1), sizeof *v->dec_storage);
    if (!v->resnet_storage || !v->dec_storage) {
        svdc_vae_free(v);
        return svdc_fail(SVDC_ERR_MEMORY, "VAE: out of host memory");
    }
    v->dec_mid_res = v->dec_storage;
    svdc_params *p = &v->params;
    char name[256];
    svdc_status s = SVDC_OK;
#define DECL(expr)                \
    do {                          \
        if ((s = (expr))) goto fail; \
    } while (0)

    /* Encoder (diffusers Encoder, double_z): conv_in, DownEncoderBlock2D per level, UNetMidBlock2D, norm, conv_out. */
    DECL(add_conv(p, &v->enc_conv_in_w, &v->enc_conv_in_b, ch[0], cfg->in_channels, 3, "encoder.conv_in"));
    int prev = ch[0];
    for (int i = 0; i < L; i++) {
        svdc_vae_down_level *d = &v->down[i];
        d->resnets = v->resnet_storage + (size_t)i * lpb;
        for (int j = 0; j < lpb; j++) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", i, j);
            DECL(svdc_resnet2d_declare(&d->resnets[j], p, name, j == 0 ? prev : ch[i], ch[i], 0, G, 1e-6f));
        }
        d->has_downsample = i < L - 1;
        if (d->has_downsample) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0", i);
            DECL(svdc_downsample2d_declare(&d->downsampler, p, name, ch[i], SVDC_DOWNSAMPLE_PAD_RIGHT_BOTTOM));
        }
        prev = ch[i];
    }
    DECL(svdc_resnet2d_declare(&v->enc_mid_res[0], p, "encoder.mid_block.resnets.0", last, last, 0, G, 1e-6f));
    DECL(attention_declare(&v->enc_mid_attn, p, "encoder.mid_block.attentions.0", last, G));
    DECL(svdc_resnet2d_declare(&v->enc_mid_res[1], p, "encoder.mid_block.resnets.1", last, last, 0, G, 1e-6f));
    DECL(add_norm(p, &v->enc_norm_out_w, &v->enc_norm_out_b, last, "encoder.conv_norm_out"));
    DECL(add_conv(p, &v->enc_conv_out_w, &v->enc_conv_out_b, 2 * cfg->latent_channels, last, 3, "encoder.conv_out"));
    DECL(add_conv(p, &v->quant_w, &v->quant_b, 2 * cfg->latent_channels, 2 * cfg->latent_channels, 1, "quant_conv"));

    /* Decoder: conv_in, mid block (UNetMidBlock2D | MidBlockTemporalDecoder), up blocks (UpDecoderBlock2D |
     * UpBlockTemporalDecoder), norm, conv_out, and for the temporal kind time_conv_out. Res blocks: no temb, spatial
     * eps 1e-6; temporal eps 1e-5 and the reversed blend (spec fact 8). */
    if (cfg->use_post_quant_conv)
        DECL(add_conv(p, &v->post_quant_w, &v->post_quant_b, cfg->latent_channels, cfg->latent_channels, 1,
                      "post_quant_conv"));
    DECL(add_conv(p, &v->dec_conv_in_w, &v->dec_conv_in_b, last, cfg->latent_channels, 3, "decoder.conv_in"));
    for (int j = 0; j < v->num_dec_mid_res; j++) {
        snprintf(name, sizeof name, "decoder.mid_block.resnets.%d", j);
        DECL(svdc_resblock_declare(&v->dec_mid_res[j], p, name, kind, last, last, 0, G, 1e-6f, 1e-5f,
                                   SVDC_BLEND_TEMPORAL_WEIGHT));
    }
    DECL(attention_declare(&v->dec_mid_attn, p, "decoder.mid_block.attentions.0", last, G));
    prev = last;
    for (int i = 0; i < L; i++) {
        const int c = ch[L - 1 - i];
        svdc_vae_up_level *u = &v->up[i];
        u->resnets = v->dec_storage + v->num_dec_mid_res + (size_t)i * (lpb + 1);
        for (int j = 0; j < lpb + 1; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            DECL(svdc_resblock_declare(&u->resnets[j], p, name, kind, j == 0 ? prev : c, c, 0, G, 1e-6f, 1e-5f,
                                       SVDC_BLEND_TEMPORAL_WEIGHT));
        }
        u->has_upsample = i < L - 1;
        if (u->has_upsample) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0", i);
            DECL(svdc_upsample2d_declare(&u->upsampler, p, name, c));
        }
        prev = c;
    }
    DECL(add_norm(p, &v->dec_norm_out_w, &v->dec_norm_out_b, ch[0], "decoder.conv_norm_out"));
    DECL(add_conv(p, &v->dec_conv_out_w, &v->dec_conv_out_b, cfg->out_channels, ch[0], 3, "decoder.conv_out"));
    if (kind == SVDC_BLOCK_SPATIO_TEMPORAL) {
        int64_t sw[5] = {cfg->out_channels, cfg->out_channels, 3, 1, 1}, sb[1] = {cfg->out_channels};
        DECL(svdc_params_add(p, &v->time_conv_out_w, 5, sw, "decoder.time_conv_out.weight"));
        DECL(svdc_params_add(p, &v->time_conv_out_b, 1, sb, "decoder.time_conv_out.bias"));
    }
    DECL(svdc_params_allocate(p));
#undef DECL
    *out = v;
    return SVDC_OK;
fail:
    svdc_vae_free(v);
    return s;
}

void svdc_vae_free(svdc_vae *v) {
    if (!v) return;
    svdc_params_free(&v->params);
    free(v->resnet_storage);
    free(v->dec_storage);
    free(v);
}

/* ------------------------------------------------------------------------------------------------ forward helpers */

/* A (n, c, h, w) view of `data` with like's dtype and device. */
static svdc_tensor view4(void *data, const svdc_tensor *like, int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t s[4] = {n, c, h, w};
    return svdc_tensor_view(data, like->dtype, like->device, 4, s);
}

/* Row n of a (N, ...) tensor as a (1, ...) view. */
static svdc_tensor row_view(const svdc_tensor *t, int64_t n) {
    svdc_tensor r = *t;
    int64_t row = svdc_tensor_numel(t) / t->shape[0];
    r.data = (char *)t->data + (size_t)(n * row) * svdc_dtype_size(t->dtype);
    r.shape[0] = 1;
    return r;
}

/* Two slabs that activations alternate between, each sized for the largest activation it receives (planned by walking
 * the same layer sequence as the forward pass, so e.g. the decoder's last level does not double its widest tensor).
 * `cur` indexes the slab that holds the live activation; the first activation goes to slab 0. */
typedef struct slabs {
    void *buf[2];
    int64_t cap[2]; /* elements */
    int cur;
} slabs;

/* The planning walk: every activation after the first goes to the other slab. */
static void plan_first(slabs *s, int64_t elems) {
    s->cap[0] = elems;
    s->cap[1] = 0;
    s->cur = 0;
}

static void plan_step(slabs *s, int64_t elems) {
    const int i = 1 - s->cur;
    if (elems > s->cap[i]) s->cap[i] = elems;
    s->cur = i;
}

static svdc_status slabs_alloc(const svdc_ctx *ctx, const svdc_tensor *like, slabs *s) {
    for (int i = 0; i < 2; i++) {
        int64_t shape[1] = {s->cap[i] > 0 ? s->cap[i] : 1};
        svdc_tensor t;
        SVDC_TRY(svdc_arena_tensor(ctx->arena, like->dtype, 1, shape, &t));
        s->buf[i] = t.data;
    }
    s->cur = 0;
    return SVDC_OK;
}

/* A (n, c, h, w) view of slab `i`, refusing (as an internal error) what the plan did not provide for. */
static svdc_status slab_view(const slabs *s, int i, const svdc_tensor *like, int64_t n, int64_t c, int64_t h,
                             int64_t w, svdc_tensor *out) {
    if (n * c * h * w > s->cap[i])
        return svdc_fail(SVDC_ERR_INTERNAL, "VAE: activation (%lld, %lld, %lld, %lld) exceeds its planned slab of %lld "
                         "elements", (long long)n, (long long)c, (long long)h, (long long)w, (long long)s->cap[i]);
    *out = view4(s->buf[i], like, n, c, h, w);
    return SVDC_OK;
}

/* The slab the next activation goes to. */
static svdc_status slabs_next(const slabs *s, const svdc_tensor *like, int64_t n, int64_t c, int64_t h, int64_t w,
                              svdc_tensor *out) {
    return slab_view(s, 1 - s->cur, like, n, c, h, w, out);
}

/* y = x + to_out(attn(to_q, to_k, to_v of gn(x))) with one head over the h*w positions, frame by frame (rows are
 * independent; per-row temporaries keep the memory at a few single-frame activations). */
static svdc_status attention_forward(const svdc_ctx *ctx, const svdc_vae_attention *a, const svdc_tensor *x,
                                     svdc_tensor *y) {
    const int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    const float scale = 1.0f / sqrtf((float)c);
    for (int64_t r = 0; r < n; r++) {
        size_t m = svdc_arena_mark(ctx->arena);
        svdc_tensor xr = row_view(x, r), yr = row_view(y, r);
        svdc_tensor t, tt, q, k, v;
        int64_t s_cf[4] = {1, c, hw, 1}, s_tok[3] = {1, hw, c};
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, x->dtype, 4, s_cf, &t));
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, x->dtype, 3, s_tok, &tt));
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, x->dtype, 3, s_tok, &q));
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, x->dtype, 3, s_tok, &k));
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, x->dtype, 3, s_tok, &v));
        t.device = tt.device = q.device = k.device = v.device = ctx->device;
        /* gn over the row: (1, C, h, w) viewed as (1, C, hw, 1) */
        svdc_tensor xr4 = view4(xr.data, x, 1, c, hw, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &xr4, a->groups, 1, &a->norm_w, &a->norm_b, a->eps, 0, &t));
        /* (1, C, hw, 1) -> (1, hw, C, 1): tokens by channels */
        svdc_tensor tt4 = view4(tt.data, x, 1, hw, c, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_permute_0213(ctx, &t, &tt4));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->q_w, &a->q_b, &q));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->k_w, &a->k_b, &k));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &tt, &a->v_w, &a->v_b, &v));
        /* t (dead) takes the attention output (1, hw, C); tt (dead) the projection */
        svdc_tensor o = svdc_tensor_view(t.data, x->dtype, ctx->device, 3, s_tok);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_attention(ctx, &q, &k, &v, 1, scale, 0, &o));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &o, &a->out_w, &a->out_b, &tt));
        /* (1, hw, C, 1) -> (1, C, hw, 1) into y's row, then the residual */
        svdc_tensor yr4 = view4(yr.data, x, 1, c, hw, 1);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_permute_0213(ctx, &tt4, &yr4));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, &yr4, &xr4, &yr4));
        svdc_arena_release(ctx->arena, m);
    }
    return SVDC_OK;
}

static svdc_status check_input(const char *what, const svdc_tensor *x, int64_t channels, int64_t multiple) {
    char buf[96];
    if (!x || !x->data) return svdc_fail(SVDC_ERR_ARGUMENT, "VAE %s: input is missing", what);
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != channels)
        return svdc_fail(SVDC_ERR_SHAPE, "VAE %s: input has shape %s, expected (N, %lld, H, W)", what,
                         svdc_shape_str(x, buf, sizeof buf), (long long)channels);
    if (x->shape[2] < 1 || x->shape[3] < 1 || x->shape[2] % multiple || x->shape[3] % multiple)
        return svdc_fail(SVDC_ERR_SHAPE, "VAE %s: input has shape %s, H and W must be positive multiples of %lld",
                         what, svdc_shape_str(x, buf, sizeof buf), (long long)multiple);
    return SVDC_OK;
}

static svdc_status check_output(const char *what, const svdc_tensor *y, const svdc_tensor *x, int64_t c, int64_t h,
                                int64_t w) {
    if (!y || !y->data || y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != c || y->shape[2] != h ||
        y->shape[3] != w) {
        char buf[96];
        return svdc_fail(SVDC_ERR_SHAPE, "VAE %s: output has shape %s, expected (%lld, %lld, %lld, %lld)", what,
                         y ? svdc_shape_str(y, buf, sizeof buf) : "(none)", (long long)x->shape[0], (long long)c,
                         (long long)h, (long long)w);
    }
    return SVDC_OK;
}

/* --------------------------------------------------------------------------------------------------- encode */

/* Moves to the next activation: `nxt` becomes the live one. */
#define ADVANCE(s, cur, nxt) \
    do {                     \
        (cur) = (nxt);       \
        (s).cur ^= 1;        \
    } while (0)

/* The slab sizes of an encode of n images (H, W): the same activation sequence as svdc_vae_encode. */
static void encode_plan(const svdc_vae *v, int64_t n, int64_t H, int64_t W, slabs *s) {
    const svdc_vae_config *cfg = &v->cfg;
    const int *ch = cfg->block_out_channels;
    int64_t hh = H, ww = W;
    plan_first(s, n * ch[0] * hh * ww); /* conv_in */
    for (int i = 0; i < cfg->num_levels; i++) {
        for (int j = 0; j < cfg->layers_per_block; j++) plan_step(s, n * ch[i] * hh * ww);
        if (v->down[i].has_downsample) {
            hh /= 2;
            ww /= 2;
            plan_step(s, n * ch[i] * hh * ww);
        }
    }
    for (int k = 0; k < 3; k++) plan_step(s, n * ch[cfg->num_levels - 1] * hh * ww); /* res, attention, res */
    plan_step(s, n * 2 * cfg->latent_channels * hh * ww);                           /* conv_out */
}

svdc_status svdc_vae_encode(const svdc_ctx *ctx, const svdc_vae *v, const svdc_tensor *x, svdc_tensor *mean) {
    const svdc_vae_config *cfg = &v->cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block;
    const int *ch = cfg->block_out_channels;
    SVDC_TRY(check_input("encode", x, cfg->in_channels, v->down_factor));
    const int64_t n = x->shape[0], H = x->shape[2], W = x->shape[3];
    const int64_t h = H / v->down_factor, w = W / v->down_factor, lat = cfg->latent_channels;
    SVDC_TRY(check_output("encode", mean, x, lat, h, w));
    SVDC_TRY(svdc_op_check_finite(ctx, x, "VAE encode input"));

    const size_t m = svdc_arena_mark(ctx->arena);
    slabs s;
    encode_plan(v, n, H, W, &s);
    SVDC_TRY_RELEASE(ctx, m, slabs_alloc(ctx, x, &s));
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1}, one1 = {1, 1, 0, 0, 0, 0};

    int64_t c = ch[0], hh = H, ww = W;
    svdc_tensor cur, nxt;
    SVDC_TRY_RELEASE(ctx, m, slab_view(&s, 0, x, n, c, hh, ww, &cur));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, x, &v->enc_conv_in_w, &v->enc_conv_in_b, &same3, &cur));
    for (int i = 0; i < L; i++) {
        const svdc_vae_down_level *d = &v->down[i];
        c = ch[i];
        for (int j = 0; j < lpb; j++) {
            SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, c, hh, ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &d->resnets[j], &cur, NULL, &nxt));
            ADVANCE(s, cur, nxt);
        }
        if (d->has_downsample) {
            /* (N, c, hh, ww) -> (N, c, hh/2, ww/2) */
            SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, c, hh / 2, ww / 2, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_downsample2d_forward(ctx, &d->downsampler, &cur, &nxt));
            ADVANCE(s, cur, nxt);
            hh /= 2;
            ww /= 2;
        }
    }
    /* mid: res, attention, res */
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &v->enc_mid_res[0], &cur, NULL, &nxt));
    ADVANCE(s, cur, nxt);
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, attention_forward(ctx, &v->enc_mid_attn, &cur, &nxt));
    ADVANCE(s, cur, nxt);
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &v->enc_mid_res[1], &cur, NULL, &nxt));
    ADVANCE(s, cur, nxt);
    /* silu(conv_norm_out) in place, conv_out -> moments (N, 2L, h, w) */
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &cur, cfg->norm_num_groups, 1, &v->enc_norm_out_w, &v->enc_norm_out_b,
                                       1e-6f, 1, &cur));
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, x, n, 2 * lat, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &v->enc_conv_out_w, &v->enc_conv_out_b, &same3, &nxt));
    /* quant_conv, mean only: the first L rows of the (2L, 2L, 1, 1) weight are contiguous -> (L, 2L, 1, 1). */
    svdc_tensor qw = v->quant_w, qb = v->quant_b;
    qw.shape[0] = lat;
    qb.shape[0] = lat;
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &nxt, &qw, &qb, &one1, mean));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

/* --------------------------------------------------------------------------------------------------- decode */

/* The slab sizes of a decode of n latents (h, w): the same activation sequence as svdc_vae_decode. */
static void decode_plan(const svdc_vae *v, int64_t n, int64_t h, int64_t w, slabs *s) {
    const svdc_vae_config *cfg = &v->cfg;
    const int L = cfg->num_levels, *ch = cfg->block_out_channels;
    int64_t hh = h, ww = w, c = ch[L - 1];
    plan_first(s, n * c * hh * ww);                     /* conv_in */
    plan_step(s, n * c * hh * ww);                      /* mid resnets[0] */
    if (v->num_dec_mid_res >= 2) {
        plan_step(s, n * c * hh * ww);                  /* attention */
        plan_step(s, n * c * hh * ww);                  /* resnets[1] */
    }
    for (int i = 0; i < L; i++) {
        c = ch[L - 1 - i];
        for (int j = 0; j < cfg->layers_per_block + 1; j++) plan_step(s, n * c * hh * ww);
        if (v->up[i].has_upsample) {
            hh *= 2;
            ww *= 2;
            plan_step(s, n * c * hh * ww);              /* upsample + conv */
        }
    }
    plan_step(s, n * cfg->out_channels * hh * ww);      /* conv_out */
}

svdc_status svdc_vae_decode(const svdc_ctx *ctx, const svdc_vae *v, const svdc_tensor *z, int num_frames,
                            svdc_tensor *y) {
    const svdc_vae_config *cfg = &v->cfg;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block;
    const int *ch = cfg->block_out_channels;
    SVDC_TRY(check_input("decode", z, cfg->latent_channels, 1));
    const int64_t n = z->shape[0], h = z->shape[2], w = z->shape[3];
    const int64_t H = h * v->down_factor, W = w * v->down_factor;
    if (num_frames < 1 || n % num_frames != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "VAE decode: %lld latent rows are not a whole number of videos of "
                                         "num_frames = %d", (long long)n, num_frames);
    SVDC_TRY(check_output("decode", y, z, cfg->out_channels, H, W));
    SVDC_TRY(svdc_op_check_finite(ctx, z, "VAE decode input"));

    const size_t m = svdc_arena_mark(ctx->arena);
    slabs s;
    decode_plan(v, n, h, w, &s);
    SVDC_TRY_RELEASE(ctx, m, slabs_alloc(ctx, z, &s));
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const int F = num_frames;

    int64_t c = ch[L - 1], hh = h, ww = w;
    svdc_tensor cur, nxt, zq = *z;
    if (cfg->use_post_quant_conv) { /* (N, L, h, w) -> (N, L, h, w), 1x1, above the slabs */
        const svdc_conv2d_params one1 = {1, 1, 0, 0, 0, 0};
        int64_t zs[4] = {n, cfg->latent_channels, h, w};
        SVDC_TRY_RELEASE(ctx, m, svdc_arena_tensor(ctx->arena, z->dtype, 4, zs, &zq));
        zq.device = ctx->device;
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, z, &v->post_quant_w, &v->post_quant_b, &one1, &zq));
    }
    SVDC_TRY_RELEASE(ctx, m, slab_view(&s, 0, z, n, c, hh, ww, &cur));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &zq, &v->dec_conv_in_w, &v->dec_conv_in_b, &same3, &cur));
    /* mid: diffusers runs resnets[0], then (attention, resnets[1]) once; further resnets are declared but unused. */
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, c, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &v->dec_mid_res[0], &cur, F, NULL, &nxt));
    ADVANCE(s, cur, nxt);
    if (v->num_dec_mid_res >= 2) {
        SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, c, hh, ww, &nxt));
        SVDC_TRY_RELEASE(ctx, m, attention_forward(ctx, &v->dec_mid_attn, &cur, &nxt));
        ADVANCE(s, cur, nxt);
        SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, c, hh, ww, &nxt));
        SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &v->dec_mid_res[1], &cur, F, NULL, &nxt));
        ADVANCE(s, cur, nxt);
    }
    for (int i = 0; i < L; i++) {
        const svdc_vae_up_level *u = &v->up[i];
        c = ch[L - 1 - i];
        for (int j = 0; j < lpb + 1; j++) {
            SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, c, hh, ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_resblock_forward(ctx, &u->resnets[j], &cur, F, NULL, &nxt));
            ADVANCE(s, cur, nxt);
        }
        if (u->has_upsample) {
            /* nearest x2 then conv 3x3: (N, c, hh, ww) -> (N, c, 2hh, 2ww) */
            SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, c, 2 * hh, 2 * ww, &nxt));
            SVDC_TRY_RELEASE(ctx, m, svdc_upsample2d_forward(ctx, &u->upsampler, &cur, &nxt));
            ADVANCE(s, cur, nxt);
            hh *= 2;
            ww *= 2;
        }
    }
    /* silu(conv_norm_out) in place, conv_out (N, out, H, W), then time_conv_out over each video's frames:
     * (b f) c h w is diffusers' b c f h w with frames minor; the Conv3d (3,1,1) weight viewed as (O, C, 3). */
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &cur, cfg->norm_num_groups, 1, &v->dec_norm_out_w, &v->dec_norm_out_b,
                                       1e-6f, 1, &cur));
    if (cfg->decoder_kind == SVDC_BLOCK_2D) {
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &v->dec_conv_out_w, &v->dec_conv_out_b, &same3, y));
        svdc_arena_release(ctx->arena, m);
        return SVDC_OK;
    }
    SVDC_TRY_RELEASE(ctx, m, slabs_next(&s, z, n, cfg->out_channels, hh, ww, &nxt));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &cur, &v->dec_conv_out_w, &v->dec_conv_out_b, &same3, &nxt));
    svdc_tensor tw = v->time_conv_out_w;
    tw.ndim = 3;
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &nxt, F, &tw, &v->time_conv_out_b, y));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}
