/* blas.c — SGEMM through OpenBLAS (scipy-openblas32: 32-bit integers, scipy_-prefixed symbols). */
#include "blas.h"

#include <cblas.h>

void svdc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    /* Callers keep each dimension and leading stride below 2^31 (ops.c checks the op-level sizes). */
    scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                      (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                      (blasint)ldc);
}

const char *svdc_blas_name(void) { return "OpenBLAS (scipy-openblas32)"; }

const char *svdc_blas_config(void) { return scipy_openblas_get_config(); }

void svdc_blas_set_num_threads(int n) { scipy_openblas_set_num_threads(n); }

int svdc_blas_get_num_threads(void) { return scipy_openblas_get_num_threads(); }
