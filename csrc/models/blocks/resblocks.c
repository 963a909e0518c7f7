/* resblocks.c — ResnetBlock2D, TemporalResnetBlock and the kind-tagged res block (diffusers resnet.py) composed from
 * the svdc_op_* layer. Activations are (B*F, C, H, W) with frames minor; temporaries come from ctx->arena. */
#include "resblocks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../core/backend.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Declarations (diffusers names) */

static svdc_status check_groups(const char *block, int channels, int groups) {
    if (groups <= 0 || channels <= 0 || channels % groups != 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %d channels are not divisible into %d groups", block, channels,
                         groups);
    return SVDC_OK;
}

/* norm1, conv1, [time_emb_proj], norm2, conv2 under `prefix`: 3x3 convs (ResnetBlock2D) or (3, 1, 1) convs over the
 * frames (TemporalResnetBlock, where cin == cout). */
static svdc_status res_weights_declare(svdc_res_weights *w, svdc_params *p, const char *prefix, int cin, int cout,
                                       int temb_channels, int groups, int temporal) {
    SVDC_TRY(check_groups(prefix, cin, groups));
    SVDC_TRY(check_groups(prefix, cout, groups));
    if (temb_channels < 0) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: temb_channels %d < 0", prefix, temb_channels);
    memset(w, 0, sizeof *w);
    SVDC_TRY(blk_norm(p, &w->norm1_w, &w->norm1_b, cin, prefix, "norm1"));
    SVDC_TRY(temporal ? blk_conv_temporal(p, &w->conv1_w, &w->conv1_b, cout, cin, prefix, "conv1")
                      : blk_conv(p, &w->conv1_w, &w->conv1_b, cout, cin, 3, prefix, "conv1"));
    if (temb_channels > 0)
        SVDC_TRY(blk_linear(p, &w->temb_w, &w->temb_b, cout, temb_channels, prefix, "time_emb_proj"));
    SVDC_TRY(blk_norm(p, &w->norm2_w, &w->norm2_b, cout, prefix, "norm2"));
    return temporal ? blk_conv_temporal(p, &w->conv2_w, &w->conv2_b, cout, cout, prefix, "conv2")
                    : blk_conv(p, &w->conv2_w, &w->conv2_b, cout, cout, 3, prefix, "conv2");
}

svdc_status svdc_resnet2d_declare(svdc_resnet2d *r, svdc_params *p, const char *prefix, int in_channels,
                                  int out_channels, int temb_channels, int groups, float eps) {
    memset(r, 0, sizeof *r);
    r->in_channels = in_channels;
    r->out_channels = out_channels;
    r->temb_channels = temb_channels;
    r->groups = groups;
    r->eps = eps;
    SVDC_TRY(res_weights_declare(&r->w, p, prefix, in_channels, out_channels, temb_channels, groups, 0));
    if (in_channels == out_channels) return SVDC_OK;
    return blk_conv(p, &r->shortcut_w, &r->shortcut_b, out_channels, in_channels, 1, prefix, "conv_shortcut");
}

svdc_status svdc_temporal_resnet_declare(svdc_temporal_resnet *r, svdc_params *p, const char *prefix, int channels,
                                         int temb_channels, int groups, float eps) {
    memset(r, 0, sizeof *r);
    r->channels = channels;
    r->temb_channels = temb_channels;
    r->groups = groups;
    r->eps = eps;
    return res_weights_declare(&r->w, p, prefix, channels, channels, temb_channels, groups, 1);
}

svdc_status svdc_resblock_declare(svdc_resblock *b, svdc_params *p, const char *prefix, svdc_block_kind kind,
                                  int in_channels, int out_channels, int temb_channels, int groups, float eps_spatial,
                                  float eps_temporal, svdc_blend_direction direction) {
    memset(b, 0, sizeof *b);
    b->kind = kind;
    if (kind == SVDC_BLOCK_2D)
        return svdc_resnet2d_declare(&b->spatial, p, prefix, in_channels, out_channels, temb_channels, groups,
                                     eps_spatial);
    if (kind != SVDC_BLOCK_SPATIO_TEMPORAL)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown block kind %d", prefix, (int)kind);
    if (direction != SVDC_BLEND_SPATIAL_WEIGHT && direction != SVDC_BLEND_TEMPORAL_WEIGHT)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown blend direction %d", prefix, (int)direction);
    b->direction = direction;
    char sub[512];
    SVDC_TRY(blk_name(sub, sizeof sub, prefix, "spatial_res_block"));
    SVDC_TRY(svdc_resnet2d_declare(&b->spatial, p, sub, in_channels, out_channels, temb_channels, groups, eps_spatial));
    SVDC_TRY(blk_name(sub, sizeof sub, prefix, "temporal_res_block"));
    SVDC_TRY(svdc_temporal_resnet_declare(&b->temporal, p, sub, out_channels, temb_channels, groups, eps_temporal));
    return blk_param1(p, &b->mix_factor, 1, prefix, "time_mixer.mix_factor");
}

/* ---------------------------------------------------------------------------------------------------------------
 * Forward */

static svdc_status check_4d(const char *block, const char *name, const svdc_tensor *t, int64_t channels) {
    if (!t || !t->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s is missing", block, name);
    if (t->ndim != 4 || t->shape[1] != channels) {
        char buf[96];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s has shape %s, expected (N, %lld, H, W)", block, name,
                         svdc_shape_str(t, buf, sizeof buf), (long long)channels);
    }
    return SVDC_OK;
}

static svdc_status check_same_nhw(const char *block, const svdc_tensor *x, const svdc_tensor *y, int64_t cout) {
    if (y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != cout || y->shape[2] != x->shape[2] ||
        y->shape[3] != x->shape[3]) {
        char a[96];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: y has shape %s, expected (%lld, %lld, %lld, %lld)", block,
                         svdc_shape_str(y, a, sizeof a), (long long)x->shape[0], (long long)cout,
                         (long long)x->shape[2], (long long)x->shape[3]);
    }
    if (y->data == x->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: y must not alias x", block);
    return SVDC_OK;
}

static svdc_status check_temb(const char *block, const svdc_tensor *temb, int64_t rows, int temb_channels) {
    if (temb_channels <= 0) return SVDC_OK; /* no projection: temb is ignored, as diffusers does with temb=None */
    if (!temb || !temb->data)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: temb is missing (the block has a %d-wide time embedding)", block,
                         temb_channels);
    if (temb->ndim != 2 || temb->shape[0] != rows || temb->shape[1] != temb_channels) {
        char a[96];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: temb has shape %s, expected (%lld, %d)", block,
                         svdc_shape_str(temb, a, sizeof a), (long long)rows, temb_channels);
    }
    return SVDC_OK;
}

static svdc_status check_frames(const char *block, const svdc_tensor *x, int num_frames) {
    if (num_frames < 1 || x->shape[0] % num_frames != 0)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %lld rows are not a whole number of %d-frame videos", block,
                         (long long)x->shape[0], num_frames);
    return SVDC_OK;
}

/* a += proj(silu(temb)) broadcast over H, W: temb (N, T) -> (N, Cout) added per row and channel. */
static svdc_status add_temb(const svdc_ctx *ctx, const svdc_tensor *temb, const svdc_res_weights *w, svdc_tensor *a) {
    size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor act, proj;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc2(ctx, &act, temb->shape[0], temb->shape[1]));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_silu(ctx, temb, &act));
    SVDC_TRY_RELEASE(ctx, m, blk_alloc2(ctx, &proj, a->shape[0], a->shape[1]));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_linear(ctx, &act, &w->temb_w, &w->temb_b, &proj));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_add_channel_bias(ctx, a, &proj, a));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

svdc_status svdc_resnet2d_forward(const svdc_ctx *ctx, const svdc_resnet2d *r, const svdc_tensor *x,
                                  const svdc_tensor *temb, svdc_tensor *y) {
    static const char *block = "ResnetBlock2D";
    SVDC_TRY(check_4d(block, "x", x, r->in_channels));
    SVDC_TRY(check_same_nhw(block, x, y, r->out_channels));
    SVDC_TRY(check_temb(block, temb, x->shape[0], r->temb_channels));
    const svdc_res_weights *w = &r->w;
    const int64_t n = x->shape[0], h = x->shape[2], wd = x->shape[3];
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const svdc_conv2d_params one1 = {1, 1, 0, 0, 0, 0};
    size_t m = svdc_arena_mark(ctx->arena);

    /* a: the residual branch (N, Cout, H, W), the only full-size temporary. */
    svdc_tensor a;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &a, n, r->out_channels, h, wd));
    /* a = conv1(silu(gn1(x))). gn1 and conv1 act on each row alone, so silu(gn1(x)) (rows, Cin, H, W) goes through
     * y's storage (free until conv2) in chunks of as many rows as fit: all of them when Cin <= Cout. Only a single
     * row wider than y (N = 1 and Cin > Cout) needs its own temporary. */
    int64_t chunk = n * r->out_channels / r->in_channels;
    void *h1_data = y->data;
    if (chunk > n) chunk = n;
    if (chunk < 1) {
        svdc_tensor h1;
        SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &h1, 1, r->in_channels, h, wd));
        h1_data = h1.data;
        chunk = 1;
    }
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        const int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        /* rows r0 .. r0+rows of x and a, as (rows, C, H, W) views */
        svdc_tensor xv = blk_rows(x, r0, rows), av = blk_rows(&a, r0, rows);
        svdc_tensor h1 = xv;
        h1.data = h1_data;
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &xv, r->groups, 1, &w->norm1_w, &w->norm1_b, r->eps, 1, &h1));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &h1, &w->conv1_w, &w->conv1_b, &same3, &av));
    }
    if (r->temb_channels > 0) SVDC_TRY_RELEASE(ctx, m, add_temb(ctx, temb, w, &a));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &a, r->groups, 1, &w->norm2_w, &w->norm2_b, r->eps, 1, &a));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &a, &w->conv2_w, &w->conv2_b, &same3, y));
    if (r->in_channels != r->out_channels) {
        /* a is dead: reuse it for the 1x1 shortcut (N, Cin, H, W) -> (N, Cout, H, W). */
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, x, &r->shortcut_w, &r->shortcut_b, &one1, &a));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, y, &a, y));
    } else {
        SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, y, x, y));
    }
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

svdc_status svdc_temporal_resnet_forward(const svdc_ctx *ctx, const svdc_temporal_resnet *r, const svdc_tensor *x,
                                         int num_frames, const svdc_tensor *temb, svdc_tensor *y) {
    static const char *block = "TemporalResnetBlock";
    SVDC_TRY(check_4d(block, "x", x, r->channels));
    SVDC_TRY(check_same_nhw(block, x, y, r->channels));
    SVDC_TRY(check_frames(block, x, num_frames));
    SVDC_TRY(check_temb(block, temb, x->shape[0], r->temb_channels));
    const svdc_res_weights *w = &r->w;
    /* The 5-D (B, C, F, H, W) tensor of diffusers is our (B*F, C, H, W) with frames minor: the group norm pools
     * `num_frames` consecutive rows, the temporal conv runs over them with zero padding at each video's edge. */
    svdc_tensor w1 = blk_temporal_kernel(&w->conv1_w), w2 = blk_temporal_kernel(&w->conv2_w);
    size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor a;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &a, x->shape[0], r->channels, x->shape[2], x->shape[3]));
    /* y's storage holds silu(gn1(x)) until conv2 overwrites it. */
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, x, r->groups, num_frames, &w->norm1_w, &w->norm1_b, r->eps, 1, y));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, y, num_frames, &w1, &w->conv1_b, &a));
    /* temb (B*F, T) -> (B*F, C): one projected row per frame (diffusers' (B, C, F, 1, 1) after its permute). */
    if (r->temb_channels > 0) SVDC_TRY_RELEASE(ctx, m, add_temb(ctx, temb, w, &a));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &a, r->groups, num_frames, &w->norm2_w, &w->norm2_b, r->eps, 1, &a));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &a, num_frames, &w2, &w->conv2_b, y));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, y, x, y));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

svdc_status svdc_resblock_forward(const svdc_ctx *ctx, const svdc_resblock *b, const svdc_tensor *x, int num_frames,
                                  const svdc_tensor *temb, svdc_tensor *y) {
    if (b->kind == SVDC_BLOCK_2D) return svdc_resnet2d_forward(ctx, &b->spatial, x, temb, y);
    static const char *block = "SpatioTemporalResBlock";
    SVDC_TRY(check_4d(block, "x", x, b->spatial.in_channels));
    SVDC_TRY(check_same_nhw(block, x, y, b->spatial.out_channels));
    SVDC_TRY(check_frames(block, x, num_frames));
    float sig;
    SVDC_TRY(svdc_read_mix_alpha(ctx, &b->mix_factor, &sig));
    /* alpha weighs the spatial branch: UNet σ(m), VAE (switch_spatial_to_temporal_mix) 1 - σ(m). */
    const float alpha = b->direction == SVDC_BLEND_SPATIAL_WEIGHT ? sig : 1.0f - sig;
    size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor hs;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &hs, x->shape[0], b->spatial.out_channels, x->shape[2], x->shape[3]));
    SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &b->spatial, x, temb, &hs));
    SVDC_TRY_RELEASE(ctx, m, svdc_temporal_resnet_forward(ctx, &b->temporal, &hs, num_frames, temb, y));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_alpha_blend(ctx, &hs, y, alpha, y));
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

/* ------------------------------------------------------------------------------------------------- mix factor */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        /* zero or subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

svdc_status svdc_read_mix_alpha(const svdc_ctx *ctx, const svdc_tensor *mix_factor, float *sigmoid_out) {
    if (!mix_factor || !mix_factor->data || svdc_tensor_numel(mix_factor) != 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "mix_factor: expected a 1-element weight");
    unsigned char raw[4] = {0, 0, 0, 0};
    size_t bytes = svdc_dtype_size(mix_factor->dtype);
    if (mix_factor->device == SVDC_DEVICE_CPU) {
        memcpy(raw, mix_factor->data, bytes);
    } else {
        SVDC_TRY(ctx->backend->copy_to_host(mix_factor->device, raw, mix_factor->data, bytes));
    }
    float m;
    if (mix_factor->dtype == SVDC_DTYPE_F32) {
        memcpy(&m, raw, sizeof m);
    } else if (mix_factor->dtype == SVDC_DTYPE_F16) {
        uint16_t h;
        memcpy(&h, raw, sizeof h);
        m = half_to_float(h);
    } else { /* bf16: the high half of a float32 */
        uint16_t h;
        memcpy(&h, raw, sizeof h);
        uint32_t bits = (uint32_t)h << 16;
        memcpy(&m, &bits, sizeof m);
    }
    if (!isfinite(m)) return svdc_fail(SVDC_ERR_VALUE, "mix_factor: the weight is not finite (%g)", (double)m);
    /* torch.sigmoid in float32 */
    *sigmoid_out = 1.0f / (1.0f + expf(-m));
    return SVDC_OK;
}
