/* widen.h — float16/bfloat16 -> float32 widening loops of the CPU backend's convert op: branch-free (selects only),
 * so the compiler vectorises them; bit-exact with the scalar conversions in elementwise.c (subnormals exact without
 * denormal arithmetic, Inf kept, NaN payload kept). Models with 16-bit weights widen every weight before each op that
 * uses it (csrc/core/ops.c, widen_weights), which makes these loops the whole cost of 16-bit storage on the CPU. */
#ifndef SVDC_CPU_WIDEN_H
#define SVDC_CPU_WIDEN_H

#include <stdint.h>

#include "kernels.h"

/* Compiled once per CPU kernel variant like the other kernel files: the names carry the variant. */
void SVDC_CPU_KERNEL(widen_f16)(const uint16_t *x, float *y, int64_t n);
void SVDC_CPU_KERNEL(widen_bf16)(const uint16_t *x, float *y, int64_t n);

#endif
