/* widen.c — float16/bfloat16 -> float32 widening (see widen.h). */
#include "widen.h"

#include <string.h>

/* Below this many elements a single thread converts (the team costs more than it saves). */
#define WIDEN_PARALLEL_MIN ((int64_t)1 << 16)

static inline float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* One half: the 15 magnitude bits moved to float32's place and rebiased (+112 in the exponent); Inf/NaN get another
 * +112 (exponent 255, payload kept); zero and subnormals are 2^-14 * (1 + m/1024) - 2^-14 = m * 2^-24, a difference
 * of two normal floats, so exact with no denormal arithmetic (correct under flush-to-zero too). */
static inline float f16_bits_to_f32(uint16_t h) {
    const uint32_t magnitude = (uint32_t)(h & 0x7fffu) << 13, exponent = h & 0x7c00u;
    /* all-ones masks from comparisons rather than ?: so the loop has no control flow and vectorises */
    const uint32_t inf_nan = 0u - (uint32_t)(exponent == 0x7c00u), small = 0u - (uint32_t)(exponent == 0u);
    const uint32_t o = magnitude + (112u << 23) + (inf_nan & (112u << 23));
    const uint32_t tiny = float_to_bits(bits_to_float(o + (1u << 23)) - bits_to_float(113u << 23));
    return bits_to_float((small & tiny) | (~small & o) | ((uint32_t)(h & 0x8000u) << 16));
}

void SVDC_CPU_KERNEL(widen_f16)(const uint16_t *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > WIDEN_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = f16_bits_to_f32(x[i]);
}

void SVDC_CPU_KERNEL(widen_bf16)(const uint16_t *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > WIDEN_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = bits_to_float((uint32_t)x[i] << 16);
}
