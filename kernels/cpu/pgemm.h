/* pgemm.h — svdc's own single-threaded GEMM on weights packed at load (packed.h): a register-blocked MR x NR
 * microkernel (AVX2+FMA in the avx2 variant, 4-wide vectors in the baseline one) under cache blocking, with the
 * other operand packed per call into `scratch` (SVDC_PGEMM_SCRATCH floats, 64-byte aligned, one per thread).
 *
 * Every output element is summed in one fixed order — the K blocks in turn, k ascending inside each — whatever rows
 * or columns a caller's task covers, so results do not depend on how an op splits its work over threads. */
#ifndef SVDC_CPU_PGEMM_H
#define SVDC_CPU_PGEMM_H

#include <stdint.h>

#include "kernels.h"
#include "packed.h"

#define SVDC_PGEMM_KC 256 /* depth of one block (the packed operands' panel slices fit L1, the block L2) */
#define SVDC_PGEMM_NC 256 /* columns of B packed per block (pgemm_wa), a multiple of NR */
#define SVDC_PGEMM_MC 96  /* rows of A packed per block (pgemm_wb), a multiple of MR */
#define SVDC_PGEMM_SCRATCH (SVDC_PGEMM_KC * SVDC_PGEMM_NC)

/* C (M, N; row stride ldc) = A · B, or C += A · B when `accumulate`. A: the rows [0, M) of a packed A-panel matrix of
 * depth K starting at `ap` (a panel boundary); B: plain (K, N), row stride ldb. */
#define svdc_pgemm_wa SVDC_CPU_KERNEL(pgemm_wa)
void svdc_pgemm_wa(int64_t M, int64_t N, int64_t K, const float *ap, const float *B, int64_t ldb, float *C,
                   int64_t ldc, int accumulate, float *scratch);
/* C (M, N; row stride ldc) = A · B (or += when `accumulate`). A: plain (M, K), row stride lda; B: the columns [0, N)
 * of a packed B-panel matrix of depth K starting at `bp` (a panel boundary): B[k][n] = w[n][k]. */
#define svdc_pgemm_wb SVDC_CPU_KERNEL(pgemm_wb)
void svdc_pgemm_wb(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *bp, float *C,
                   int64_t ldc, int accumulate, float *scratch);
/* The microkernel this variant runs, for benchmarks and build info ("avx2-fma 6x16", "vec4 6x16"). */
#define svdc_pgemm_kernel_name SVDC_CPU_KERNEL(pgemm_kernel_name)
const char *svdc_pgemm_kernel_name(void);

#endif
