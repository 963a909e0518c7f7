/* vae_decoder_stream.c — the spatio-temporal (SVD) decoder over every frame of a video in one window (no chunk
 * boundaries) in bounded memory. Only the temporal halves of the res blocks and time_conv_out mix frames, so:
 *   - the frame-local layers between two temporal halves (conv_in, attention, upsamplers, the spatial halves,
 *     conv_norm_out + conv_out) run a few frames at a time (one at the largest level);
 *   - the input of each temporal half (the "resident", (F, C, H, W)) is the only whole-video tensor; its group norm
 *     statistics are gathered frame by frame as it is written (group_norm_moments, combined in double), then the
 *     temporal half (pointwise in space) runs over bands of pixels of all frames: pass A finds the statistics of
 *     conv1's output, pass B normalises with them and writes the block's output over the resident, band by band;
 *   - every resident lives in one buffer, ending at its end: a frame-local segment reads frame t of the old
 *     resident and writes frame t of the new one, front to back when the new frame is not smaller, back to front
 *     when it is, so a frame is never written over one still to be read;
 *   - conv1's output (the second statistics' tensor) is kept whole beside the resident when the buffer has room
 *     (and the buffer doubles for that while it stays under STORE_BUDGET), else recomputed in pass B.
 * The numbers for the SVD decoder are in docs/performance.md ("Exact decode"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend.h"
#include "vae_decoder.h"

/* The buffer doubles (conv1's outputs kept, nothing recomputed) while it stays under this many bytes; the
 * environment variable SVDC_VAE_DECODE_KEEP_BYTES overrides it (0: the least memory). */
#define STORE_BUDGET ((int64_t)6 << 30)
#define STORE_BUDGET_ENV "SVDC_VAE_DECODE_KEEP_BYTES"
/* Group norms of more groups than this are refused by svdc_vae_decoder_forward (the statistics live on the stack). */
#define MAX_GROUPS SVDC_VAE_STREAM_MAX_GROUPS

/* Moments of one group norm's groups over the chunks seen so far (Chan et al.'s pairwise combination). */
typedef struct group_acc {
    int groups;
    double count; /* values per group so far */
    double mean[MAX_GROUPS], m2[MAX_GROUPS];
} group_acc;

typedef struct stream {
    const svdc_ctx *ctx;
    const svdc_vae_decoder *d;
    int64_t frames;
    float *buf;       /* the resident buffer */
    int64_t cap;      /* its elements */
    int64_t band_cap; /* elements of one band temporary */
    int64_t c, h, w;  /* the live resident (frames, c, h, w), ending at buf + cap */
} stream;

static float *resident_at(const stream *s, int64_t c, int64_t h, int64_t w) {
    return s->buf + s->cap - s->frames * c * h * w;
}

/* ------------------------------------------------------------------------------------------- statistics */

static void acc_init(group_acc *a, int groups) {
    a->groups = groups;
    a->count = 0.0;
    memset(a->mean, 0, sizeof a->mean);
    memset(a->m2, 0, sizeof a->m2);
}

/* Adds the moments of x (videos = 1: `frames` == x's rows) to `a`. */
static svdc_status acc_add(const svdc_ctx *ctx, group_acc *a, const svdc_tensor *x, int frames) {
    const int G = a->groups;
    const size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor mt;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc3(ctx, &mt, 1, G, 3));
    SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm_moments(ctx, x, G, frames, &mt));
    float host[MAX_GROUPS * 3] = {0}; /* stays zero in a measuring pass, whose copies do nothing */
    SVDC_TRY_RELEASE(ctx, m, ctx->backend->copy_to_host(ctx->device, host, mt.data, (size_t)G * 3 * sizeof(float)));
    svdc_arena_release(ctx->arena, m);
    const double nb = (double)(svdc_tensor_numel(x) / G), n = a->count + nb;
    for (int g = 0; g < G; g++) {
        const double mean_b = (double)host[3 * g] + (double)host[3 * g + 1], delta = mean_b - a->mean[g];
        a->mean[g] += delta * nb / n;
        a->m2[g] += (double)host[3 * g + 2] + delta * delta * a->count * nb / n;
    }
    a->count = n;
    return SVDC_OK;
}

/* (1, G, 3) = (mean_hi, mean_lo, rstd) of `a` with `eps`, in a new arena tensor. */
static svdc_status acc_stats(const svdc_ctx *ctx, const group_acc *a, float eps, svdc_tensor *out) {
    float host[MAX_GROUPS * 3];
    for (int g = 0; g < a->groups; g++) {
        double var = a->count > 0.0 ? a->m2[g] / a->count : 0.0; /* biased, as torch's GroupNorm */
        if (!(var >= 0.0)) var = 0.0;
        const float hi = (float)a->mean[g];
        host[3 * g] = hi;
        host[3 * g + 1] = (float)(a->mean[g] - (double)hi);
        host[3 * g + 2] = (float)(1.0 / sqrt(var + (double)eps));
    }
    SVDC_TRY(blk_alloc3(ctx, out, 1, a->groups, 3));
    return ctx->backend->copy_to_device(ctx->device, out->data, host, (size_t)a->groups * 3 * sizeof(float));
}

/* --------------------------------------------------------------------------------------- frame segments */

typedef enum seg_pre { PRE_NONE, PRE_CONV_IN, PRE_ATTENTION, PRE_UPSAMPLE } seg_pre;

/* Frames a frame-local step takes at once: as many as keep its temporaries (about `per_frame` elements each) within
 * the one-frame temporaries of the largest level (4 of its frames), so small levels run as batched as before. */
static int64_t frames_per_step(const stream *s, int64_t per_frame) {
    int64_t k = 4 * s->band_cap / (per_frame > 0 ? per_frame : 1);
    return k < 1 ? 1 : k > s->frames ? s->frames : k;
}

/* One frame-local segment: per step of frames, `pre` (conv_in on z's frames, the mid attention, or upsampler `up`)
 * then the spatial half of `res`, into the new resident; the new frames' moments go to `acc`. z: this video's
 * latents. */
static svdc_status run_segment(stream *s, seg_pre pre, const svdc_upsample2d *up, const svdc_tensor *z,
                               const svdc_resblock *res, group_acc *acc) {
    const svdc_ctx *ctx = s->ctx;
    const svdc_vae_decoder *d = s->d;
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const int64_t F = s->frames;
    int64_t c = s->c, h = s->h, w = s->w;
    if (pre == PRE_CONV_IN) {
        c = d->cfg.block_out_channels[d->cfg.num_levels - 1];
        h = z->shape[2];
        w = z->shape[3];
    }
    const int64_t f2 = pre == PRE_UPSAMPLE ? 2 : 1, co = res->spatial.out_channels, ho = h * f2, wo = w * f2;
    const int64_t old_frame = s->c * s->h * s->w, new_frame = co * ho * wo;
    float *old_base = pre == PRE_CONV_IN ? NULL : resident_at(s, s->c, s->h, s->w);
    float *new_base = resident_at(s, co, ho, wo);
    /* Both residents end at the buffer's end: frame t of a larger new resident only overlaps old frames before t
     * (already read), so it goes front to back; a smaller one only overlaps old frames after t: back to front. */
    const int backward = pre != PRE_CONV_IN && new_frame < old_frame;
    const int64_t k = frames_per_step(s, 4 * (c > co ? c : co) * ho * wo);
    for (int64_t i = 0; i < F; i += k) {
        const int64_t rows = F - i < k ? F - i : k, t0 = backward ? F - i - rows : i;
        const size_t m = svdc_arena_mark(ctx->arena);
        svdc_tensor x, out;
        int consumable = 1;
        if (pre == PRE_CONV_IN) {
            svdc_tensor zt = blk_rows(z, t0, rows);
            SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &x, rows, c, h, w));
            SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &zt, &d->conv_in_w, &d->conv_in_b, &same3, &x));
        } else {
            /* frames t0 .. t0+rows of the old resident: (rows, c, h, w) */
            svdc_tensor xt = blk_view4(ctx, old_base + t0 * old_frame, rows, s->c, s->h, s->w);
            if (pre == PRE_ATTENTION) {
                SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &x, rows, c, h, w));
                SVDC_TRY_RELEASE(ctx, m, svdc_mid_attention_forward(ctx, &d->mid_attn, &xt, &x));
            } else if (pre == PRE_UPSAMPLE) {
                SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &x, rows, c, ho, wo));
                SVDC_TRY_RELEASE(ctx, m, svdc_upsample2d_forward(ctx, up, &xt, &x));
            } else {
                x = xt; /* the resident's frames: read, not consumed */
                consumable = 0;
            }
        }
        SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &out, rows, co, ho, wo));
        if (consumable) SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward_consuming(ctx, &res->spatial, &x, &out));
        else SVDC_TRY_RELEASE(ctx, m, svdc_resnet2d_forward(ctx, &res->spatial, &x, NULL, &out));
        SVDC_TRY_RELEASE(ctx, m, acc_add(ctx, acc, &out, (int)rows));
        svdc_tensor slot = blk_view4(ctx, new_base + t0 * new_frame, rows, co, ho, wo);
        SVDC_TRY_RELEASE(ctx, m, svdc_op_copy(ctx, &out, &slot));
        svdc_arena_release(ctx->arena, m);
    }
    s->c = co;
    s->h = ho;
    s->w = wo;
    return SVDC_OK;
}

/* ------------------------------------------------------------------------------------------ temporal half */

/* Pixels [p0, p0 + n) of every (frame, channel) plane of the (rows, P) matrix at `base` <-> the (rows, n) band
 * `band`, one contiguous run per plane. */
static svdc_status band_copy(const svdc_ctx *ctx, float *base, int64_t rows, int64_t P, int64_t p0, int64_t n,
                             float *band, int to_band) {
    for (int64_t r = 0; r < rows; r++) {
        svdc_tensor a = blk_view1(ctx, base + r * P + p0, n), b = blk_view1(ctx, band + r * n, n);
        SVDC_TRY(to_band ? svdc_op_copy(ctx, &a, &b) : svdc_op_copy(ctx, &b, &a));
    }
    return SVDC_OK;
}

/* The temporal half of res block `b` and its blend, over the resident (its moments in acc1), written over it. */
static svdc_status run_temporal(stream *s, const svdc_resblock *b, const group_acc *acc1) {
    const svdc_ctx *ctx = s->ctx;
    const svdc_temporal_resnet *r = &b->temporal;
    const svdc_res_weights *wt = &r->w;
    float sig;
    SVDC_TRY(svdc_read_mix_alpha(ctx, &b->mix_factor, &sig));
    const float alpha = b->direction == SVDC_BLEND_SPATIAL_WEIGHT ? sig : 1.0f - sig; /* weighs the spatial input */
    const int64_t F = s->frames, C = s->c, P = s->h * s->w, whole = F * C * P;
    const int Fi = (int)F;
    float *hs = resident_at(s, C, s->h, s->w);
    /* conv1's output kept at the buffer's start when it fits beside the resident */
    float *kept = 2 * whole <= s->cap ? s->buf : NULL;
    int64_t L = s->band_cap / (F * C);
    if (L < 1) L = 1;
    if (L > P) L = P;
    const int banded = L < P;
    svdc_tensor w1 = blk_temporal_kernel(&wt->conv1_w), w2 = blk_temporal_kernel(&wt->conv2_w);

    const size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor st1, st2, hb_t, gb_t, ab_t;
    SVDC_TRY_RELEASE(ctx, m, acc_stats(ctx, acc1, r->eps, &st1));
    SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &gb_t, F, C, 1, L));
    SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &ab_t, F, C, 1, L));
    if (banded) SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &hb_t, F, C, 1, L));

    /* pass A: a = conv1(silu(gn1(hs))) band by band, its moments (and a itself when kept) */
    group_acc acc2;
    acc_init(&acc2, r->groups);
    for (int64_t p0 = 0; p0 < P; p0 += L) {
        const int64_t n = P - p0 < L ? P - p0 : L;
        /* (F, C, 1, n) views: the band of hs, g, a */
        svdc_tensor hb = blk_view4(ctx, banded ? hb_t.data : hs, F, C, 1, n);
        svdc_tensor gb = blk_view4(ctx, gb_t.data, F, C, 1, n);
        svdc_tensor ab = blk_view4(ctx, kept && !banded ? (void *)kept : ab_t.data, F, C, 1, n);
        if (banded) SVDC_TRY_RELEASE(ctx, m, band_copy(ctx, hs, F * C, P, p0, n, hb.data, 1));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm_apply(ctx, &hb, r->groups, Fi, &st1, &wt->norm1_w, &wt->norm1_b,
                                                          1, &gb));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &gb, Fi, &w1, &wt->conv1_b, &ab));
        SVDC_TRY_RELEASE(ctx, m, acc_add(ctx, &acc2, &ab, Fi));
        if (kept && banded) SVDC_TRY_RELEASE(ctx, m, band_copy(ctx, kept, F * C, P, p0, n, ab.data, 0));
    }
    SVDC_TRY_RELEASE(ctx, m, acc_stats(ctx, &acc2, r->eps, &st2));

    /* pass B: y = blend(hs, hs + conv2(silu(gn2(a)))) over hs, band by band */
    for (int64_t p0 = 0; p0 < P; p0 += L) {
        const int64_t n = P - p0 < L ? P - p0 : L;
        svdc_tensor hb = blk_view4(ctx, banded ? hb_t.data : hs, F, C, 1, n);
        svdc_tensor gb = blk_view4(ctx, gb_t.data, F, C, 1, n);
        svdc_tensor ab = blk_view4(ctx, kept && !banded ? (void *)kept : ab_t.data, F, C, 1, n);
        if (banded) SVDC_TRY_RELEASE(ctx, m, band_copy(ctx, hs, F * C, P, p0, n, hb.data, 1));
        if (kept) {
            if (banded) SVDC_TRY_RELEASE(ctx, m, band_copy(ctx, kept, F * C, P, p0, n, ab.data, 1));
        } else { /* recompute conv1's band: the buffer has no room to keep it */
            SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm_apply(ctx, &hb, r->groups, Fi, &st1, &wt->norm1_w,
                                                              &wt->norm1_b, 1, &gb));
            SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &gb, Fi, &w1, &wt->conv1_b, &ab));
        }
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm_apply(ctx, &ab, r->groups, Fi, &st2, &wt->norm2_w, &wt->norm2_b,
                                                          1, &ab));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv_temporal(ctx, &ab, Fi, &w2, &wt->conv2_b, &gb));
        /* the temporal block's residual, then the blend, in svdc_resblock_forward's operand order */
        SVDC_TRY_RELEASE(ctx, m, svdc_op_add(ctx, &gb, &hb, &gb));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_alpha_blend(ctx, &hb, &gb, alpha, banded ? &gb : &hb));
        if (banded) SVDC_TRY_RELEASE(ctx, m, band_copy(ctx, hs, F * C, P, p0, n, gb.data, 0));
    }
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}

/* A res block whose spatial half follows `pre`. */
static svdc_status run_block(stream *s, seg_pre pre, const svdc_upsample2d *up, const svdc_tensor *z,
                             const svdc_resblock *b) {
    group_acc acc;
    acc_init(&acc, b->temporal.groups);
    SVDC_TRY(run_segment(s, pre, up, z, b, &acc));
    return run_temporal(s, b, &acc);
}

/* -------------------------------------------------------------------------------------------------- plan */

/* The largest resident frame (elements) of a decode of (h, w) latents: each level's res block output, and the
 * output frame (which goes to the buffer's start at the end). */
static int64_t largest_frame(const svdc_vae_decoder *d, int64_t h, int64_t w) {
    const svdc_vae_decoder_config *cfg = &d->cfg;
    const int L = cfg->num_levels;
    int64_t best = (int64_t)cfg->block_out_channels[L - 1] * h * w; /* conv_in and the mid block */
    for (int i = 0; i < L; i++) {
        const int64_t f = (int64_t)cfg->block_out_channels[L - 1 - i] * h * w;
        if (f > best) best = f;
        if (d->up[i].has_upsample) {
            h *= 2;
            w *= 2;
        }
    }
    const int64_t out = (int64_t)cfg->out_channels * h * w;
    return out > best ? out : best;
}

/* One video: z (F, latent, h, w) -> y (F, out, H, W). */
static svdc_status decode_video(stream *s, const svdc_tensor *z, svdc_tensor *y) {
    const svdc_vae_decoder *d = s->d;
    const svdc_vae_decoder_config *cfg = &d->cfg;
    const svdc_ctx *ctx = s->ctx;
    const int L = cfg->num_levels, lpb = cfg->layers_per_block;
    SVDC_TRY(run_block(s, PRE_CONV_IN, NULL, z, &d->mid_res[0]));
    if (d->num_mid_res >= 2) SVDC_TRY(run_block(s, PRE_ATTENTION, NULL, NULL, &d->mid_res[1]));
    for (int i = 0; i < L; i++)
        for (int j = 0; j < lpb + 1; j++) {
            const int up = i > 0 && j == 0 && d->up[i - 1].has_upsample;
            SVDC_TRY(run_block(s, up ? PRE_UPSAMPLE : PRE_NONE, up ? &d->up[i - 1].upsampler : NULL, NULL,
                               &d->up[i].resnets[j]));
        }
    /* silu(conv_norm_out) in place on each frame, conv_out (through a frame temporary, as the resident's frame t may
     * share bytes with output frame t) into the buffer's start, front to back (an output frame is not larger than a
     * resident frame), then time_conv_out over the frames into y */
    const svdc_conv2d_params same3 = {1, 1, 1, 1, 1, 1};
    const int64_t F = s->frames, C = s->c, H = s->h, W = s->w, frame = C * H * W;
    float *res = resident_at(s, C, H, W);
    svdc_tensor o = blk_view4(ctx, s->buf, F, cfg->out_channels, H, W);
    const int64_t k = frames_per_step(s, 4 * (int64_t)cfg->out_channels * H * W);
    for (int64_t t = 0; t < F; t += k) {
        const int64_t rows = F - t < k ? F - t : k;
        const size_t m = svdc_arena_mark(ctx->arena);
        /* frames t .. t+rows: (rows, C, H, W) of the resident, (rows, out, H, W) of the output */
        svdc_tensor xt = blk_view4(ctx, res + t * frame, rows, C, H, W), ot = blk_rows(&o, t, rows), tmp;
        SVDC_TRY_RELEASE(ctx, m, blk_alloc4(ctx, &tmp, rows, cfg->out_channels, H, W));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_group_norm(ctx, &xt, cfg->norm_num_groups, 1, &d->norm_out_w,
                                                    &d->norm_out_b, SVDC_VAE_NORM_EPS, 1, &xt));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_conv2d(ctx, &xt, &d->conv_out_w, &d->conv_out_b, &same3, &tmp));
        SVDC_TRY_RELEASE(ctx, m, svdc_op_copy(ctx, &tmp, &ot));
        svdc_arena_release(ctx->arena, m);
    }
    svdc_tensor tw = blk_temporal_kernel(&d->time_conv_out_w);
    return svdc_op_conv_temporal(ctx, &o, (int)F, &tw, &d->time_conv_out_b, y);
}

svdc_status svdc_vae_decoder_forward_streamed(const svdc_ctx *ctx, const svdc_vae_decoder *d, const svdc_tensor *z,
                                              int num_frames, svdc_tensor *y) {
    const int64_t n = z->shape[0], h = z->shape[2], w = z->shape[3], F = num_frames;
    stream s = {ctx, d, F, NULL, 0, 0, 0, 0, 0};
    s.band_cap = largest_frame(d, h, w);
    s.cap = F * s.band_cap;
    const char *env = getenv(STORE_BUDGET_ENV);
    const int64_t budget = env && *env ? strtoll(env, NULL, 10) : STORE_BUDGET;
    if (2 * s.cap * (int64_t)sizeof(float) <= budget) s.cap *= 2; /* room to keep every conv1 output */
    const size_t m = svdc_arena_mark(ctx->arena);
    svdc_tensor buf;
    SVDC_TRY_RELEASE(ctx, m, blk_alloc(ctx, &buf, 1, &s.cap));
    s.buf = buf.data;
    for (int64_t v = 0; v < n / F; v++) {
        svdc_tensor zv = blk_rows(z, v * F, F), yv = blk_rows(y, v * F, F);
        SVDC_TRY_RELEASE(ctx, m, decode_video(&s, &zv, &yv));
    }
    svdc_arena_release(ctx->arena, m);
    return SVDC_OK;
}
