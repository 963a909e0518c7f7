/* sampler.h — the tensor work of one diffusion sampling step with per-frame classifier-free guidance, for every
 * scheduler svdc implements (Euler, Euler ancestral, EDM with churn, DDIM, DPM-Solver++ 2M). Every scalar (c_in,
 * c_skip, c_out, the update coefficients, the noise scales) comes from the caller: svdc/schedules.py owns them. The
 * latents x (B, F, C, h, w) and the previous step's denoised D_prev live inside the object on the context's device
 * across steps; the host sees them only through svdc_sampler_get_latents.
 *
 * Per step, with coefficients k (svdc_sampler_coefs):
 *   model input   u = [c_in·x; c_in·x] ⊕_channels [0; cond]   (CFG; without CFG: c_in·x ⊕ cond; no ⊕ when
 *                 cond_channels = 0, as an SD UNet takes it)
 *   guidance      F̂[b,f] = F_u[b,f] + w_f·(F_c[b,f] − F_u[b,f])
 *   churn         x̂ = x + k.noise_in·ε   (EDM's s_churn; ε (B, F, C, h, w) drawn by the caller)
 *   denoised      D = k.c_skip·x̂ + k.c_out·F̂   (the prediction type lives in c_skip/c_out)
 *   update        EULER:  d = k.a·x̂ − k.a·D, x' = x̂ + k.b·d        (a = 1/σ̂, b = σ' − σ̂: diffusers' operation order)
 *                 LINEAR: x' = k.a·x̂ + k.b·D + k.c·D_prev         (DDIM, DPM-Solver++; D_prev = the last LINEAR D)
 *   ancestral     x' += k.noise_out·ε
 * All elementwise work goes through svdc_op_* so any backend runs it. */
#ifndef SVDC_SAMPLER_H
#define SVDC_SAMPLER_H

#include "../core/ops.h"

typedef enum svdc_sampler_update {
    SVDC_UPDATE_EULER = 0,
    SVDC_UPDATE_LINEAR = 1
} svdc_sampler_update;

/* One step's scalars (see the formulas above). At most one of noise_in / noise_out is nonzero: one draw per step. */
typedef struct svdc_sampler_coefs {
    float noise_in;
    float c_skip, c_out;
    svdc_sampler_update update;
    float a, b, c; /* EULER uses a, b; LINEAR a, b, c (c != 0 needs a previous LINEAR step) */
    float noise_out;
} svdc_sampler_coefs;

typedef struct svdc_sampler_config {
    int64_t batch, frames, channels, height, width; /* latent shape (B, F, C, h, w); SVD: C = 4 */
    int64_t cond_channels;                           /* concat conditioning channels: SVD = channels; 0 = none */
} svdc_sampler_config;

typedef struct svdc_sampler svdc_sampler;

/* Allocates the state once on ctx's device (ctx is copied; its backend and device are used, its arena is not). */
svdc_status svdc_sampler_init(svdc_sampler **out, const svdc_ctx *ctx, const svdc_sampler_config *cfg);
void svdc_sampler_free(svdc_sampler *s); /* NULL is a no-op */

/* x = scale · latents, latents (B, F, C, h, w) on the sampler's device; forgets D_prev. */
svdc_status svdc_sampler_set_latents(svdc_sampler *s, const svdc_tensor *latents, float scale);
/* The conditioning latents (B, C, h, w), repeated over the frames; never set = zeros. */
svdc_status svdc_sampler_set_cond(svdc_sampler *s, const svdc_tensor *cond);
/* x -> out (B, F, C, h, w) on the sampler's device. */
svdc_status svdc_sampler_get_latents(const svdc_sampler *s, svdc_tensor *out);

/* The UNet input: out (R, F, C + cond_channels, h, w) with R = 2B when cfg (rows [uncond; cond]) else B. */
svdc_status svdc_sampler_model_input(svdc_sampler *s, float c_in, int cfg, svdc_tensor *out);

/* One step. F (R, F, C, h, w): the UNet output for the rows of model_input (R = 2B with cfg). guidance (F,) host
 * floats, used when cfg (NULL = 1 for every frame). noise (B, F, C, h, w) or NULL; required iff k->noise_in or
 * k->noise_out is nonzero. Refuses NaN/Inf in F (a diverged model) and bad coefficients before touching x. */
svdc_status svdc_sampler_step(svdc_sampler *s, const svdc_tensor *model_out, int cfg, const float *guidance,
                              const svdc_sampler_coefs *k, const svdc_tensor *noise);

#endif
