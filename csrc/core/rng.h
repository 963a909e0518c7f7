/* rng.h — a random generator that reproduces torch.Generator("cpu") bit for bit: mt19937 seeded like
 * manual_seed(seed), and torch's CPU normal_ for float32 tensors, so `seed=` gives the same noise as diffusers.
 *
 * torch's float32 randn has two layouts (aten/src/ATen/native/cpu/DistributionTemplates.h, normal_kernel):
 * - n >= 16: n uniforms u = (random() & 0xFFFFFF) * 2^-24 (float); Box-Muller on each chunk of 16 pairing element j
 *   with j+8 (u1 = 1 - u[j], u2 = u[j+8]: out[j] = r cos θ, out[j+8] = r sin θ, r = sqrt(-2 log u1), θ = 2π u2);
 *   when n % 16 != 0 the last 16 elements are redrawn with 16 fresh uniforms and transformed again.
 *   log/sin/cos are the float polynomial approximations of avx_mathfun.h, as in torch's x86 builds with AVX2 or
 *   AVX512 capability (the default on any x86-64 CPU with AVX2). torch's DEFAULT capability (no AVX2, e.g.
 *   ATEN_CPU_CAPABILITY=default) differs in the last bits for about half the values; it is not reproduced.
 * - n < 16: one double-precision Box-Muller per pair of elements from 53-bit uniforms (random64), returning r cos θ
 *   and caching r sin θ in the generator for the next element (even across calls).
 * The generator is host-side: noise is drawn on the CPU for every backend, then copied, so all backends agree.
 */
#ifndef SVDC_RNG_H
#define SVDC_RNG_H

#include "svdc.h"

#define SVDC_MT_N 624

typedef struct svdc_generator {
    uint32_t state[SVDC_MT_N];
    int left;      /* draws left before the next twist (torch's data_.left_) */
    int next;      /* index of the next state word */
    uint64_t seed; /* the seed as given (only its low 32 bits enter mt19937, as in torch) */
    int has_cached_normal;
    double cached_normal; /* torch's next_double_normal_sample_ */
} svdc_generator;

/* Reset to the state of torch.Generator().manual_seed(seed) (clears the cached normal). */
void svdc_generator_seed(svdc_generator *g, uint64_t seed);

/* The raw streams: one mt19937 word; two words combined as (first << 32) | second (torch's random64). */
uint32_t svdc_generator_random(svdc_generator *g);
uint64_t svdc_generator_random64(svdc_generator *g);

/* Fills out[0..n) (host memory) with standard normal float32 values exactly as torch.randn(n, generator=g) would,
 * advancing the generator. n >= 0; the shape does not matter, only the element count. */
svdc_status svdc_generator_randn(svdc_generator *g, float *out, int64_t n);

#endif
