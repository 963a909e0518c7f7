// elementwise.cu — pointwise GPU kernels: GELU/GEGLU (exact erf, through erfc so the negative tail keeps its
// precision), SiLU, axpby, mul, broadcast bias adds, fill, copy, finiteness checks, dtype conversion
// f32 <-> f16 <-> bf16 (bit-exact with the CPU backend: round-to-nearest-even, NaN kept quiet, Inf kept) and the
// sinusoidal timestep embedding (evaluated as the CPU does, in double and rounded once).
#include "common.cuh"

#define GRID_STRIDE(i, n)                                                                 \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

namespace {

constexpr int THREADS = 256;

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2): no cancellation for negative x.
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }

template <typename T> __global__ void gelu_kernel(const T *x, T *y, int64_t n) {
    GRID_STRIDE(i, n) y[i] = from_f32<T>(gelu_f(to_f32(x[i])));
}
template <typename T> __global__ void silu_kernel(const T *x, T *y, int64_t n) {
    GRID_STRIDE(i, n) y[i] = from_f32<T>(silu_f(to_f32(x[i])));
}
// x rows [a (half) | gate (half)] -> y rows a * gelu(gate); n = y's element count.
template <typename T> __global__ void geglu_kernel(const T *__restrict__ x, T *__restrict__ y, int64_t half, int64_t n) {
    GRID_STRIDE(i, n) {
        const int64_t r = i / half, j = i % half;
        const T *row = x + r * 2 * half;
        y[i] = from_f32<T>(to_f32(row[j]) * gelu_f(to_f32(row[half + j])));
    }
}
// mode 0: alpha * a (b unread, so Inf/NaN in b cannot leak in as 0 * Inf); 1: a + b; 2: alpha * a + beta * b.
template <typename T> __global__ void axpby_kernel(float alpha, const T *a, float beta, const T *b, T *y, int mode,
                                                   int64_t n) {
    GRID_STRIDE(i, n) {
        float v;
        if (mode == 0) v = alpha * to_f32(a[i]);
        else if (mode == 1) v = to_f32(a[i]) + to_f32(b[i]);
        else v = alpha * to_f32(a[i]) + beta * to_f32(b[i]);
        y[i] = from_f32<T>(v);
    }
}
template <typename T> __global__ void mul_kernel(const T *a, const T *b, T *y, int64_t n) {
    GRID_STRIDE(i, n) y[i] = from_f32<T>(to_f32(a[i]) * to_f32(b[i]));
}
// x (N*C planes of S) + bias[plane].
template <typename T> __global__ void channel_bias_kernel(const T *x, const T *__restrict__ bias, T *y, int64_t S,
                                                          int64_t n) {
    GRID_STRIDE(i, n) y[i] = from_f32<T>(to_f32(x[i]) + to_f32(bias[i / S]));
}
// x (N, L, C) + v[n] on every token of row n.
template <typename T> __global__ void token_bias_kernel(const T *x, const T *__restrict__ v, T *y, int64_t L,
                                                        int64_t C, int64_t n) {
    GRID_STRIDE(i, n) y[i] = from_f32<T>(to_f32(x[i]) + to_f32(v[(i / (L * C)) * C + i % C]));
}
template <typename T> __global__ void fill_kernel(T *y, float value, int64_t n) {
    const T v = from_f32<T>(value);
    GRID_STRIDE(i, n) y[i] = v;
}
template <typename T> __global__ void finite_kernel(const T *__restrict__ x, int *bad, int64_t n) {
    int found = 0;
    GRID_STRIDE(i, n) found |= !isfinite(to_f32(x[i]));
    if (__any_sync(0xffffffffu, found) && threadIdx.x % 32 == 0) atomicOr(bad, 1);
}

// ---- dtype conversion, bit for bit the CPU's (kernels/cpu/elementwise.c) ----

__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) return __uint_as_float(sign | __float_as_uint((float)m * 5.9604644775390625e-8f));
    if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

__device__ __forceinline__ uint16_t f32_to_f16_bits(float f) {
    const uint32_t x = __float_as_uint(f), sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        const float v = __fadd_rn(__uint_as_float(ax), 0.5f);  // f16 subnormal unit at float32's last bit
        return (uint16_t)(sign | (__float_as_uint(v) - 0x3f000000u));
    }
    const uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd;
    return (uint16_t)(sign | (ax >> 13));
}

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    const uint32_t x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

__global__ void convert_kernel(const void *x, svdc_dtype from, void *y, svdc_dtype to, int64_t n) {
    GRID_STRIDE(i, n) {
        float v;
        if (from == SVDC_DTYPE_F16) v = f16_bits_to_f32(static_cast<const uint16_t *>(x)[i]);
        else if (from == SVDC_DTYPE_BF16) v = bf16_bits_to_f32(static_cast<const uint16_t *>(x)[i]);
        else v = static_cast<const float *>(x)[i];
        if (to == SVDC_DTYPE_F16) static_cast<uint16_t *>(y)[i] = f32_to_f16_bits(v);
        else if (to == SVDC_DTYPE_BF16) static_cast<uint16_t *>(y)[i] = f32_to_bf16_bits(v);
        else static_cast<float *>(y)[i] = v;
    }
}

// As diffusers' get_timestep_embedding in float32, with exp/sin/cos in double rounded once (as the CPU does).
template <typename T> __global__ void timestep_kernel(const T *__restrict__ t, T *__restrict__ y, int64_t N, int dim) {
    const int half = dim / 2;
    const float neg_log_period = (float)(-9.210340371976184);  // -ln(10000), rounded as the CPU's (float)(-log(1e4))
    const int64_t n = N * (int64_t)half;
    GRID_STRIDE(idx, n) {
        const int64_t i = idx / half;
        const int kk = (int)(idx % half);
        const float exponent = __fdiv_rn(__fmul_rn(neg_log_period, (float)kk), (float)half);
        const float freq = (float)exp((double)exponent);
        const float arg = __fmul_rn(to_f32(t[i]), freq);
        T *row = y + i * dim;
        row[kk] = from_f32<T>((float)cos((double)arg));
        row[half + kk] = from_f32<T>((float)sin((double)arg));
    }
    if (dim % 2) GRID_STRIDE(i, N) y[i * dim + dim - 1] = from_f32<T>(0.0f);
}

template <typename F> svdc_status run_typed(const svdc_ctx *ctx, svdc_dtype dt, const char *op, F &&launch) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    return svdc_cuda_dispatch(dt, op, [&](auto tag) -> svdc_status {
        launch(tag, dev);
        SVDC_CUDA_LAUNCHED(dev, op);
        return SVDC_OK;
    });
}

#define LAUNCH(kernel, n) kernel<T><<<svdc_cuda_blocks((n), THREADS), THREADS, 0, dev->stream>>>
#define PTR(t) static_cast<T *>((t)->data)
#define CPTR(t) static_cast<const T *>((t)->data)

}  // namespace

svdc_status svdc_cuda_gelu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(x);
    if (!n) return SVDC_OK;
    return run_typed(ctx, x->dtype, "gelu_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(gelu_kernel, n)(CPTR(x), PTR(y), n);
    });
}

svdc_status svdc_cuda_silu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(x);
    if (!n) return SVDC_OK;
    return run_typed(ctx, x->dtype, "silu_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(silu_kernel, n)(CPTR(x), PTR(y), n);
    });
}

svdc_status svdc_cuda_geglu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    const int64_t half = x->shape[x->ndim - 1] / 2, n = svdc_tensor_numel(y);
    if (!n || !half) return SVDC_OK;
    return run_typed(ctx, x->dtype, "geglu_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(geglu_kernel, n)(CPTR(x), PTR(y), half, n);
    });
}

svdc_status svdc_cuda_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                            svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(a);
    if (!n) return SVDC_OK;
    const int mode = beta == 0.0f ? 0 : (alpha == 1.0f && beta == 1.0f ? 1 : 2);
    return run_typed(ctx, a->dtype, "axpby_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(axpby_kernel, n)(alpha, CPTR(a), beta, CPTR(b), PTR(y), mode, n);
    });
}

svdc_status svdc_cuda_mul(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(a);
    if (!n) return SVDC_OK;
    return run_typed(ctx, a->dtype, "mul_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(mul_kernel, n)(CPTR(a), CPTR(b), PTR(y), n);
    });
}

svdc_status svdc_cuda_add_channel_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                       svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(x), NC = x->shape[0] * x->shape[1];
    if (!n) return SVDC_OK;
    const int64_t S = n / NC;
    return run_typed(ctx, x->dtype, "channel_bias_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(channel_bias_kernel, n)(CPTR(x), CPTR(bias), PTR(y), S, n);
    });
}

svdc_status svdc_cuda_add_token_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(x), L = x->shape[1], C = x->shape[2];
    if (!n) return SVDC_OK;
    return run_typed(ctx, x->dtype, "token_bias_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(token_bias_kernel, n)(CPTR(x), CPTR(v), PTR(y), L, C, n);
    });
}

svdc_status svdc_cuda_fill(const svdc_ctx *ctx, svdc_tensor *y, float value) {
    const int64_t n = svdc_tensor_numel(y);
    if (!n) return SVDC_OK;
    return run_typed(ctx, y->dtype, "fill_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        LAUNCH(fill_kernel, n)(PTR(y), value, n);
    });
}

svdc_status svdc_cuda_copy(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const size_t bytes = svdc_tensor_bytes(x);
    if (bytes && x->data != y->data)
        SVDC_CUDA_TRY(dev, cudaMemcpyAsync(y->data, x->data, bytes, cudaMemcpyDeviceToDevice, dev->stream));
    return SVDC_OK;
}

svdc_status svdc_cuda_check_finite(const svdc_ctx *ctx, const svdc_tensor *x, int *all_finite) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    *all_finite = 1;
    const int64_t n = svdc_tensor_numel(x);
    if (!n) return SVDC_OK;
    const size_t mark = svdc_arena_mark(ctx->arena);
    int *flag = static_cast<int *>(svdc_cuda_scratch(ctx, sizeof(int)));
    if (!flag || svdc_cuda_measuring(ctx)) { /* a measuring pass (core/plan.h) only takes the scratch */
        svdc_arena_release(ctx->arena, mark);
        return flag ? SVDC_OK : SVDC_ERR_MEMORY;
    }
    int bad = 0;
    svdc_status s = SVDC_OK;
    cudaError_t err = cudaMemsetAsync(flag, 0, sizeof(int), dev->stream);
    if (err != cudaSuccess) s = svdc_cuda_error(dev->ordinal, err, "cudaMemsetAsync", __FILE__, __LINE__);
    if (s == SVDC_OK)
        s = svdc_cuda_dispatch(x->dtype, "check_finite", [&](auto tag) -> svdc_status {
            using T = decltype(tag);
            LAUNCH(finite_kernel, n)(CPTR(x), flag, n);
            SVDC_CUDA_LAUNCHED(dev, "finite_kernel");
            return SVDC_OK;
        });
    if (s == SVDC_OK) {
        err = cudaMemcpyAsync(&bad, flag, sizeof(int), cudaMemcpyDeviceToHost, dev->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(dev->stream);
        if (err != cudaSuccess) s = svdc_cuda_error(dev->ordinal, err, "check_finite readback", __FILE__, __LINE__);
    }
    svdc_arena_release(ctx->arena, mark);
    if (s == SVDC_OK) *all_finite = !bad;
    return s;
}

svdc_status svdc_cuda_convert(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t n = svdc_tensor_numel(x);
    if (!n) return SVDC_OK;
    if (x->dtype == y->dtype) {
        if (x->data != y->data)
            SVDC_CUDA_TRY(dev, cudaMemcpyAsync(y->data, x->data, svdc_tensor_bytes(x), cudaMemcpyDeviceToDevice,
                                               dev->stream));
        return SVDC_OK;
    }
    convert_kernel<<<svdc_cuda_blocks(n, THREADS), THREADS, 0, dev->stream>>>(x->data, x->dtype, y->data, y->dtype, n);
    SVDC_CUDA_LAUNCHED(dev, "convert_kernel");
    return SVDC_OK;
}

svdc_status svdc_cuda_timestep_embedding(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y) {
    const int64_t N = t->shape[0];
    if (!N) return SVDC_OK;
    return run_typed(ctx, y->dtype, "timestep_kernel", [&](auto tag, svdc_cuda_device *dev) {
        using T = decltype(tag);
        const int64_t n = N * (dim / 2) > N ? N * (dim / 2) : N;
        LAUNCH(timestep_kernel, n)(CPTR(t), PTR(y), N, dim);
    });
}
