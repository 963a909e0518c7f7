/* pgemm.h — svdc's own single-threaded GEMM on weights packed at load (packed.h): a register-blocked MR x NR
 * microkernel (AVX2+FMA in the avx2 variant, 4-wide vectors in the baseline one) under cache blocking; the
 * activation is packed per call into `scratch` (SVDC_PGEMM_SCRATCH floats, 64-byte aligned, one per thread) when it
 * is the right operand (pgemm_wa) and read in place when it is the left one (pgemm_wb).
 *
 * Every output element is summed in one fixed order — the K blocks in turn, k ascending inside each — whatever rows
 * or columns a caller's task covers, so results do not depend on how an op splits its work over threads. */
#ifndef SVDC_CPU_PGEMM_H
#define SVDC_CPU_PGEMM_H

#include <stdint.h>

#include "kernels.h"
#include "packed.h"

#define SVDC_PGEMM_KC 256 /* depth of one block (the packed operands' panel slices fit L1, the block L2) */
#define SVDC_PGEMM_NC 256 /* columns of C per block (pgemm_wa: of B packed per block), a multiple of NR */
#define SVDC_PGEMM_MC 96  /* rows of A per block (their K block stays in L2), a multiple of MR */
#define SVDC_PGEMM_SCRATCH (SVDC_PGEMM_KC * SVDC_PGEMM_NC)

/* What a GEMM does with its result: C = A · B (no epilogue: NULL), C += A · B when `accumulate`, plus a bias per
 * output row (pgemm_wa: bias[i] for row i) or per output column (pgemm_wb: bias[j] for column j) when `bias`. */
typedef struct svdc_pgemm_epilogue {
    int accumulate;
    const float *bias;
} svdc_pgemm_epilogue;

/* C (M, N; row stride ldc) = A · B per `ep`. A: the rows [0, M) of a packed A-panel matrix of depth K starting at
 * `ap` (a panel boundary); B: plain (K, N), row stride ldb, packed per call into `scratch`. */
#define svdc_pgemm_wa SVDC_CPU_KERNEL(pgemm_wa)
void svdc_pgemm_wa(int64_t M, int64_t N, int64_t K, const float *ap, const float *B, int64_t ldb, float *C,
                   int64_t ldc, const svdc_pgemm_epilogue *ep, float *scratch);
/* C (M, N; row stride ldc) = A · B per `ep`. A: plain (M, K), row stride lda, read in place; B: the columns [0, N)
 * of a packed B-panel matrix of depth K starting at `bp` (a panel boundary): B[k][n] = w[n][k]. */
#define svdc_pgemm_wb SVDC_CPU_KERNEL(pgemm_wb)
void svdc_pgemm_wb(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *bp, float *C,
                   int64_t ldc, const svdc_pgemm_epilogue *ep);
/* The microkernel this variant runs, for benchmarks and build info ("avx2-fma 6x16", "vec4 6x16"). */
#define svdc_pgemm_kernel_name SVDC_CPU_KERNEL(pgemm_kernel_name)
const char *svdc_pgemm_kernel_name(void);

#endif
