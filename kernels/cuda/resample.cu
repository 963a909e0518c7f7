// resample.cu — data movement on the GPU: nearest x2 upsampling, channel concat and the (0, 2, 1, 3) permute
// (a tiled shared-memory transpose when the last dim is 1, as for NCHW <-> NHWC). Values move bit for bit, except in
// permute_0213_axpby, which adds alpha * permuted + beta * r in float32 and rounds once when it stores.
#include "common.cuh"

namespace {

constexpr int THREADS = 256;

// y (P, 2H, 2W) from x (P, H, W): y[p, oh, ow] = x[p, oh / 2, ow / 2].
template <typename T> __global__ void upsample2x_kernel(const T *__restrict__ x, T *__restrict__ y, int64_t H,
                                                        int64_t W, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ow = i % (2 * W), t = i / (2 * W), oh = t % (2 * H), p = t / (2 * H);
        y[i] = x[(p * H + oh / 2) * W + ow / 2];
    }
}

// y[n] = [a[n] (na values) | b[n] (nb values)].
template <typename T> __global__ void concat_kernel(const T *__restrict__ a, const T *__restrict__ b,
                                                    T *__restrict__ y, int64_t na, int64_t nb, int64_t n) {
    const int64_t row = na + nb;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / row, j = i % row;
        y[i] = j < na ? a[r * na + j] : b[r * nb + (j - na)];
    }
}

// y (A, C, B, D) from x (A, B, C, D), one output element per step (reads are strided when D is small).
template <typename T> __global__ void permute_kernel(const T *__restrict__ x, T *__restrict__ y, int64_t B,
                                                     int64_t C, int64_t D, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t d = i % D;
        int64_t t = i / D;
        const int64_t b = t % B;
        t /= B;
        const int64_t c = t % C, a = t / C;
        y[i] = x[((a * B + b) * C + c) * D + d];
    }
}

// D == 1: a batch of (B, C) -> (C, B) transposes in 32x32 tiles through shared memory (both sides coalesced).
// Grid: x over C tiles, y over B tiles, z over A (<= 65535).
template <typename T> __global__ void transpose_kernel(const T *__restrict__ x, T *__restrict__ y, int64_t B,
                                                       int64_t C) {
    __shared__ T tile[32][33];
    const int64_t a = blockIdx.z, b0 = (int64_t)blockIdx.y * 32, c0 = (int64_t)blockIdx.x * 32;
    const T *in = x + a * B * C;
    T *out = y + a * B * C;
    for (int r = threadIdx.y; r < 32; r += blockDim.y) {
        const int64_t b = b0 + r, c = c0 + threadIdx.x;
        if (b < B && c < C) tile[r][threadIdx.x] = in[b * C + c];
    }
    __syncthreads();
    for (int r = threadIdx.y; r < 32; r += blockDim.y) {
        const int64_t c = c0 + r, b = b0 + threadIdx.x;
        if (b < B && c < C) out[c * B + b] = tile[threadIdx.x][r];
    }
}

// y[i] = alpha * x[permuted i] + beta * r[i], y (A, C, B, D) from x (A, B, C, D); r may be y (same index).
template <typename T> __global__ void permute_axpby_kernel(const T *__restrict__ x, const T *r, T *y, float alpha,
                                                           float beta, int64_t B, int64_t C, int64_t D, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t d = i % D;
        int64_t t = i / D;
        const int64_t b = t % B;
        t /= B;
        const int64_t c = t % C, a = t / C;
        const float p = to_f32(x[((a * B + b) * C + c) * D + d]);
        y[i] = from_f32<T>(alpha * p + beta * to_f32(r[i]));
    }
}

}  // namespace

svdc_status svdc_cuda_upsample_nearest2x(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t H = x->shape[2], W = x->shape[3], n = svdc_tensor_numel(y);
    if (!n) return SVDC_OK;
    return svdc_cuda_dispatch(x->dtype, "upsample_nearest2x", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        upsample2x_kernel<T><<<svdc_cuda_blocks(n, THREADS), THREADS, 0, dev->stream>>>(
            static_cast<const T *>(x->data), static_cast<T *>(y->data), H, W, n);
        SVDC_CUDA_LAUNCHED(dev, "upsample2x_kernel");
        return SVDC_OK;
    });
}

svdc_status svdc_cuda_concat_channels(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b,
                                      svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = a->shape[0];
    const int64_t na = N ? svdc_tensor_numel(a) / N : 0, nb = N ? svdc_tensor_numel(b) / N : 0;
    const int64_t n = N * (na + nb);
    if (!n) return SVDC_OK;
    return svdc_cuda_dispatch(a->dtype, "concat_channels", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        concat_kernel<T><<<svdc_cuda_blocks(n, THREADS), THREADS, 0, dev->stream>>>(
            static_cast<const T *>(a->data), static_cast<const T *>(b->data), static_cast<T *>(y->data), na, nb, n);
        SVDC_CUDA_LAUNCHED(dev, "concat_kernel");
        return SVDC_OK;
    });
}

svdc_status svdc_cuda_permute_0213(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t A = x->shape[0], B = x->shape[1], C = x->shape[2], D = x->shape[3];
    const int64_t n = A * B * C * D;
    if (!n) return SVDC_OK;
    return svdc_cuda_dispatch(x->dtype, "permute_0213", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        const int64_t tb = (B + 31) / 32, tc = (C + 31) / 32;
        if (D == 1 && A <= 65535 && tb <= 65535 && tc < ((int64_t)1 << 31)) {
            dim3 grid((unsigned)tc, (unsigned)tb, (unsigned)A), block(32, 8);
            transpose_kernel<T><<<grid, block, 0, dev->stream>>>(static_cast<const T *>(x->data),
                                                                 static_cast<T *>(y->data), B, C);
            SVDC_CUDA_LAUNCHED(dev, "transpose_kernel");
        } else {
            permute_kernel<T><<<svdc_cuda_blocks(n, THREADS), THREADS, 0, dev->stream>>>(
                static_cast<const T *>(x->data), static_cast<T *>(y->data), B, C, D, n);
            SVDC_CUDA_LAUNCHED(dev, "permute_kernel");
        }
        return SVDC_OK;
    });
}

svdc_status svdc_cuda_permute_0213_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta,
                                         const svdc_tensor *r, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t B = x->shape[1], C = x->shape[2], D = x->shape[3];
    const int64_t n = svdc_tensor_numel(x);
    if (!n) return SVDC_OK;
    return svdc_cuda_dispatch(x->dtype, "permute_0213_axpby", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        permute_axpby_kernel<T><<<svdc_cuda_blocks(n, THREADS), THREADS, 0, dev->stream>>>(
            static_cast<const T *>(x->data), static_cast<const T *>(r->data), static_cast<T *>(y->data), alpha, beta,
            B, C, D, n);
        SVDC_CUDA_LAUNCHED(dev, "permute_axpby_kernel");
        return SVDC_OK;
    });
}
