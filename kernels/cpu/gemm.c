/* gemm.c — linear layers on the CPU: one OpenMP region of (row block, column block) tasks, each filling its part of
 * y = x·wᵀ + b with a single-threaded GEMM — svdc's own on the weight packed at load (pgemm.h, when the registry
 * has it; the bias added in its store) or OpenBLAS SGEMM onto y filled with the bias (see conv.c for why one region
 * per op). */
#include <omp.h>

#include "blas.h"
#include "kernels.h"
#include "pgemm.h"

/* At least this many multiply-adds before an op opens a parallel region. */
#define PARALLEL_MIN_WORK ((int64_t)1 << 20)

svdc_status SVDC_CPU_KERNEL(linear)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            svdc_tensor *y) {
    const int64_t K = x->shape[x->ndim - 1];
    const int64_t N = w->shape[0];
    const int64_t M = svdc_tensor_numel(x) / (K ? K : 1);
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (M == 0 || N == 0) return SVDC_OK;
    const svdc_packed_weight *pw = K ? svdc_packed_find(wd, SVDC_PACKED_LINEAR) : NULL;
    /* Row blocks: about two per thread, at least 64 rows (so each GEMM amortises packing its operands); when that
     * leaves fewer than two tasks per thread, column blocks too (whole NR panels, at least 64 columns). */
    const int threads = omp_get_max_threads();
    int64_t rows = (M + 2 * threads - 1) / (2 * threads);
    if (rows < 64) rows = 64;
    const int64_t row_tasks = (M + rows - 1) / rows;
    int64_t cols = N;
    if (row_tasks < 2 * threads) {
        const int64_t want = (2 * threads + row_tasks - 1) / row_tasks;
        cols = (N + want - 1) / want;
        if (cols < 64) cols = 64;
        cols = (cols + SVDC_PACK_NR - 1) / SVDC_PACK_NR * SVDC_PACK_NR;
        if (cols > N) cols = N;
    }
    const int64_t col_tasks = (N + cols - 1) / cols, tasks = row_tasks * col_tasks;
    const int parallel = tasks > 1 && M * N * K > PARALLEL_MIN_WORK;
    const svdc_pgemm_epilogue first = {.accumulate = 0, .bias = NULL};
#pragma omp parallel for schedule(dynamic, 1) if (parallel) num_threads(threads)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t r0 = (t / col_tasks) * rows, nr = M - r0 < rows ? M - r0 : rows;
        const int64_t c0 = (t % col_tasks) * cols, nc = N - c0 < cols ? N - c0 : cols;
        float *yr = yd + r0 * N + c0;
        if (pw && K) { /* y[r0 : r0+nr, c0 : c0+nc] = x[r0 : r0+nr] · w[c0 : c0+nc]ᵀ + b[c0 : c0+nc], bias in the store */
            svdc_pgemm_epilogue ep = first;
            ep.bias = bd ? bd + c0 : NULL;
            svdc_pgemm_wb(nr, nc, K, xd + r0 * K, K, pw->data + c0 * K, yr, N, &ep);
            continue;
        }
        /* y[r0 : r0+nr, c0 : c0+nc] starts at the bias (or zero), then += x[r0 : r0+nr] · w[c0 : c0+nc]ᵀ */
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < nc; j++) yr[i * N + j] = bd ? bd[c0 + j] : 0.0f;
        if (K) svdc_sgemm(0, 1, nr, nc, K, 1.0f, xd + r0 * K, K, wd + c0 * K, K, 1.0f, yr, N);
    }
    return SVDC_OK;
}
