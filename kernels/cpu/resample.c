/* resample.c — data movement on the CPU: nearest x2 upsampling, channel concat and the (0, 2, 1, 3) permute (alone, or
 * with the weighted sum that follows it fused in: permute_0213_axpby). Every output value is written by one thread
 * from its own inputs, so the result does not depend on the thread count. */
#include <string.h>

#include "kernels.h"

svdc_status SVDC_CPU_KERNEL(upsample_nearest2x)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    const int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    const float *xd = x->data;
    float *yd = y->data;
    /* (N*C, H, W) -> (N*C, 2H, 2W): input row h becomes output rows 2h and 2h+1, each pixel doubled. */
#pragma omp parallel for schedule(static) if (NC * H * W > 16384)
    for (int64_t r = 0; r < NC * H; r++) {
        const float *in = xd + r * W;
        float *out = yd + r * 4 * W; /* plane p, row h -> rows 2h, 2h+1 start at ((p*H + h) * 2) * 2W */
        for (int64_t w = 0; w < W; w++) out[2 * w] = out[2 * w + 1] = in[w];
        memcpy(out + 2 * W, out, (size_t)(2 * W) * sizeof(float));
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(concat_channels)(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b,
                                     svdc_tensor *y) {
    (void)ctx;
    const int64_t N = a->shape[0];
    /* Per row n, a[n] (C1*S values) then b[n] (C2*S values) are contiguous blocks of y[n]. */
    const int64_t na = N ? svdc_tensor_numel(a) / N : 0, nb = N ? svdc_tensor_numel(b) / N : 0;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (N * (na + nb) > 65536)
    for (int64_t n = 0; n < N; n++) {
        float *out = yd + n * (na + nb);
        if (na) memcpy(out, ad + n * na, (size_t)na * sizeof(float));
        if (nb) memcpy(out + na, bd + n * nb, (size_t)nb * sizeof(float));
    }
    return SVDC_OK;
}

/* The D == 1 case of the (0, 2, 1, 3) permutes: A (B, C) -> (C, B) matrix transposes in 32x32 tiles so both sides
 * stay in cache. Without r, y = x^T; with r, y = alpha * x^T + beta * r (r may be y: each value is read before it is
 * written). */
static svdc_status transpose_tiles(int64_t A, int64_t B, int64_t C, const float *xd, float alpha, const float *rd,
                                   float beta, float *yd) {
    const int64_t T = 32, tb = (B + T - 1) / T, tc = (C + T - 1) / T;
#pragma omp parallel for schedule(static) collapse(2) if (A * B * C > 16384)
    for (int64_t a = 0; a < A; a++)
        for (int64_t t = 0; t < tb * tc; t++) {
            const int64_t b0 = (t / tc) * T, c0 = (t % tc) * T;
            const int64_t b1 = b0 + T < B ? b0 + T : B, c1 = c0 + T < C ? c0 + T : C;
            const float *in = xd + a * B * C;
            float *out = yd + a * B * C;
            if (!rd) {
                for (int64_t b = b0; b < b1; b++)
                    for (int64_t c = c0; c < c1; c++) out[c * B + b] = in[b * C + c];
                continue;
            }
            const float *res = rd + a * B * C;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t b = b0; b < b1; b++) out[c * B + b] = alpha * in[b * C + c] + beta * res[c * B + b];
        }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(permute_0213)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    const int64_t A = x->shape[0], B = x->shape[1], C = x->shape[2], D = x->shape[3];
    const float *xd = x->data;
    float *yd = y->data;
    if (D == 1) return transpose_tiles(A, B, C, xd, 1.0f, NULL, 0.0f, yd);
    /* x[a, b, c, :] -> y[a, c, b, :]: rows of D values move as blocks. */
#pragma omp parallel for schedule(static) collapse(2) if (A * B * C * D > 16384)
    for (int64_t a = 0; a < A; a++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t b = 0; b < B; b++)
                memcpy(yd + ((a * C + c) * B + b) * D, xd + ((a * B + b) * C + c) * D, (size_t)D * sizeof(float));
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(permute_0213_axpby)(const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta,
                                                const svdc_tensor *r, svdc_tensor *y) {
    (void)ctx;
    const int64_t A = x->shape[0], B = x->shape[1], C = x->shape[2], D = x->shape[3];
    const float *xd = x->data, *rd = r->data;
    float *yd = y->data;
    /* y[a, c, b, d] = alpha * x[a, b, c, d] + beta * r[a, c, b, d]; r may be y (each value read before written). */
    if (D == 1) return transpose_tiles(A, B, C, xd, alpha, rd, beta, yd);
#pragma omp parallel for schedule(static) collapse(2) if (A * B * C * D > 16384)
    for (int64_t a = 0; a < A; a++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t b = 0; b < B; b++) {
                const float *in = xd + ((a * B + b) * C + c) * D;
                const int64_t o = ((a * C + c) * B + b) * D;
                for (int64_t d = 0; d < D; d++) yd[o + d] = alpha * in[d] + beta * rd[o + d];
            }
    return SVDC_OK;
}
