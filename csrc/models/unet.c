/* unet.c — the kind-generic UNet (diffusers unet_2d_condition.py / unet_2d_blocks.py for the 2-D kind,
 * unet_spatio_temporal_condition.py / unet_3d_blocks.py for the spatio-temporal kind): embeddings, conv_in, down
 * blocks with the skip stack, mid block, up blocks, output head; the blocks come from blocks/ in the config's kind.
 * Memory: the skip stack is the only long-lived activation; the up path writes its running map into one buffer sized
 * for the largest level, and every block's temporaries are released as soon as the block returns. */
#include "unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks/common.h"

#define GN_GROUPS 32
#define OUT_GN_EPS 1e-5f /* conv_norm_out */

/* ---------------------------------------------------------------------------------------------------------------
 * Configuration and weight table */

static svdc_status check_config(const svdc_unet_config *c) {
    const int n = c->num_levels;
    if (c->kind != SVDC_BLOCK_2D && c->kind != SVDC_BLOCK_SPATIO_TEMPORAL)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: unknown block kind %d", (int)c->kind);
    if (c->kind == SVDC_BLOCK_SPATIO_TEMPORAL && !c->linear_projection)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: the spatio-temporal UNet has linear projections only");
    if (c->kind == SVDC_BLOCK_2D && !(c->norm_eps > 0.0f))
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: norm_eps %g must be positive", (double)c->norm_eps);
    if (n < 1 || n > SVDC_UNET_MAX_LEVELS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: %d levels (block_out_channels), expected 1..%d", n,
                         SVDC_UNET_MAX_LEVELS);
    if (c->in_channels <= 0 || c->out_channels <= 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: in_channels %d / out_channels %d must be positive",
                         c->in_channels, c->out_channels);
    if (c->cross_attention_dim <= 0)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: cross_attention_dim %d must be positive",
                         c->cross_attention_dim);
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        if (ch <= 0 || ch % GN_GROUPS)
            return svdc_fail(SVDC_ERR_ARGUMENT,
                             "unet config: block_out_channels[%d] = %d must be a positive multiple of %d (group norm)",
                             i, ch, GN_GROUPS);
        if (c->layers_per_block[i] < 1)
            return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: layers_per_block[%d] = %d must be >= 1", i,
                             c->layers_per_block[i]);
        if (c->transformer_layers[i] < 1)
            return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: transformer_layers_per_block[%d] = %d must be >= 1", i,
                             c->transformer_layers[i]);
        if (c->num_attention_heads[i] < 1 || ch % c->num_attention_heads[i])
            return svdc_fail(SVDC_ERR_ARGUMENT,
                             "unet config: block_out_channels[%d] = %d is not a multiple of num_attention_heads[%d] "
                             "= %d",
                             i, ch, i, c->num_attention_heads[i]);
    }
    const int min_ids = c->kind == SVDC_BLOCK_SPATIO_TEMPORAL ? 1 : 0;
    if (c->num_ids < min_ids || c->num_ids > SVDC_UNET_MAX_IDS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: %d added ids, expected %d..%d", c->num_ids, min_ids,
                         SVDC_UNET_MAX_IDS);
    int total = 0;
    for (int j = 0; j < c->num_ids; j++) {
        if (c->id_widths[j] < 1)
            return svdc_fail(SVDC_ERR_ARGUMENT, "unet config: added id %d has embedding width %d", j,
                             c->id_widths[j]);
        total += c->id_widths[j];
    }
    if (total != c->projection_input_dim)
        return svdc_fail(SVDC_ERR_ARGUMENT,
                         "unet config: the added-id embedding widths sum to %d, but "
                         "projection_class_embeddings_input_dim is %d",
                         total, c->projection_input_dim);
    return SVDC_OK;
}

/* Res-block group-norm eps. 2-D kind: norm_eps everywhere. Spatio-temporal kind, diffusers: CrossAttnDown builds its
 * res blocks with 1e-6, DownBlock with 1e-5 (get_down_block forwards neither), the mid block 1e-5, the up blocks 1e-6
 * (get_up_block does not forward resnet_eps); sgm: 1e-5 everywhere. */
typedef enum { EPS_DOWN, EPS_MID, EPS_UP } res_site;
static float res_eps(const svdc_unet_config *c, res_site site, int has_attention) {
    if (c->kind == SVDC_BLOCK_2D) return c->norm_eps;
    if (c->sgm_eps || site == EPS_MID) return 1e-5f;
    if (site == EPS_UP) return 1e-6f;
    return has_attention ? 1e-6f : 1e-5f;
}

static svdc_status res_declare(const svdc_unet_config *c, svdc_resblock *r, svdc_params *p, const char *prefix,
                               int cin, int cout, int temb, float eps) {
    return svdc_resblock_declare(r, p, prefix, c->kind, cin, cout, temb, GN_GROUPS, eps, eps,
                                 SVDC_BLEND_SPATIAL_WEIGHT);
}
static svdc_status attn_declare(const svdc_unet_config *c, svdc_transformer *t, svdc_params *p, const char *prefix,
                                int channels, int level) {
    return svdc_transformer_declare(t, p, prefix, c->kind, channels, c->num_attention_heads[level],
                                    c->transformer_layers[level], c->cross_attention_dim, c->linear_projection);
}

/* Output channels of up block i and its input sizes, as diffusers computes them. */
static int up_out_channels(const svdc_unet_config *c, int i) { return c->block_out_channels[c->num_levels - 1 - i]; }
static int up_prev_channels(const svdc_unet_config *c, int i) {
    return i == 0 ? c->block_out_channels[c->num_levels - 1] : up_out_channels(c, i - 1);
}
static int up_skip_in_channels(const svdc_unet_config *c, int i) { /* reversed[min(i + 1, n - 1)] */
    int k = i + 1 < c->num_levels ? i + 1 : c->num_levels - 1;
    return c->block_out_channels[c->num_levels - 1 - k];
}

static svdc_status declare(svdc_unet *u) {
    const svdc_unet_config *c = &u->cfg;
    svdc_params *p = &u->params;
    const int n = c->num_levels, c0 = c->block_out_channels[0], temb = 4 * c0;
    char pre[256];

    SVDC_TRY(blk_conv(p, &u->conv_in_w, &u->conv_in_b, c0, c->in_channels, 3, "", "conv_in"));
    SVDC_TRY(blk_linear(p, &u->time1_w, &u->time1_b, temb, c0, "time_embedding", "linear_1"));
    SVDC_TRY(blk_linear(p, &u->time2_w, &u->time2_b, temb, temb, "time_embedding", "linear_2"));
    if (c->num_ids > 0) {
        SVDC_TRY(blk_linear(p, &u->add1_w, &u->add1_b, temb, c->projection_input_dim, "add_embedding", "linear_1"));
        SVDC_TRY(blk_linear(p, &u->add2_w, &u->add2_b, temb, temb, "add_embedding", "linear_2"));
    }

    for (int i = 0; i < n; i++) {
        svdc_unet_down *d = &u->down[i];
        const int cin = i == 0 ? c0 : c->block_out_channels[i - 1], cout = c->block_out_channels[i];
        const float eps = res_eps(c, EPS_DOWN, c->down_attention[i]);
        d->num_layers = c->layers_per_block[i];
        d->has_attention = c->down_attention[i] != 0;
        d->has_downsample = i < n - 1;
        d->resnets = calloc((size_t)d->num_layers, sizeof *d->resnets);
        if (d->has_attention) d->attentions = calloc((size_t)d->num_layers, sizeof *d->attentions);
        if (!d->resnets || (d->has_attention && !d->attentions))
            return svdc_fail(SVDC_ERR_MEMORY, "unet: out of host memory");
        for (int j = 0; j < d->num_layers; j++) {
            SVDC_TRY(blk_name(pre, sizeof pre, "", "down_blocks.%d.resnets.%d", i, j));
            SVDC_TRY(res_declare(c, &d->resnets[j], p, pre, j == 0 ? cin : cout, cout, temb, eps));
            if (d->has_attention) {
                SVDC_TRY(blk_name(pre, sizeof pre, "", "down_blocks.%d.attentions.%d", i, j));
                SVDC_TRY(attn_declare(c, &d->attentions[j], p, pre, cout, i));
            }
        }
        if (d->has_downsample) {
            SVDC_TRY(blk_name(pre, sizeof pre, "", "down_blocks.%d.downsamplers.0", i));
            SVDC_TRY(svdc_downsample2d_declare(&d->downsampler, p, pre, cout, SVDC_DOWNSAMPLE_PAD_SAME));
        }
    }

    { /* mid: R, T, R at the deepest level */
        const int cm = c->block_out_channels[n - 1];
        const float eps = res_eps(c, EPS_MID, 1);
        SVDC_TRY(res_declare(c, &u->mid_resnets[0], p, "mid_block.resnets.0", cm, cm, temb, eps));
        SVDC_TRY(attn_declare(c, &u->mid_attention, p, "mid_block.attentions.0", cm, n - 1));
        SVDC_TRY(res_declare(c, &u->mid_resnets[1], p, "mid_block.resnets.1", cm, cm, temb, eps));
    }

    for (int i = 0; i < n; i++) {
        svdc_unet_up *up = &u->up[i];
        const int rev = n - 1 - i, cout = up_out_channels(c, i), prev = up_prev_channels(c, i),
                  cskip_last = up_skip_in_channels(c, i);
        const float eps = res_eps(c, EPS_UP, c->up_attention[i]);
        up->num_layers = c->layers_per_block[rev] + 1;
        up->has_attention = c->up_attention[i] != 0;
        up->has_upsample = i < n - 1;
        up->resnets = calloc((size_t)up->num_layers, sizeof *up->resnets);
        if (up->has_attention) up->attentions = calloc((size_t)up->num_layers, sizeof *up->attentions);
        if (!up->resnets || (up->has_attention && !up->attentions))
            return svdc_fail(SVDC_ERR_MEMORY, "unet: out of host memory");
        for (int j = 0; j < up->num_layers; j++) {
            const int res_skip = j == up->num_layers - 1 ? cskip_last : cout;
            const int res_in = j == 0 ? prev : cout;
            SVDC_TRY(blk_name(pre, sizeof pre, "", "up_blocks.%d.resnets.%d", i, j));
            SVDC_TRY(res_declare(c, &up->resnets[j], p, pre, res_in + res_skip, cout, temb, eps));
            if (up->has_attention) {
                SVDC_TRY(blk_name(pre, sizeof pre, "", "up_blocks.%d.attentions.%d", i, j));
                SVDC_TRY(attn_declare(c, &up->attentions[j], p, pre, cout, rev));
            }
        }
        if (up->has_upsample) {
            SVDC_TRY(blk_name(pre, sizeof pre, "", "up_blocks.%d.upsamplers.0", i));
            SVDC_TRY(svdc_upsample2d_declare(&up->upsampler, p, pre, cout));
        }
    }

    SVDC_TRY(blk_norm(p, &u->norm_out_w, &u->norm_out_b, c0, "", "conv_norm_out"));
    return blk_conv(p, &u->conv_out_w, &u->conv_out_b, c->out_channels, c0, 3, "", "conv_out");
}

svdc_status svdc_unet_init(svdc_unet **out, const svdc_unet_config *cfg, const svdc_backend *backend, int device) {
    *out = NULL;
    SVDC_TRY(check_config(cfg));
    svdc_unet *u = calloc(1, sizeof *u);
    if (!u) return svdc_fail(SVDC_ERR_MEMORY, "unet: out of host memory");
    u->cfg = *cfg;
    svdc_params_init(&u->params, backend, device, SVDC_DTYPE_F32);
    svdc_status s = declare(u);
    if (!s) s = svdc_params_allocate(&u->params);
    if (s) {
        svdc_unet_free(u);
        return s;
    }
    *out = u;
    return SVDC_OK;
}

void svdc_unet_free(svdc_unet *u) {
    if (!u) return;
    for (int i = 0; i < SVDC_UNET_MAX_LEVELS; i++) {
        if (u->down[i].attentions)
            for (int j = 0; j < u->down[i].num_layers; j++) svdc_transformer_free(&u->down[i].attentions[j]);
        if (u->up[i].attentions)
            for (int j = 0; j < u->up[i].num_layers; j++) svdc_transformer_free(&u->up[i].attentions[j]);
        free(u->down[i].resnets);
        free(u->down[i].attentions);
        free(u->up[i].resnets);
        free(u->up[i].attentions);
    }
    svdc_transformer_free(&u->mid_attention);
    svdc_params_free(&u->params);
    free(u);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Embeddings */

static svdc_status embedding_body(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *timesteps,
                                  const svdc_tensor *ids, int num_frames, svdc_tensor *emb) {
    const svdc_unet_config *c = &u->cfg;
    const int64_t b = timesteps->shape[0], bf = b * num_frames, nid = c->num_ids;
    const int64_t c0 = c->block_out_channels[0], temb = 4 * c0;
    svdc_tensor te, t1, t2;
    /* time: cos-first sinusoid(t, C0) -> linear_1 -> SiLU -> linear_2, per video */
    SVDC_TRY(blk_alloc2(ctx, &te, b, c0));
    SVDC_TRY(blk_alloc2(ctx, &t1, b, temb));
    SVDC_TRY(blk_alloc2(ctx, &t2, b, temb));
    SVDC_TRY(svdc_op_timestep_embedding(ctx, timesteps, (int)c0, &te));
    SVDC_TRY(svdc_op_linear(ctx, &te, &u->time1_w, &u->time1_b, &t1));
    SVDC_TRY(svdc_op_silu(ctx, &t1, &t1));
    SVDC_TRY(svdc_op_linear(ctx, &t1, &u->time2_w, &u->time2_b, &t2));

    /* emb[b*F + f] = time[b] (+ aug[b*F + f] below; diffusers: (time + aug).repeat_interleave(F) when rows are equal) */
    for (int64_t v = 0; v < b; v++)
        for (int64_t f = 0; f < num_frames; f++) {
            svdc_tensor src = blk_view1(ctx, blk_at(t2.data, v * temb), temb);
            svdc_tensor dst = blk_view1(ctx, blk_at(emb->data, (v * num_frames + f) * temb), temb);
            SVDC_TRY(svdc_op_copy(ctx, &src, &dst));
        }
    if (nid == 0) return SVDC_OK;

    /* added ids, per frame: each column j -> sinusoid(width_j); concatenated in id order -> add_embedding */
    svdc_tensor idsT;
    SVDC_TRY(blk_alloc2(ctx, &idsT, nid, bf));
    svdc_tensor ids4 = blk_view4(ctx, ids->data, 1, bf, nid, 1), idsT4 = blk_view4(ctx, idsT.data, 1, nid, bf, 1);
    SVDC_TRY(svdc_op_permute_0213(ctx, &ids4, &idsT4)); /* (BF, n) -> (n, BF): each id's column becomes contiguous */
    svdc_tensor cat = {0};
    int64_t width = 0;
    for (int64_t j = 0; j < nid; j++) {
        const int64_t wj = c->id_widths[j];
        svdc_tensor col = blk_view1(ctx, blk_at(idsT.data, j * bf), bf), e;
        SVDC_TRY(blk_alloc2(ctx, &e, bf, wj));
        SVDC_TRY(svdc_op_timestep_embedding(ctx, &col, (int)wj, &e));
        if (j == 0) {
            cat = e;
        } else { /* [cat | e] along the feature axis, viewed as channels of (BF, C, 1) */
            svdc_tensor next;
            SVDC_TRY(blk_alloc2(ctx, &next, bf, width + wj));
            svdc_tensor a3 = blk_view3(ctx, cat.data, bf, width, 1), b3 = blk_view3(ctx, e.data, bf, wj, 1);
            svdc_tensor y3 = blk_view3(ctx, next.data, bf, width + wj, 1);
            SVDC_TRY(svdc_op_concat_channels(ctx, &a3, &b3, &y3));
            cat = next;
        }
        width += wj;
    }
    svdc_tensor a1, a2;
    SVDC_TRY(blk_alloc2(ctx, &a1, bf, temb));
    SVDC_TRY(blk_alloc2(ctx, &a2, bf, temb));
    SVDC_TRY(svdc_op_linear(ctx, &cat, &u->add1_w, &u->add1_b, &a1));
    SVDC_TRY(svdc_op_silu(ctx, &a1, &a1));
    SVDC_TRY(svdc_op_linear(ctx, &a1, &u->add2_w, &u->add2_b, &a2));
    return svdc_op_add(ctx, emb, &a2, emb);
}

svdc_status svdc_unet_embedding(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *timesteps,
                                const svdc_tensor *ids, int num_frames, svdc_tensor *emb) {
    const svdc_unet_config *c = &u->cfg;
    char a[96];
    if (!timesteps || timesteps->ndim != 1 || timesteps->shape[0] < 1)
        return svdc_fail(SVDC_ERR_SHAPE, "unet: timesteps has shape %s, expected (B,)",
                         timesteps ? svdc_shape_str(timesteps, a, sizeof a) : "NULL");
    const int64_t b = timesteps->shape[0];
    if (num_frames < 1) return svdc_fail(SVDC_ERR_ARGUMENT, "unet: num_frames %d must be >= 1", num_frames);
    if (c->num_ids > 0 && (!ids || ids->ndim != 2 || ids->shape[0] != b * num_frames || ids->shape[1] != c->num_ids))
        return svdc_fail(SVDC_ERR_SHAPE, "unet: added ids have shape %s, expected (%lld, %d) (B*F rows, one per frame)",
                         ids ? svdc_shape_str(ids, a, sizeof a) : "NULL", (long long)(b * num_frames), c->num_ids);
    if (!emb || emb->ndim != 2 || emb->shape[0] != b * num_frames || emb->shape[1] != 4 * c->block_out_channels[0])
        return svdc_fail(SVDC_ERR_SHAPE, "unet: emb has shape %s, expected (%lld, %d)",
                         emb ? svdc_shape_str(emb, a, sizeof a) : "NULL", (long long)(b * num_frames),
                         4 * c->block_out_channels[0]);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s = embedding_body(ctx, u, timesteps, ids, num_frames, emb);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Forward */

/* Res block, then (if present) the transformer: x -> out, the intermediate released. out must not alias x. */
static svdc_status res_then_attn(const svdc_ctx *ctx, const svdc_resblock *r, const svdc_transformer *t,
                                 const svdc_tensor *x, int num_frames, const svdc_tensor *emb,
                                 const svdc_tensor *context, svdc_tensor *out) {
    if (!t) return svdc_resblock_forward(ctx, r, x, num_frames, emb, out);
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_tensor mid;
    svdc_status s = blk_alloc4(ctx, &mid, out->shape[0], out->shape[1], out->shape[2], out->shape[3]);
    if (!s) s = svdc_resblock_forward(ctx, r, x, num_frames, emb, &mid);
    if (!s) s = svdc_transformer_forward(ctx, t, &mid, num_frames, context, out);
    svdc_arena_release(ctx->arena, mark);
    return s;
}

static svdc_status forward_body(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *sample, int num_frames,
                                const svdc_tensor *timesteps, const svdc_tensor *context, const svdc_tensor *ids,
                                svdc_tensor *y, svdc_tensor *skips) {
    const svdc_unet_config *c = &u->cfg;
    const int n = c->num_levels;
    const int64_t bf = sample->shape[0], c0 = c->block_out_channels[0];
    int64_t hh = sample->shape[2], ww = sample->shape[3];
    int nskip = 0;

    svdc_tensor emb;
    SVDC_TRY(blk_alloc2(ctx, &emb, bf, 4 * c0));
    SVDC_TRY(svdc_unet_embedding(ctx, u, timesteps, ids, num_frames, &emb));

    /* conv_in, pushed */
    svdc_conv2d_params same = {1, 1, 1, 1, 1, 1};
    SVDC_TRY(blk_alloc4(ctx, &skips[nskip], bf, c0, hh, ww));
    SVDC_TRY(svdc_op_conv2d(ctx, sample, &u->conv_in_w, &u->conv_in_b, &same, &skips[nskip]));
    svdc_tensor cur = skips[nskip++];

    /* down path: every res(+attn) output and every downsample output is pushed */
    for (int i = 0; i < n; i++) {
        const svdc_unet_down *d = &u->down[i];
        const int64_t cout = c->block_out_channels[i];
        for (int j = 0; j < d->num_layers; j++) {
            SVDC_TRY(blk_alloc4(ctx, &skips[nskip], bf, cout, hh, ww));
            SVDC_TRY(res_then_attn(ctx, &d->resnets[j], d->has_attention ? &d->attentions[j] : NULL, &cur, num_frames,
                               &emb, context, &skips[nskip]));
            cur = skips[nskip++];
        }
        if (d->has_downsample) { /* k3 s2 p1: ceil(h/2) x ceil(w/2) */
            hh = (hh + 1) / 2;
            ww = (ww + 1) / 2;
            SVDC_TRY(blk_alloc4(ctx, &skips[nskip], bf, cout, hh, ww));
            SVDC_TRY(svdc_downsample2d_forward(ctx, &d->downsampler, &cur, &skips[nskip]));
            cur = skips[nskip++];
        }
    }

    /* the running map of the mid/up path lives in one buffer sized for its largest state */
    int64_t hbuf = (int64_t)c->block_out_channels[n - 1] * hh * ww;
    {
        int k = nskip;
        int64_t h = hh, w = ww;
        for (int i = 0; i < n; i++) {
            const int64_t cout = up_out_channels(c, i);
            if (cout * h * w > hbuf) hbuf = cout * h * w;
            k -= u->up[i].num_layers;
            if (u->up[i].has_upsample && k > 0) {
                h = skips[k - 1].shape[2];
                w = skips[k - 1].shape[3];
                if (cout * h * w > hbuf) hbuf = cout * h * w;
            }
        }
    }
    svdc_tensor hb;
    SVDC_TRY(blk_alloc2(ctx, &hb, bf, hbuf));
    const int64_t cm = c->block_out_channels[n - 1];
    svdc_tensor h = blk_view4(ctx, hb.data, bf, cm, hh, ww);

    { /* mid: R, T, R */
        size_t mark = svdc_arena_mark(ctx->arena);
        svdc_tensor t;
        svdc_status s = blk_alloc4(ctx, &t, bf, cm, hh, ww);
        if (!s) s = res_then_attn(ctx, &u->mid_resnets[0], &u->mid_attention, &cur, num_frames, &emb, context, &t);
        if (!s) s = svdc_resblock_forward(ctx, &u->mid_resnets[1], &t, num_frames, &emb, &h);
        svdc_arena_release(ctx->arena, mark);
        SVDC_TRY(s);
    }

    /* up path: per layer concat [h, skip] (current map first), res(+attn) back into the buffer */
    for (int i = 0; i < n; i++) {
        const svdc_unet_up *up = &u->up[i];
        const int64_t cout = up_out_channels(c, i);
        for (int j = 0; j < up->num_layers; j++) {
            if (nskip <= 0) return svdc_fail(SVDC_ERR_INTERNAL, "unet: skip stack underflow at up block %d", i);
            const svdc_tensor *skip = &skips[--nskip];
            if (skip->shape[2] != hh || skip->shape[3] != ww)
                return svdc_fail(SVDC_ERR_INTERNAL, "unet: skip %d is %lldx%lld, the map is %lldx%lld", nskip,
                                 (long long)skip->shape[2], (long long)skip->shape[3], (long long)hh, (long long)ww);
            size_t mark = svdc_arena_mark(ctx->arena);
            svdc_tensor cat;
            svdc_status s = blk_alloc4(ctx, &cat, bf, h.shape[1] + skip->shape[1], hh, ww);
            if (!s) s = svdc_op_concat_channels(ctx, &h, skip, &cat);
            svdc_tensor hn = blk_view4(ctx, hb.data, bf, cout, hh, ww); /* h was copied into cat: overwrite it */
            if (!s)
                s = res_then_attn(ctx, &up->resnets[j], up->has_attention ? &up->attentions[j] : NULL, &cat,
                                  num_frames, &emb, context, &hn);
            svdc_arena_release(ctx->arena, mark);
            SVDC_TRY(s);
            h = hn;
        }
        if (up->has_upsample) {
            /* target = the spatial size of the next skip (diffusers forwards it when sizes are not powers of 2) */
            if (nskip <= 0) return svdc_fail(SVDC_ERR_INTERNAL, "unet: no skip left for up block %d", i + 1);
            const int64_t th = skips[nskip - 1].shape[2], tw = skips[nskip - 1].shape[3];
            /* Upsample2D reads each row of h into its x2 temporary first, so it may write back into the same buffer;
             * the odd-size crop equals diffusers' nearest interpolation to the skip's size */
            svdc_tensor hin = h;
            h = blk_view4(ctx, hb.data, bf, cout, th, tw);
            SVDC_TRY(svdc_upsample2d_forward(ctx, &up->upsampler, &hin, &h));
            hh = th;
            ww = tw;
        }
    }
    if (nskip != 0) return svdc_fail(SVDC_ERR_INTERNAL, "unet: %d skips left after the up path", nskip);

    /* output head: GroupNorm(32, eps 1e-5) + SiLU, conv_out */
    svdc_tensor g;
    SVDC_TRY(blk_alloc4(ctx, &g, bf, c0, hh, ww));
    SVDC_TRY(svdc_op_group_norm(ctx, &h, GN_GROUPS, 1, &u->norm_out_w, &u->norm_out_b, OUT_GN_EPS, 1, &g));
    return svdc_op_conv2d(ctx, &g, &u->conv_out_w, &u->conv_out_b, &same, y);
}

svdc_status svdc_unet_forward(const svdc_ctx *ctx, const svdc_unet *u, const svdc_tensor *sample, int num_frames,
                              const svdc_tensor *timesteps, const svdc_tensor *context, const svdc_tensor *ids,
                              svdc_tensor *y) {
    const svdc_unet_config *c = &u->cfg;
    char a[96];
    if (!sample || sample->ndim != 4 || sample->shape[1] != c->in_channels || sample->shape[2] < 1 ||
        sample->shape[3] < 1)
        return svdc_fail(SVDC_ERR_SHAPE, "unet: sample has shape %s, expected (B*F, %d, h, w)",
                         sample ? svdc_shape_str(sample, a, sizeof a) : "NULL", c->in_channels);
    if (num_frames < 1 || sample->shape[0] % num_frames)
        return svdc_fail(SVDC_ERR_SHAPE, "unet: %lld sample rows are not a whole number of videos of %d frames",
                         (long long)sample->shape[0], num_frames);
    const int64_t b = sample->shape[0] / num_frames;
    if (!timesteps || timesteps->ndim != 1 || timesteps->shape[0] != b)
        return svdc_fail(SVDC_ERR_SHAPE, "unet: timesteps has shape %s, expected (%lld,)",
                         timesteps ? svdc_shape_str(timesteps, a, sizeof a) : "NULL", (long long)b);
    if (!context || context->ndim != 3 || context->shape[0] != b || context->shape[1] < 1 ||
        context->shape[2] != c->cross_attention_dim)
        return svdc_fail(SVDC_ERR_SHAPE, "unet: context has shape %s, expected (%lld, L, %d)",
                         context ? svdc_shape_str(context, a, sizeof a) : "NULL", (long long)b,
                         c->cross_attention_dim);
    if (!y || y->ndim != 4 || y->shape[0] != sample->shape[0] || y->shape[1] != c->out_channels ||
        y->shape[2] != sample->shape[2] || y->shape[3] != sample->shape[3])
        return svdc_fail(SVDC_ERR_SHAPE, "unet: y has shape %s, expected (%lld, %d, %lld, %lld)",
                         y ? svdc_shape_str(y, a, sizeof a) : "NULL", (long long)sample->shape[0], c->out_channels,
                         (long long)sample->shape[2], (long long)sample->shape[3]);
    int max_skips = 1;
    for (int i = 0; i < c->num_levels; i++) max_skips += c->layers_per_block[i] + 1;
    svdc_tensor *skips = calloc((size_t)max_skips, sizeof *skips);
    if (!skips) return svdc_fail(SVDC_ERR_MEMORY, "unet: out of host memory");
    size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s = forward_body(ctx, u, sample, num_frames, timesteps, context, ids, y, skips);
    svdc_arena_release(ctx->arena, mark);
    free(skips);
    return s;
}
