/* kernels.h — the CPU kernels behind the backend table, one group per file (gemm.c, conv.c, norm.c, attention.c,
 * elementwise.c, resample.c). Arguments are validated by ops.c; float32 only. */
#ifndef SVDC_CPU_KERNELS_H
#define SVDC_CPU_KERNELS_H

#include "backend.h"

/* gemm.c */
svdc_status svdc_cpu_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            svdc_tensor *y);

#endif
