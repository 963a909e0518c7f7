/* gemm.c — linear layers on the CPU through BLAS SGEMM. */
#include "blas.h"
#include "kernels.h"

svdc_status svdc_cpu_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            svdc_tensor *y) {
    (void)ctx;
    const int64_t K = x->shape[x->ndim - 1];
    const int64_t N = w->shape[0];
    const int64_t M = svdc_tensor_numel(x) / (K ? K : 1);
    const float *xd = x->data, *wd = w->data;
    float *yd = y->data;
    if (M == 0 || N == 0) return SVDC_OK;
    float beta = 0.0f;
    if (b) {
        const float *bd = b->data;
        /* Start every row at the bias, then accumulate x·wᵀ onto it. */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) yd[i * N + j] = bd[j];
        beta = 1.0f;
    }
    if (K == 0) {
        if (!b)
            for (int64_t i = 0; i < M * N; i++) yd[i] = 0.0f;
        return SVDC_OK;
    }
    svdc_sgemm(0, 1, M, N, K, 1.0f, xd, K, wd, K, beta, yd, N);
    return SVDC_OK;
}
