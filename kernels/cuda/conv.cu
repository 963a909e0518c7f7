// conv.cu — 2-D convolution (any kernel, stride, asymmetric zero padding) and the temporal (3,1,1) convolution on
// the GPU as GEMMs: a 1x1 stride-1 conv is one batched GEMM on the input as is; other kernels go through im2col in
// bounded chunks from the arena (whole images when they fit the budget, else runs of output rows); the temporal conv
// gathers the three frame taps of each image into one (3C, S) operand and runs one GEMM with K = 3C, so a 16-bit
// output is accumulated in fp32 and rounded once.
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

// w (O, C, 3) -> wk (O, 3C): wk[o, k*C + c] = w[o, c, k], the row-major A of the K = 3C GEMM.
template <typename T>
__global__ void temporal_weight_kernel(const T *__restrict__ w, T *__restrict__ wk, int64_t O, int64_t C) {
    const int64_t n = 3 * O * C;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t o = idx / (3 * C), kc = idx % (3 * C);
        const int64_t k = kc / C, c = kc % C;
        wk[idx] = w[(o * C + c) * 3 + k];
    }
}

// col (nimg, 3C, S) for images [n0, n0 + nimg) of x (N, C, S) in videos of F frames:
// col[img, k*C + c, s] = x[n + k - 1, c, s] with n = n0 + img, zero where frame n % F + k - 1 leaves the video.
// One block per col row (grid-stride), threads over S.
template <typename T>
__global__ void temporal_gather_kernel(const T *__restrict__ x, T *__restrict__ col, int64_t C, int64_t S, int64_t F,
                                       int64_t n0, int64_t rows) {
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const int64_t c = row % C, t = row / C;
        const int64_t k = t % 3, n = n0 + t / 3;
        const int64_t f = n % F + k - 1;
        const bool inside = f >= 0 && f < F;
        const T *src = x + ((inside ? n + k - 1 : n) * C + c) * S;
        T *dst = col + row * S;
        for (int64_t s = threadIdx.x; s < S; s += blockDim.x) dst[s] = inside ? src[s] : from_f32<T>(0.0f);
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
    const size_t es = svdc_dtype_size(dt);
    if (N == 0 || O == 0 || P == 0) return SVDC_OK;
    const bool direct = K == 0 || (kh == 1 && kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                                   p->pad_left == 0 && Ho == H && Wo == W);
    const bool measuring = svdc_cuda_measuring(ctx); /* a measuring pass (core/plan.h): scratch only */
    if (direct && measuring) return SVDC_OK;          /* no scratch */
    if (b && !measuring) SVDC_TRY(svdc_cuda_fill_bias(dev, b, y->data, N, O, P));
    const float beta = b ? 1.0f : 0.0f;

    if (direct) {
        /* 1x1: y[n] (O, P) = w (O, C) · x[n] (C, P), one GEMM per image in a strided batch (w shared). */
        return svdc_cuda_gemm(dev, dt, 0, O, P, C, 1.0f, w->data, C, 0, x->data, P, C * P, beta, y->data, P, O * P,
                              N);
    }

    const int64_t budget = im2col_budget_bytes() / (int64_t)es;
    const size_t mark = svdc_arena_mark(ctx->arena);
    if (measuring) {
        /* Take the im2col buffer the real call takes below, launch nothing. */
        const int64_t nb = K * P <= budget ? (budget / (K * P) < N ? budget / (K * P) : N) : 0;
        int64_t rows = nb ? 0 : budget / (K * Wo);
        if (!nb && rows < 1) rows = 1;
        if (rows > Ho) rows = Ho;
        const void *col = svdc_cuda_scratch(ctx, (size_t)(nb ? nb * K * P : K * rows * Wo) * es);
        svdc_arena_release(ctx->arena, mark);
        return col ? SVDC_OK : SVDC_ERR_MEMORY;
    }
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
    const int64_t F = num_frames, K = 3 * C;
    const svdc_dtype dt = y->dtype;
    const size_t es = svdc_dtype_size(dt);
    if (N == 0 || O == 0 || S == 0) return SVDC_OK;
    /* Images per chunk of the gathered operand (at least one, whatever the budget). */
    int64_t nb = im2col_budget_bytes() / (int64_t)es / (K * S > 0 ? K * S : 1);
    if (nb < 1) nb = 1;
    if (nb > N) nb = N;
    const size_t mark = svdc_arena_mark(ctx->arena);
    void *wk = svdc_cuda_scratch(ctx, (size_t)(O * K + 1) * es);
    void *col = wk ? svdc_cuda_scratch(ctx, (size_t)(nb * K * S + 1) * es) : nullptr;
    if (!col || svdc_cuda_measuring(ctx)) { /* a measuring pass (core/plan.h) only takes the scratch */
        svdc_arena_release(ctx->arena, mark);
        return col ? SVDC_OK : SVDC_ERR_MEMORY;
    }
    svdc_status s = svdc_cuda_dispatch(dt, "conv_temporal", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        if (O * K == 0) return SVDC_OK;
        temporal_weight_kernel<T><<<svdc_cuda_blocks(O * K, 256), 256, 0, dev->stream>>>(
            static_cast<const T *>(w->data), static_cast<T *>(wk), O, C);
        SVDC_CUDA_LAUNCHED(dev, "temporal_weight_kernel");
        return SVDC_OK;
    });
    if (s == SVDC_OK && b) s = svdc_cuda_fill_bias(dev, b, y->data, N, O, S);
    const char *xd = static_cast<const char *>(x->data);
    char *yd = static_cast<char *>(y->data);
    /* Per chunk: col (cnt, 3C, S) = the three taps of each image; y[n] (O, S) (+)= wk (O, 3C) · col[n] (3C, S) as
     * one strided batch: all three taps accumulate in fp32 inside one GEMM and y is rounded once. */
    for (int64_t n0 = 0; n0 < N && s == SVDC_OK; n0 += nb) {
        const int64_t cnt = N - n0 < nb ? N - n0 : nb;
        const int64_t rows = cnt * K;
        const int threads = S >= 256 ? 256 : S > 64 ? 128 : 64;
        s = svdc_cuda_dispatch(dt, "conv_temporal", [&](auto tag) -> svdc_status {
            using T = decltype(tag);
            if (K == 0) return SVDC_OK;
            temporal_gather_kernel<T><<<(unsigned)(rows < (1 << 20) ? rows : (1 << 20)), threads, 0, dev->stream>>>(
                reinterpret_cast<const T *>(xd), static_cast<T *>(col), C, S, F, n0, rows);
            SVDC_CUDA_LAUNCHED(dev, "temporal_gather_kernel");
            return SVDC_OK;
        });
        if (s == SVDC_OK)
            s = svdc_cuda_gemm(dev, dt, 0, O, S, K, 1.0f, wk, K, 0, col, S, K * S, b ? 1.0f : 0.0f,
                               yd + (size_t)(n0 * O * S) * es, S, O * S, cnt);
    }
    svdc_arena_release(ctx->arena, mark);
    return s;
}
