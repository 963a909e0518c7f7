/* gemm.c — linear layers on the CPU through BLAS SGEMM: one OpenMP region of row-block tasks, each filling its rows
 * with the bias and accumulating x·wᵀ with a single-threaded SGEMM (see conv.c for why one region per op). */
#include <omp.h>

#include "blas.h"
#include "kernels.h"

svdc_status SVDC_CPU_KERNEL(linear)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            svdc_tensor *y) {
    (void)ctx;
    const int64_t K = x->shape[x->ndim - 1];
    const int64_t N = w->shape[0];
    const int64_t M = svdc_tensor_numel(x) / (K ? K : 1);
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (M == 0 || N == 0) return SVDC_OK;
    /* Row blocks: about two per thread, at least 64 rows (so each SGEMM amortises packing w). */
    const int threads = omp_get_max_threads();
    int64_t rows = (M + 2 * threads - 1) / (2 * threads);
    if (rows < 64) rows = 64;
    const int64_t tasks = (M + rows - 1) / rows;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && M * N * K > ((int64_t)1 << 20))
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t r0 = t * rows, nr = M - r0 < rows ? M - r0 : rows;
        float *yr = yd + r0 * N;
        /* y rows start at the bias (or zero), then y += x · wᵀ */
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < N; j++) yr[i * N + j] = bd ? bd[j] : 0.0f;
        if (K) svdc_sgemm(0, 1, nr, N, K, 1.0f, xd + r0 * K, K, wd, K, 1.0f, yr, N);
    }
    return SVDC_OK;
}
