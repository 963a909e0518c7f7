/* blas.c — SGEMM through OpenBLAS (scipy-openblas32: 32-bit integers, scipy_-prefixed symbols).
 *
 * Threading: OpenBLAS runs single-threaded and svdc_sgemm splits a large product into one block per OpenMP thread.
 * Then the CPU backend has one thread pool (OpenMP) instead of two that spin against each other on few cores
 * (OpenBLAS's idle workers busy-wait for ~2^28 cycles after each call, taking CPU from the OpenMP loops that follow),
 * and kernels that already run inside an OpenMP region (attention tiles) can call svdc_sgemm directly. */
#include "blas.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

/* Below this many multiply-adds a product runs on the calling thread. */
#define SPLIT_MIN_WORK ((int64_t)1 << 21)

static void sgemm1(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                      (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                      (blasint)ldc);
}

static int blas_single_threaded = 0;

/* OpenBLAS is set to one thread once; a benign race (every thread stores the same values). */
static void ensure_single_threaded(void) {
    if (__atomic_load_n(&blas_single_threaded, __ATOMIC_ACQUIRE)) return;
    scipy_openblas_set_num_threads(1);
    __atomic_store_n(&blas_single_threaded, 1, __ATOMIC_RELEASE);
}

void svdc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    /* Callers keep each dimension and leading stride below 2^31 (ops.c checks the op-level sizes). */
    ensure_single_threaded();
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads <= 1 || M * N * K < SPLIT_MIN_WORK || (M < 32 && N < 32)) {
        sgemm1(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C into one block per thread (rounded to 16 so kernels see whole panels). */
    const int split_n = N >= M;
    const int64_t len = split_n ? N : M;
    int64_t chunk = (len + threads - 1) / threads;
    chunk = (chunk + 15) / 16 * 16;
    const int64_t parts = (len + chunk - 1) / chunk;
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (int64_t p = 0; p < parts; p++) {
        const int64_t s = p * chunk, n = len - s < chunk ? len - s : chunk;
        if (split_n) /* C[:, s:s+n] = op(A) · op(B)[:, s:s+n]; B's column s is row s of a transposed B */
            sgemm1(trans_a, trans_b, M, n, K, alpha, A, lda, trans_b ? B + s * ldb : B + s, ldb, beta, C + s, ldc);
        else /* C[s:s+n, :] = op(A)[s:s+n, :] · op(B) */
            sgemm1(trans_a, trans_b, n, N, K, alpha, trans_a ? A + s : A + s * lda, lda, B, ldb, beta, C + s * ldc,
                   ldc);
    }
}

const char *svdc_blas_name(void) { return "OpenBLAS (scipy-openblas32)"; }

const char *svdc_blas_config(void) { return scipy_openblas_get_config(); }

/* The CPU backend's parallelism is OpenMP's (see the top of this file); OpenBLAS itself stays on one thread. */
void svdc_blas_set_num_threads(int n) {
    (void)n;
    ensure_single_threaded();
}
