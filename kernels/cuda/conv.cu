// conv.cu — 2-D convolution (any kernel, stride, asymmetric zero padding) and the temporal (3,1,1) convolution on
// the GPU as GEMMs: a 1x1 stride-1 conv is one batched GEMM on the input as is; other kernels go through im2col in
// bounded chunks from the arena (whole images when they fit the budget, else runs of output rows); the temporal conv
// is three frame-shifted batched GEMMs accumulating into the output.
#include "common.cuh"

#include <cstdlib>

// The im2col buffer of one chunk holds at most this many bytes, whatever the layer size. SVDC_CUDA_IM2COL_BUDGET
// (bytes) lowers it so tests reach the row-run and multi-chunk paths with small convs.
#define IM2COL_BUDGET_BYTES ((int64_t)256 << 20)

static int64_t im2col_budget_bytes() {
    const char *env = getenv("SVDC_CUDA_IM2COL_BUDGET");
    const long long v = env ? atoll(env) : 0;
    return v > 0 && v < IM2COL_BUDGET_BYTES ? (int64_t)v : IM2COL_BUDGET_BYTES;
}

namespace {

// col (nimg, K, nr*Wo) for output rows [oh0, oh0 + nr) of images x[0..nimg):
// col[img, (c*kh + i)*kw + j, r*Wo + ow] = x[img, c, (oh0 + r)*sh - pt + i, ow*sw - pl + j] (zero outside).
// One block per col row ((img*K + kk)*nr + r, grid-stride): the 64-bit divisions happen once per row, and the
// threads walk the row's Wo outputs with 32-bit index maths.
template <typename T>
__global__ void im2col_kernel(const T *__restrict__ x, T *__restrict__ col, int64_t C, int64_t H, int64_t W, int kh,
                              int kw, int sh, int sw, int pt, int pl, int Wo, int64_t oh0, int64_t nr, int64_t rows) {
    const int64_t K = C * kh * kw;
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const int64_t r = row % nr, t = row / nr;
        const int64_t kk = t % K, img = t / K;
        const int64_t c = kk / (kh * kw);
        const int i = (int)((kk / kw) % kh), j = (int)(kk % kw);
        const int64_t ih = (oh0 + r) * sh - pt + i;
        const bool row_inside = ih >= 0 && ih < H;
        const T *src = x + ((img * C + c) * H + (row_inside ? ih : 0)) * W;
        T *dst = col + row * Wo;
        const int Wi = (int)W;
        for (int ow = threadIdx.x; ow < Wo; ow += blockDim.x) {
            const int iw = ow * sw - pl + j;
            dst[ow] = row_inside && iw >= 0 && iw < Wi ? src[iw] : from_f32<T>(0.0f);
        }
    }
}

// w (O, C, 3) -> wk (3, O, C): each tap becomes a row-major (O, C) matrix.
template <typename T>
__global__ void temporal_weight_kernel(const T *__restrict__ w, T *__restrict__ wk, int64_t O, int64_t C) {
    const int64_t n = 3 * O * C;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t k = idx / (O * C), oc = idx % (O * C);
        wk[idx] = w[oc * 3 + k];
    }
}

}  // namespace

svdc_status svdc_cuda_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                             const svdc_conv2d_params *p, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    const int64_t Ho = y->shape[2], Wo = y->shape[3];
    const int64_t K = C * kh * kw, P = Ho * Wo;
    const svdc_dtype dt = y->dtype;
    const size_t es = svdc_dtype_width(dt);
    if (N == 0 || O == 0 || P == 0) return SVDC_OK;
    if (b) SVDC_TRY(svdc_cuda_fill_bias(dev, b, y->data, N, O, P));
    const float beta = b ? 1.0f : 0.0f;

    if (K == 0 || (kh == 1 && kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                   p->pad_left == 0 && Ho == H && Wo == W)) {
        /* 1x1: y[n] (O, P) = w (O, C) · x[n] (C, P), one GEMM per image in a strided batch (w shared). */
        return svdc_cuda_gemm(dev, dt, 0, O, P, C, 1.0f, w->data, C, 0, x->data, P, C * P, beta, y->data, P, O * P,
                              N);
    }

    const int64_t budget = im2col_budget_bytes() / (int64_t)es;
    const size_t mark = svdc_arena_mark(ctx->arena);
    svdc_status s = SVDC_OK;
    const char *xd = static_cast<const char *>(x->data);
    char *yd = static_cast<char *>(y->data);
    auto im2col = [&](const char *xn, int64_t nimg, int64_t oh0, int64_t nr, void *col) -> svdc_status {
        const int64_t rows = nimg * K * nr;
        const int threads = Wo >= 256 ? 256 : Wo > 64 ? 128 : 64;
        const unsigned blocks = (unsigned)(rows < (1 << 20) ? rows : (1 << 20));
        return svdc_cuda_dispatch(dt, "conv2d", [&](auto tag) -> svdc_status {
            using T = decltype(tag);
            im2col_kernel<T><<<blocks, threads, 0, dev->stream>>>(
                reinterpret_cast<const T *>(xn), static_cast<T *>(col), C, H, W, (int)kh, (int)kw, p->stride_h,
                p->stride_w, p->pad_top, p->pad_left, (int)Wo, oh0, nr, rows);
            SVDC_CUDA_LAUNCHED(dev, "im2col_kernel");
            return SVDC_OK;
        });
    };
    if (K * P <= budget) {
        /* Whole images: col (nb, K, P), y[n] (O, P) += w (O, K) · col[n] (K, P) as one strided batch. */
        int64_t nb = budget / (K * P);
        if (nb > N) nb = N;
        void *col = svdc_cuda_scratch(ctx, (size_t)(nb * K * P) * es);
        if (!col) return SVDC_ERR_MEMORY;
        for (int64_t n0 = 0; n0 < N && s == SVDC_OK; n0 += nb) {
            const int64_t cnt = N - n0 < nb ? N - n0 : nb;
            s = im2col(xd + (size_t)(n0 * C * H * W) * es, cnt, 0, Ho, col);
            if (s == SVDC_OK)
                s = svdc_cuda_gemm(dev, dt, 0, O, P, K, 1.0f, w->data, K, 0, col, P, K * P, beta,
                                   yd + (size_t)(n0 * O * P) * es, P, O * P, cnt);
        }
    } else {
        /* Runs of output rows of one image: col (K, nr*Wo), y[n][:, oh0*Wo : (oh0+nr)*Wo] += w · col. */
        int64_t rows = budget / (K * Wo);
        if (rows < 1) rows = 1;
        if (rows > Ho) rows = Ho;
        void *col = svdc_cuda_scratch(ctx, (size_t)(K * rows * Wo) * es);
        if (!col) return SVDC_ERR_MEMORY;
        for (int64_t n = 0; n < N && s == SVDC_OK; n++)
            for (int64_t oh0 = 0; oh0 < Ho && s == SVDC_OK; oh0 += rows) {
                const int64_t nr = Ho - oh0 < rows ? Ho - oh0 : rows;
                s = im2col(xd + (size_t)(n * C * H * W) * es, 1, oh0, nr, col);
                if (s == SVDC_OK)
                    s = svdc_cuda_gemm(dev, dt, 0, O, nr * Wo, K, 1.0f, w->data, K, 0, col, nr * Wo, 0, beta,
                                       yd + (size_t)(n * O * P + oh0 * Wo) * es, P, 0, 1);
            }
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}

svdc_status svdc_cuda_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                    const svdc_tensor *b, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2] * x->shape[3], O = w->shape[0];
    const int64_t F = num_frames, videos = N / F;
    const svdc_dtype dt = y->dtype;
    const size_t es = svdc_dtype_width(dt);
    if (N == 0 || O == 0 || S == 0) return SVDC_OK;
    const size_t mark = svdc_arena_mark(ctx->arena);
    void *wk = svdc_cuda_scratch(ctx, (size_t)(3 * O * C + 1) * es);
    if (!wk) return SVDC_ERR_MEMORY;
    svdc_status s = svdc_cuda_dispatch(dt, "conv_temporal", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        const int64_t n = 3 * O * C;
        if (n == 0) return SVDC_OK;
        temporal_weight_kernel<T><<<svdc_cuda_blocks(n, 256), 256, 0, dev->stream>>>(
            static_cast<const T *>(w->data), static_cast<T *>(wk), O, C);
        SVDC_CUDA_LAUNCHED(dev, "temporal_weight_kernel");
        return SVDC_OK;
    });
    if (s == SVDC_OK && b) s = svdc_cuda_fill_bias(dev, b, y->data, N, O, S);
    const char *xd = static_cast<const char *>(x->data);
    char *yd = static_cast<char *>(y->data);
    const char *wkd = static_cast<const char *>(wk);
    /* Centre tap first (every row, writes y when there is no bias): y[n] (O, S) (+)= w_1 (O, C) · x[n] (C, S). */
    if (s == SVDC_OK)
        s = svdc_cuda_gemm(dev, dt, 0, O, S, C, 1.0f, wkd + (size_t)(O * C) * es, C, 0, xd, S, C * S,
                           b ? 1.0f : 0.0f, yd, S, O * S, N);
    /* Per video: y[v, f] += w_0 · x[v, f - 1] for f >= 1, and y[v, f] += w_2 · x[v, f + 1] for f <= F - 2. */
    for (int64_t v = 0; v < videos && F > 1 && s == SVDC_OK; v++) {
        const int64_t r0 = v * F;
        s = svdc_cuda_gemm(dev, dt, 0, O, S, C, 1.0f, wkd, C, 0, xd + (size_t)(r0 * C * S) * es, S, C * S, 1.0f,
                           yd + (size_t)((r0 + 1) * O * S) * es, S, O * S, F - 1);
        if (s == SVDC_OK)
            s = svdc_cuda_gemm(dev, dt, 0, O, S, C, 1.0f, wkd + (size_t)(2 * O * C) * es, C, 0,
                               xd + (size_t)((r0 + 1) * C * S) * es, S, C * S, 1.0f, yd + (size_t)(r0 * O * S) * es,
                               S, O * S, F - 1);
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}
