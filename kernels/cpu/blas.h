/* blas.h — the one place that names the BLAS library: single-precision GEMM and thread control for the CPU
 * backend (OpenBLAS from the scipy-openblas32 wheel, whose symbols carry a scipy_ prefix). */
#ifndef SVDC_CPU_BLAS_H
#define SVDC_CPU_BLAS_H

#include <stdint.h>

/* Row-major C[M,N] = alpha * op(A) · op(B) + beta * C, op = transpose when trans_* is non-zero.
 * lda/ldb/ldc are the row strides of the stored matrices. Called outside an OpenMP region, a large product is split
 * over the OpenMP threads; inside one (e.g. per attention tile) it runs on the calling thread. */
void svdc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

const char *svdc_blas_name(void);
const char *svdc_blas_config(void);
/* OpenBLAS stays single-threaded (svdc_sgemm threads with OpenMP); kept for the build-info/threads API. */
void svdc_blas_set_num_threads(int n);

#endif
