/* sampler.c — the Euler/CFG sampler of sampler.h, composed from svdc_op_* (axpby, scale, concat_channels,
 * fill, copy, check_finite) so it runs on any backend. Scalars are computed in float32 as diffusers does. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/backend.h"
#include "../core/tensor.h"

struct svdc_sampler {
    svdc_ctx ctx;
    svdc_sampler_config cfg;
    float *sigmas;      /* host copy, N + 1 */
    int64_t frame_numel; /* C·h·w */
    float *x;           /* (B, F, C, h, w) */
    float *cond;        /* (B·F, C, h, w): cond latents repeated over frames */
    float *zeros;       /* (B·F, C, h, w) */
    float *scaled;      /* (B·F, C, h, w): c_in·x */
    float *vhat;        /* (B·F, C, h, w): guided v */
    float *pred;        /* (B·F, C, h, w): D, then the derivative */
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

static svdc_status check_step(const svdc_sampler *s, const char *op, int step) {
    if (step < 0 || step >= s->cfg.num_steps)
        return svdc_fail(SVDC_ERR_ARGUMENT, "%s: step must be in [0, %d), got %d", op, s->cfg.num_steps, step);
    return SVDC_OK;
}

void svdc_sampler_free(svdc_sampler *s) {
    if (!s) return;
    const svdc_backend *b = s->ctx.backend;
    float *bufs[] = {s->x, s->cond, s->zeros, s->scaled, s->vhat, s->pred};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) b->free(s->ctx.device, bufs[i]);
    free(s->sigmas);
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
    if (cfg->num_steps < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: num_steps must be >= 1, got %d", cfg->num_steps);
    if (!cfg->sigmas) return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: sigmas is NULL");
    for (int i = 0; i <= cfg->num_steps; i++) {
        float sg = cfg->sigmas[i];
        if (!(isfinite(sg) && sg >= 0.0f) || (i < cfg->num_steps && !(sg > 0.0f)))
            return svdc_fail(SVDC_ERR_VALUE, "sampler_init: sigmas[%d] = %g; expected finite, > 0 (>= 0 for the last)",
                             i, (double)sg);
    }
    if (cfg->prediction != SVDC_PREDICTION_V && cfg->prediction != SVDC_PREDICTION_EPSILON &&
        cfg->prediction != SVDC_PREDICTION_SAMPLE)
        return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: unknown prediction type %d", (int)cfg->prediction);
    if (cfg->cond_channels != 0 && cfg->cond_channels != cfg->channels)
        return svdc_fail(SVDC_ERR_ARGUMENT, "sampler_init: cond_channels must be 0 or channels (%lld), got %lld",
                         (long long)cfg->channels, (long long)cfg->cond_channels);
    if (!(cfg->s_churn >= 0.0f) || !(cfg->s_noise >= 0.0f) || isnan(cfg->s_tmin) || isnan(cfg->s_tmax))
        return svdc_fail(SVDC_ERR_VALUE, "sampler_init: churn settings must be s_churn >= 0, s_noise >= 0, "
                         "s_tmin/s_tmax not NaN; got %g, %g, %g, %g", (double)cfg->s_churn, (double)cfg->s_noise,
                         (double)cfg->s_tmin, (double)cfg->s_tmax);

    svdc_sampler *s = calloc(1, sizeof *s);
    if (!s) return svdc_fail(SVDC_ERR_MEMORY, "sampler_init: out of host memory (%zu bytes)", sizeof *s);
    s->ctx = *ctx;
    s->cfg = *cfg;
    s->frame_numel = cfg->channels * cfg->height * cfg->width;
    s->sigmas = malloc(sizeof(float) * (size_t)(cfg->num_steps + 1));
    if (!s->sigmas) {
        free(s);
        return svdc_fail(SVDC_ERR_MEMORY, "sampler_init: out of host memory for %d sigmas", cfg->num_steps + 1);
    }
    memcpy(s->sigmas, cfg->sigmas, sizeof(float) * (size_t)(cfg->num_steps + 1));
    s->cfg.sigmas = s->sigmas;

    size_t bytes = sizeof(float) * (size_t)latent_numel(s);
    float **bufs[] = {&s->x, &s->cond, &s->zeros, &s->scaled, &s->vhat, &s->pred};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i] = s->ctx.backend->alloc(s->ctx.device, bytes);
        if (!*bufs[i]) {
            svdc_sampler_free(s);
            return svdc_fail(SVDC_ERR_MEMORY, "sampler_init: out of memory allocating %zu bytes on device %d", bytes,
                             ctx->device);
        }
    }
    svdc_tensor t;
    svdc_status st;
    float *zeroed[] = {s->x, s->cond, s->zeros};
    for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) {
        t = flat_view(zeroed[i], s, latent_numel(s));
        if ((st = svdc_op_fill(&s->ctx, &t, 0.0f))) {
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
    if ((st = svdc_op_check_finite(&s->ctx, latents, "sampler latents"))) return st;
    svdc_tensor src = flat_view(latents->data, s, latent_numel(s)), dst = flat_view(s->x, s, latent_numel(s));
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

/* c_in = 1/√(σ²+1), c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1), in float32. */
static float sigma_sq1(float sigma) {
    float sq = sigma * sigma;
    return sq + 1.0f;
}

svdc_status svdc_sampler_model_input(svdc_sampler *s, int step, int cfg, svdc_tensor *out) {
    static const char *op = "sampler_model_input";
    svdc_status st = check_step(s, op, step);
    if (st) return st;
    int64_t B = s->cfg.batch;
    const int64_t cc = s->cfg.cond_channels;
    if ((st = check_5d(s, op, "out", out, cfg ? 2 * B : B, s->cfg.channels + cc))) return st;
    float c_in = 1.0f / sqrtf(sigma_sq1(s->sigmas[step]));
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

float svdc_sampler_gamma(const svdc_sampler *s, int step) {
    if (!s || step < 0 || step >= s->cfg.num_steps) return 0.0f;
    float sigma = s->sigmas[step];
    if (!(s->cfg.s_churn > 0.0f) || !(s->cfg.s_tmin <= sigma && sigma <= s->cfg.s_tmax)) return 0.0f;
    float g = s->cfg.s_churn / (float)s->cfg.num_steps; /* len(sigmas) - 1 = N */
    const float cap = 0.41421356237309515f;             /* 2**0.5 - 1 */
    return g < cap ? g : cap;
}

svdc_status svdc_sampler_step(svdc_sampler *s, int step, const svdc_tensor *v, int cfg, const float *guidance,
                              const svdc_tensor *noise) {
    static const char *op = "sampler_step";
    svdc_status st = check_step(s, op, step);
    if (st) return st;
    int64_t B = s->cfg.batch, F = s->cfg.frames, n = latent_numel(s);
    if ((st = check_5d(s, op, "v", v, cfg ? 2 * B : B, s->cfg.channels))) return st;
    if ((st = svdc_op_check_finite(&s->ctx, v, "sampler_step: the UNet output v"))) return st;
    float gamma = svdc_sampler_gamma(s, step);
    if (gamma > 0.0f) {
        if (!noise) return svdc_fail(SVDC_ERR_ARGUMENT, "%s: step %d has churn (gamma %g) and needs noise", op, step,
                                     (double)gamma);
        if ((st = check_5d(s, op, "noise", noise, B, s->cfg.channels))) return st;
    }
    if (cfg && guidance)
        for (int64_t f = 0; f < F; f++)
            if (!isfinite(guidance[f]))
                return svdc_fail(SVDC_ERR_VALUE, "%s: guidance[%lld] is not finite", op, (long long)f);

    svdc_tensor x = flat_view(s->x, s, n), vhat = flat_view(s->vhat, s, n), pred = flat_view(s->pred, s, n);
    /* 1. guidance per (video, frame): v̂ = v_u + w_f·(v_c − v_u); the difference goes through pred */
    if (cfg) {
        const float *vu = (const float *)v->data, *vc = vu + n;
        for (int64_t b = 0; b < B; b++)
            for (int64_t f = 0; f < F; f++) {
                int64_t off = (b * F + f) * s->frame_numel;
                svdc_tensor tu = flat_view((float *)vu + off, s, s->frame_numel);
                svdc_tensor tc = flat_view((float *)vc + off, s, s->frame_numel);
                svdc_tensor td = flat_view(s->pred + off, s, s->frame_numel);
                svdc_tensor th = flat_view(s->vhat + off, s, s->frame_numel);
                float w = guidance ? guidance[f] : 1.0f;
                if ((st = svdc_op_axpby(&s->ctx, 1.0f, &tc, -1.0f, &tu, &td))) return st;
                if ((st = svdc_op_axpby(&s->ctx, 1.0f, &tu, w, &td, &th))) return st;
            }
    } else {
        svdc_tensor tv = flat_view(v->data, s, n);
        if ((st = svdc_op_copy(&s->ctx, &tv, &vhat))) return st;
    }
    float sigma = s->sigmas[step], sigma_next = s->sigmas[step + 1];
    float sigma_hat = sigma * (gamma + 1.0f);
    /* 2. churn: x += ε·s_noise·√(σ̂² − σ²) */
    if (gamma > 0.0f) {
        float k = sqrtf(sigma_hat * sigma_hat - sigma * sigma);
        float eps_scale = s->cfg.s_noise * k;
        svdc_tensor tn = flat_view(noise->data, s, n);
        if ((st = svdc_op_axpby(&s->ctx, 1.0f, &x, eps_scale, &tn, &x))) return st;
    }
    /* 3. D = c_out·v̂ + c_skip·x (v: σ, not σ̂, as diffusers; epsilon: σ̂, as diffusers) */
    float c_out, c_skip;
    if (s->cfg.prediction == SVDC_PREDICTION_V) {
        float s1 = sigma_sq1(sigma);
        c_out = -sigma / sqrtf(s1);
        c_skip = 1.0f / s1;
    } else if (s->cfg.prediction == SVDC_PREDICTION_EPSILON) {
        c_out = -sigma_hat;
        c_skip = 1.0f;
    } else {
        c_out = 1.0f;
        c_skip = 0.0f;
    }
    if ((st = svdc_op_axpby(&s->ctx, c_out, &vhat, c_skip, &x, &pred))) return st;
    /* 4. derivative d = (x − D)/σ̂ (in place of D), then x ← x + d·(σ' − σ̂) */
    float inv = 1.0f / sigma_hat;
    if ((st = svdc_op_axpby(&s->ctx, inv, &x, -inv, &pred, &pred))) return st;
    float dt = sigma_next - sigma_hat;
    return svdc_op_axpby(&s->ctx, 1.0f, &x, dt, &pred, &x);
}
