/* sampler.c — the sampling step of sampler.h, composed from svdc_op_* (axpby, scale, concat_channels, fill, copy,
 * check_finite) so it runs on any backend. No scalar schedule is computed here: the caller passes them per step. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "../core/backend.h"
#include "../core/tensor.h"

struct svdc_sampler {
    svdc_ctx ctx;
    svdc_sampler_config cfg;
    int64_t frame_numel; /* C·h·w */
    int has_prev;        /* prev holds the D of the last LINEAR step */
    float *x;            /* (B, F, C, h, w) */
    float *cond;         /* (B·F, C, h, w): cond latents repeated over frames */
    float *zeros;        /* (B·F, C, h, w) */
    float *scaled;       /* (B·F, C, h, w): c_in·x */
    float *guided;       /* (B·F, C, h, w): the guided model output F̂ */
    float *pred;         /* (B·F, C, h, w): D, then (EULER) the derivative */
    float *prev;         /* (B·F, C, h, w): D_prev (multistep) */
};

static svdc_tensor frames_view(float *data, const svdc_sampler *s, int64_t rows) {
    /* (rows, F, C, h, w) viewed as (rows·F, C, h, w) */
    int64_t shape[4] = {rows * s->cfg.frames, s->cfg.channels, s->cfg.height, s->cfg.width};
    return svdc_tensor_view(data, SVDC_DTYPE_F32, s->ctx.device, 4, shape);
}

static svdc_tensor flat_view(float *data, const svdc_sampler *s, int64_t numel) {
    return svdc_tensor_view(data, SVDC_DTYPE_F32, s->ctx.device, 1, &numel);
}

static int64_t latent_numel(const svdc_sampler *s) { return s->cfg.batch * s->cfg.frames * s->frame_numel; }

static svdc_status check_5d(const svdc_sampler *s, const char *op, const char *name, const svdc_tensor *t,
                            int64_t rows, int64_t channels) {
    if (!t || !t->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: %s is NULL", op, name);
    if (t->dtype != SVDC_DTYPE_F32)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s must be float32, got %s", op, name, svdc_dtype_name(t->dtype));
    if (t->device != s->ctx.device)
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s is on device %d, the sampler on %d", op, name, t->device,
                         s->ctx.device);
    int64_t want[5] = {rows, s->cfg.frames, channels, s->cfg.height, s->cfg.width};
    int ok = t->ndim == 5;
    for (int i = 0; ok && i < 5; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: %s must have shape (%lld, %lld, %lld, %lld, %lld), got %s", op, name,
                         (long long)want[0], (long long)want[1], (long long)want[2], (long long)want[3],
                         (long long)want[4], svdc_shape_str(t, got, sizeof got));
    }
    return SVDC_OK;
}

void svdc_sampler_free(svdc_sampler *s) {
    if (!s) return;
    const svdc_backend *b = s->ctx.backend;
    float *bufs[] = {s->x, s->cond, s->zeros, s->scaled, s->guided, s->pred, s->prev};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) b->free(s->ctx.device, bufs[i]);
    free(s);
}

svdc_status svdc_sampler_init(svdc_sampler **out, const svdc_ctx *ctx, const svdc_sampler_config *cfg) {
    if (!out || !ctx || !ctx->backend || !cfg) return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: NULL argument");
    *out = NULL;
    if (cfg->batch < 1 || cfg->frames < 1 || cfg->channels < 1 || cfg->height < 1 || cfg->width < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT,
                         "sampler_init: latent shape (%lld, %lld, %lld, %lld, %lld) must be all >= 1",
                         (long long)cfg->batch, (long long)cfg->frames, (long long)cfg->channels,
                         (long long)cfg->height, (long long)cfg->width);
    if (cfg->cond_channels != 0 && cfg->cond_channels != cfg->channels)
        return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: cond_channels must be 0 or channels (%lld), got %lld",
                         (long long)cfg->channels, (long long)cfg->cond_channels);

    svdc_sampler *s = calloc(1, sizeof *s);
    if (!s) return svdc_fail(SVDC_ERR_MEMORY, "sampler_init: out of host memory (%zu bytes)", sizeof *s);
    s->ctx = *ctx;
    s->cfg = *cfg;
    s->frame_numel = cfg->channels * cfg->height * cfg->width;

    size_t bytes = sizeof(float) * (size_t)latent_numel(s);
    float **bufs[] = {&s->x, &s->cond, &s->zeros, &s->scaled, &s->guided, &s->pred, &s->prev};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i] = s->ctx.backend->alloc(s->ctx.device, bytes);
        if (!*bufs[i]) {
            svdc_sampler_free(s);
            return svdc_fail(SVDC_ERR_MEMORY, "sampler_init: out of memory allocating %zu bytes on device %d", bytes,
                             ctx->device);
        }
    }
    float *zeroed[] = {s->x, s->cond, s->zeros};
    for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) {
        svdc_tensor t = flat_view(zeroed[i], s, latent_numel(s));
        svdc_status st = svdc_op_fill(&s->ctx, &t, 0.0f);
        if (st) {
            svdc_sampler_free(s);
            return st;
        }
    }
    *out = s;
    return SVDC_OK;
}

svdc_status svdc_sampler_set_latents(svdc_sampler *s, const svdc_tensor *latents, float scale) {
    svdc_status st = check_5d(s, "sampler_set_latents", "latents", latents, s->cfg.batch, s->cfg.channels);
    if (st) return st;
    if (!isfinite(scale)) return svdc_fail(SVDC_ERR_VALUE, "sampler_set_latents: scale %g is not finite", scale);
    if ((st = svdc_op_check_finite(&s->ctx, latents, "sampler latents"))) return st;
    svdc_tensor src = flat_view(latents->data, s, latent_numel(s)), dst = flat_view(s->x, s, latent_numel(s));
    s->has_prev = 0;
    return svdc_op_scale(&s->ctx, &src, scale, &dst);
}

svdc_status svdc_sampler_set_cond(svdc_sampler *s, const svdc_tensor *cond) {
    static const char *op = "sampler_set_cond";
    if (!cond || !cond->data) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: cond is NULL", op);
    int ok = cond->ndim == 4 && cond->dtype == SVDC_DTYPE_F32 && cond->device == s->ctx.device &&
             cond->shape[0] == s->cfg.batch && cond->shape[1] == s->cfg.channels &&
             cond->shape[2] == s->cfg.height && cond->shape[3] == s->cfg.width;
    if (!ok) {
        char got[96];
        return svdc_fail(SVDC_ERR_SHAPE, "%s: cond must be float32 (%lld, %lld, %lld, %lld) on device %d, got %s", op,
                         (long long)s->cfg.batch, (long long)s->cfg.channels, (long long)s->cfg.height,
                         (long long)s->cfg.width, s->ctx.device, svdc_shape_str(cond, got, sizeof got));
    }
    svdc_status st = svdc_op_check_finite(&s->ctx, cond, "sampler cond latents");
    if (st) return st;
    /* (B, C, h, w) -> (B, F, C, h, w): frame f of video b is a copy of cond[b] */
    for (int64_t b = 0; b < s->cfg.batch; b++) {
        svdc_tensor src = flat_view((float *)cond->data + b * s->frame_numel, s, s->frame_numel);
        for (int64_t f = 0; f < s->cfg.frames; f++) {
            svdc_tensor dst = flat_view(s->cond + (b * s->cfg.frames + f) * s->frame_numel, s, s->frame_numel);
            if ((st = svdc_op_copy(&s->ctx, &src, &dst))) return st;
        }
    }
    return SVDC_OK;
}

svdc_status svdc_sampler_get_latents(const svdc_sampler *s, svdc_tensor *out) {
    svdc_status st = check_5d(s, "sampler_get_latents", "out", out, s->cfg.batch, s->cfg.channels);
    if (st) return st;
    svdc_tensor src = flat_view(s->x, s, latent_numel(s)), dst = flat_view(out->data, s, latent_numel(s));
    return svdc_op_copy(&s->ctx, &src, &dst);
}

svdc_status svdc_sampler_model_input(svdc_sampler *s, float c_in, int cfg, svdc_tensor *out) {
    static const char *op = "sampler_model_input";
    const int64_t B = s->cfg.batch, cc = s->cfg.cond_channels;
    svdc_status st = check_5d(s, op, "out", out, cfg ? 2 * B : B, s->cfg.channels + cc);
    if (st) return st;
    if (!isfinite(c_in)) return svdc_fail(SVDC_ERR_VALUE, "%s: c_in %g is not finite", op, c_in);
    svdc_tensor x = flat_view(s->x, s, latent_numel(s)), scaled = flat_view(s->scaled, s, latent_numel(s));
    if (cc == 0) { /* rows [c_in·x; c_in·x] or c_in·x */
        svdc_tensor first = flat_view((float *)out->data, s, latent_numel(s));
        if ((st = svdc_op_scale(&s->ctx, &x, c_in, &first))) return st;
        if (!cfg) return SVDC_OK;
        svdc_tensor second = flat_view((float *)out->data + latent_numel(s), s, latent_numel(s));
        return svdc_op_copy(&s->ctx, &first, &second);
    }
    if ((st = svdc_op_scale(&s->ctx, &x, c_in, &scaled))) return st;
    svdc_tensor a = frames_view(s->scaled, s, B);
    svdc_tensor zeros = frames_view(s->zeros, s, B), cond = frames_view(s->cond, s, B);
    /* rows [0, B): uncond (zero image latent) when cfg, else cond; rows [B, 2B): cond */
    int64_t half = B * s->cfg.frames * 2 * s->frame_numel;
    svdc_tensor first = frames_view((float *)out->data, s, B);
    first.shape[1] = 2 * s->cfg.channels;
    if ((st = svdc_op_concat_channels(&s->ctx, &a, cfg ? &zeros : &cond, &first))) return st;
    if (cfg) {
        svdc_tensor second = frames_view((float *)out->data + half, s, B);
        second.shape[1] = 2 * s->cfg.channels;
        if ((st = svdc_op_concat_channels(&s->ctx, &a, &cond, &second))) return st;
    }
    return SVDC_OK;
}

static svdc_status check_coefs(const svdc_sampler *s, const char *op, const svdc_sampler_coefs *k) {
    if (!k) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: coefficients are NULL", op);
    const float all[] = {k->noise_in, k->c_skip, k->c_out, k->a, k->b, k->c, k->noise_out};
    static const char *names[] = {"noise_in", "c_skip", "c_out", "a", "b", "c", "noise_out"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!isfinite(all[i])) return svdc_fail(SVDC_ERR_VALUE, "%s: coefficient %s = %g is not finite", op, names[i],
                                                (double)all[i]);
    if (k->update != SVDC_UPDATE_EULER && k->update != SVDC_UPDATE_LINEAR)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: unknown update kind %d", op, (int)k->update);
    if (k->noise_in != 0.0f && k->noise_out != 0.0f)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: noise_in and noise_out are both nonzero (one draw per step)", op);
    if (k->update == SVDC_UPDATE_LINEAR && k->c != 0.0f && !s->has_prev)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: c = %g needs the denoised latents of a previous linear step", op,
                         (double)k->c);
    return SVDC_OK;
}

svdc_status svdc_sampler_step(svdc_sampler *s, const svdc_tensor *model_out, int cfg, const float *guidance,
                              const svdc_sampler_coefs *k, const svdc_tensor *noise) {
    static const char *op = "sampler_step";
    const int64_t B = s->cfg.batch, F = s->cfg.frames, n = latent_numel(s);
    svdc_status st = check_coefs(s, op, k);
    if (st) return st;
    if ((st = check_5d(s, op, "model output", model_out, cfg ? 2 * B : B, s->cfg.channels))) return st;
    if ((st = svdc_op_check_finite(&s->ctx, model_out, "sampler_step: the UNet output"))) return st;
    const int noisy = k->noise_in != 0.0f || k->noise_out != 0.0f;
    if (noisy && !noise) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: this step adds noise and needs noise", op);
    if (noisy && (st = check_5d(s, op, "noise", noise, B, s->cfg.channels))) return st;
    if (cfg && guidance)
        for (int64_t f = 0; f < F; f++)
            if (!isfinite(guidance[f]))
                return svdc_fail(SVDC_ERR_VALUE, "%s: guidance[%lld] is not finite", op, (long long)f);

    svdc_tensor x = flat_view(s->x, s, n), guided = flat_view(s->guided, s, n), pred = flat_view(s->pred, s, n);
    /* 1. guidance per (video, frame): F̂ = F_u + w_f·(F_c − F_u); the difference goes through pred */
    if (cfg) {
        const float *fu = (const float *)model_out->data, *fc = fu + n;
        for (int64_t b = 0; b < B; b++)
            for (int64_t f = 0; f < F; f++) {
                int64_t off = (b * F + f) * s->frame_numel;
                svdc_tensor tu = flat_view((float *)fu + off, s, s->frame_numel);
                svdc_tensor tc = flat_view((float *)fc + off, s, s->frame_numel);
                svdc_tensor td = flat_view(s->pred + off, s, s->frame_numel);
                svdc_tensor th = flat_view(s->guided + off, s, s->frame_numel);
                float w = guidance ? guidance[f] : 1.0f;
                if ((st = svdc_op_axpby(&s->ctx, 1.0f, &tc, -1.0f, &tu, &td))) return st;
                if ((st = svdc_op_axpby(&s->ctx, 1.0f, &tu, w, &td, &th))) return st;
            }
    } else {
        svdc_tensor tf = flat_view(model_out->data, s, n);
        if ((st = svdc_op_copy(&s->ctx, &tf, &guided))) return st;
    }
    svdc_tensor eps = noisy ? flat_view(noise->data, s, n) : x;
    /* 2. churn: x̂ = x + noise_in·ε */
    if (k->noise_in != 0.0f && (st = svdc_op_axpby(&s->ctx, 1.0f, &x, k->noise_in, &eps, &x))) return st;
    /* 3. D = c_out·F̂ + c_skip·x̂ */
    if ((st = svdc_op_axpby(&s->ctx, k->c_out, &guided, k->c_skip, &x, &pred))) return st;
    /* 4. the update */
    if (k->update == SVDC_UPDATE_EULER) {
        /* d = a·x̂ − a·D (in place of D), x' = x̂ + b·d */
        if ((st = svdc_op_axpby(&s->ctx, k->a, &x, -k->a, &pred, &pred))) return st;
        if ((st = svdc_op_axpby(&s->ctx, 1.0f, &x, k->b, &pred, &x))) return st;
        s->has_prev = 0;
    } else {
        if ((st = svdc_op_axpby(&s->ctx, k->a, &x, k->b, &pred, &x))) return st;
        if (k->c != 0.0f) {
            svdc_tensor prev = flat_view(s->prev, s, n);
            if ((st = svdc_op_axpby(&s->ctx, 1.0f, &x, k->c, &prev, &x))) return st;
        }
        float *t = s->prev; /* this D becomes D_prev */
        s->prev = s->pred;
        s->pred = t;
        s->has_prev = 1;
    }
    /* 5. ancestral noise: x' += noise_out·ε */
    if (k->noise_out != 0.0f) return svdc_op_axpby(&s->ctx, 1.0f, &x, k->noise_out, &eps, &x);
    return SVDC_OK;
}
