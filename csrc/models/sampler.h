/* sampler.h — the tensor work of an Euler sampler over given sigmas with per-frame classifier-free guidance
 * (diffusers EulerDiscreteScheduler.step in fp32): SVD's v-prediction EDM, and epsilon / sample prediction; the
 * concat conditioning is optional (cond_channels 0: the model input is the scaled latents alone, as SD's UNet). The latents
 * x (B, F, C, h, w) live inside the object on the context's device across steps; one call per step.
 *
 * Per step i (σ = sigmas[i], σ' = sigmas[i+1]):
 *   model input   u = [x; x]·c_in ⊕_channels [0; cond]   (CFG; without CFG: x·c_in ⊕ cond), c_in = 1/√(σ²+1)
 *   guidance      v̂[b,f] = v_u[b,f] + w_f·(v_c[b,f] − v_u[b,f])
 *   churn         γ = min(s_churn/N, √2−1) if s_tmin ≤ σ ≤ s_tmax else 0; σ̂ = σ(1+γ);
 *                 if γ > 0: x += ε·s_noise·√(σ̂² − σ²)  (ε ~ N(0, I) given by the caller, drawn from the Generator)
 *   denoised      D = c_out·v̂ + c_skip·x, c_out = −σ/√(σ²+1), c_skip = 1/(σ²+1)   (σ, not σ̂: as diffusers)
 *   Euler         x ← x + (x − D)/σ̂ · (σ' − σ̂)   (the last step, σ' = 0, lands on D)
 * All elementwise work goes through svdc_op_* so any backend runs it. */
#ifndef SVDC_SAMPLER_H
#define SVDC_SAMPLER_H

#include "../core/ops.h"

/* What the model predicts; the denoised D = c_skip·x + c_out·F:
 *   V        c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1)   (SVD)
 *   EPSILON  c_skip = 1,        c_out = −σ̂            (diffusers uses σ̂ here)
 *   SAMPLE   c_skip = 0,        c_out = 1 */
typedef enum svdc_prediction {
    SVDC_PREDICTION_V = 0,
    SVDC_PREDICTION_EPSILON = 1,
    SVDC_PREDICTION_SAMPLE = 2
} svdc_prediction;

typedef struct svdc_sampler_config {
    int64_t batch, frames, channels, height, width; /* latent shape (B, F, C, h, w); SVD: C = 4 */
    int num_steps;                                   /* N >= 1 */
    const float *sigmas;                             /* N + 1 values, host memory, copied */
    float s_churn, s_tmin, s_tmax, s_noise;          /* diffusers defaults: 0, 0, +inf, 1 */
    svdc_prediction prediction;                      /* SVD: V */
    int64_t cond_channels;                           /* concat conditioning channels: SVD = channels; 0 = none */
} svdc_sampler_config;

typedef struct svdc_sampler svdc_sampler;

/* Allocates the state on ctx's device (ctx is copied; its backend and device are used, its arena is not). */
svdc_status svdc_sampler_init(svdc_sampler **out, const svdc_ctx *ctx, const svdc_sampler_config *cfg);
void svdc_sampler_free(svdc_sampler *s); /* NULL is a no-op */

/* x = scale · latents, latents (B, F, C, h, w) on the sampler's device (SVD: scale = init_noise_sigma). */
svdc_status svdc_sampler_set_latents(svdc_sampler *s, const svdc_tensor *latents, float scale);
/* The conditioning latents (B, C, h, w), repeated over the frames; never set = zeros. */
svdc_status svdc_sampler_set_cond(svdc_sampler *s, const svdc_tensor *cond);
/* x -> out (B, F, C, h, w). */
svdc_status svdc_sampler_get_latents(const svdc_sampler *s, svdc_tensor *out);

/* The UNet input of step i: out (R, F, C + cond_channels, h, w) with R = 2B when cfg (rows [uncond; cond]) else
 * B; without concat conditioning the rows are [c_in·x; c_in·x] (cfg) or c_in·x. */
svdc_status svdc_sampler_model_input(svdc_sampler *s, int step, int cfg, svdc_tensor *out);

/* γ of step i (0 when churn is off or σ is outside [s_tmin, s_tmax]); the caller passes noise to step iff γ > 0. */
float svdc_sampler_gamma(const svdc_sampler *s, int step);

/* One Euler step. v (R, F, C, h, w): the UNet output for the rows of model_input (R = 2B with cfg). guidance (F,)
 * host floats, used when cfg (NULL = 1 for every frame). noise (B, F, C, h, w) or NULL; required iff gamma > 0.
 * Refuses NaN/Inf in v (a diverged model) before touching x. */
svdc_status svdc_sampler_step(svdc_sampler *s, int step, const svdc_tensor *v, int cfg, const float *guidance,
                              const svdc_tensor *noise);

#endif
