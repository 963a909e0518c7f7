/* conv.c — 2-D convolution (any kernel, stride, asymmetric zero padding) and the temporal (3,1,1) convolution on the
 * CPU, both as BLAS SGEMMs: im2col in bounded chunks of output rows for conv2d (a 1x1 stride-1 conv is a GEMM on
 * the input as is), three frame-shifted GEMMs for the temporal conv. Scratch comes from the context's arena. */
#include <string.h>

#include "../../csrc/core/arena.h"
#include "blas.h"
#include "kernels.h"

/* The im2col buffer holds at most this many floats (16 MiB), whatever the layer size. */
#define IM2COL_BUDGET ((int64_t)4 << 20)

/* y[n] (O, P) starts as the bias broadcast over the P positions (or zero), so the GEMMs accumulate with beta = 1. */
static void init_rows(float *y, const float *bias, int64_t O, int64_t P) {
    for (int64_t o = 0; o < O; o++) {
        const float v = bias ? bias[o] : 0.0f;
        float *row = y + o * P;
        for (int64_t p = 0; p < P; p++) row[p] = v;
    }
}

svdc_status svdc_cpu_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            const svdc_conv2d_params *p, svdc_tensor *y) {
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    const int64_t Ho = y->shape[2], Wo = y->shape[3];
    const int64_t sh = p->stride_h, sw = p->stride_w, pt = p->pad_top, pl = p->pad_left;
    const int64_t K = C * kh * kw, P = Ho * Wo;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (N == 0 || O == 0 || P == 0) return SVDC_OK;

    if (kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && Ho == H && Wo == W) {
        /* 1x1: y[n] (O, HW) = w (O, C) · x[n] (C, HW) */
        for (int64_t n = 0; n < N; n++) {
            float *yn = yd + n * O * P;
            init_rows(yn, bd, O, P);
            if (C) svdc_sgemm(0, 0, O, P, C, 1.0f, wd, C, xd + n * C * P, P, 1.0f, yn, P);
        }
        return SVDC_OK;
    }

    /* Chunks of whole output rows: col (K, rows*Wo), col[(c*kh + i)*kw + j, r*Wo + ow] =
     * x[n, c, oh*sh - pt + i, ow*sw - pl + j] (zero outside the image). */
    int64_t rows = IM2COL_BUDGET / (K * Wo > 0 ? K * Wo : 1);
    if (rows < 1) rows = 1;
    if (rows > Ho) rows = Ho;
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *col = svdc_arena_alloc(ctx->arena, (size_t)(K * rows * Wo) * sizeof(float));
    if (!col) return SVDC_ERR_MEMORY;
    for (int64_t n = 0; n < N; n++) {
        const float *xn = xd + n * C * H * W;
        float *yn = yd + n * O * P;
        init_rows(yn, bd, O, P);
        for (int64_t oh0 = 0; oh0 < Ho; oh0 += rows) {
            const int64_t nr = Ho - oh0 < rows ? Ho - oh0 : rows, cols = nr * Wo;
#pragma omp parallel for schedule(static) if (K * cols > 65536)
            for (int64_t kk = 0; kk < K; kk++) {
                const int64_t c = kk / (kh * kw), i = (kk / kw) % kh, j = kk % kw;
                const float *plane = xn + c * H * W;
                float *out = col + kk * cols;
                for (int64_t r = 0; r < nr; r++) {
                    const int64_t ih = (oh0 + r) * sh - pt + i;
                    float *orow = out + r * Wo;
                    if (ih < 0 || ih >= H) {
                        memset(orow, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *irow = plane + ih * W;
                    if (sw == 1) {
                        /* Contiguous span: zeros left/right of the image, one copy in between. */
                        const int64_t iw0 = -pl + j;
                        int64_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0;
                        if (hi > Wo) hi = Wo;
                        if (lo > Wo) lo = Wo;
                        if (hi < lo) hi = lo;
                        for (int64_t ow = 0; ow < lo; ow++) orow[ow] = 0.0f;
                        if (hi > lo) memcpy(orow + lo, irow + iw0 + lo, (size_t)(hi - lo) * sizeof(float));
                        for (int64_t ow = hi; ow < Wo; ow++) orow[ow] = 0.0f;
                    } else {
                        for (int64_t ow = 0; ow < Wo; ow++) {
                            const int64_t iw = ow * sw - pl + j;
                            orow[ow] = (iw >= 0 && iw < W) ? irow[iw] : 0.0f;
                        }
                    }
                }
            }
            /* y[n][:, oh0*Wo : oh0*Wo + cols] += w (O, K) · col (K, cols) */
            svdc_sgemm(0, 0, O, cols, K, 1.0f, wd, K, col, cols, 1.0f, yn + oh0 * Wo, P);
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

svdc_status svdc_cpu_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                   const svdc_tensor *b, svdc_tensor *y) {
    const int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2] * x->shape[3], O = w->shape[0];
    const int64_t F = num_frames;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (N == 0 || O == 0 || S == 0) return SVDC_OK;
    /* w (O, C, 3) -> wk (3, O, C) so each tap is a plain row-major (O, C) matrix. */
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *wk = svdc_arena_alloc(ctx->arena, (size_t)(3 * O * C + 1) * sizeof(float));
    if (!wk) return SVDC_ERR_MEMORY;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < 3; k++) wk[(k * O + o) * C + c] = wd[(o * C + c) * 3 + k];
    for (int64_t n = 0; n < N; n++) {
        const int64_t f = n % F;
        float *yn = yd + n * O * S;
        init_rows(yn, bd, O, S);
        if (!C) continue;
        /* y[b, f] += w_k (O, C) · x[b, f + k - 1] (C, S) for the taps whose frame exists. */
        for (int64_t k = 0; k < 3; k++) {
            const int64_t src = f + k - 1;
            if (src < 0 || src >= F) continue;
            svdc_sgemm(0, 0, O, S, C, 1.0f, wk + k * O * C, C, xd + (n + k - 1) * C * S, S, 1.0f, yn, S);
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}
