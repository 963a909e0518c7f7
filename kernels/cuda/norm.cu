// norm.cu — group norm (per frame or pooled over the frames of a video, optional per-(row, channel) bias added
// first, optional fused SiLU) and layer norm on the GPU. As on the CPU, statistics are sums of (x - shift) with the group's (row's) first element as the shift, so the
// variance keeps its precision when |mean| >> std; per-thread float partials over a few values are combined in
// double; the biased variance is used; y = ((x - mean_hi) - mean_lo) * rstd * gamma + beta.
#include "common.cuh"

namespace {

constexpr int NORM_THREADS = 256;
constexpr int GN_PER_THREAD = 8;  // values each thread sums in float before the double reduction
constexpr int GN_CHUNK = NORM_THREADS * GN_PER_THREAD;

// Sum of a double pair over the block; the result is valid in thread 0.
__device__ double2 block_sum2(double a, double b) {
    __shared__ double sa[32], sb[32];
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = (blockDim.x + 31) / 32;
    __syncthreads();  // sa/sb may still be read by an earlier call
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    double ra = 0.0, rb = 0.0;
    if (warp == 0) {
        ra = lane < nwarps ? sa[lane] : 0.0;
        rb = lane < nwarps ? sb[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            ra += __shfl_xor_sync(0xffffffffu, ra, o);
            rb += __shfl_xor_sync(0xffffffffu, rb, o);
        }
    }
    return make_double2(ra, rb);
}

__device__ __forceinline__ float silu_f(float v) { return v / (1.0f + expf(-v)); }

// Pass 1: partial shifted sums. Block `blk` covers chunk `ch` of frame `f` of (video, group) `vg`; the group's values
// in one frame are the contiguous block x[(v*frames + f)*C + g*Cg .. + Cg) x S of L = Cg*S values.
// bias (N, C) or null: the value of plane (n, c) is x + bias[n * C + c], rounded to float first.
template <typename T>
__device__ __forceinline__ float gn_bias(const T *bias, int64_t plane) {
    return bias ? to_f32(bias[plane]) : 0.0f;
}

template <typename T>
__global__ void gn_partial_kernel(const T *__restrict__ x, const T *__restrict__ bias, double2 *__restrict__ partial,
                                  int64_t C, int64_t S, int64_t G, int64_t frames, int64_t nchunks) {
    const int64_t blk = blockIdx.x;
    const int64_t ch = blk % nchunks, f = (blk / nchunks) % frames, vg = blk / (nchunks * frames);
    const int64_t v = vg / G, g = vg % G, Cg = C / G, L = Cg * S;
    const int64_t plane0 = v * frames * C + g * Cg;  // the group's first plane in its first frame
    const T *group0 = x + plane0 * S;
    const float shift = to_f32(group0[0]) + gn_bias(bias, plane0);
    const T *base = group0 + f * C * S;
    const int64_t i0 = ch * GN_CHUNK, i1 = i0 + GN_CHUNK < L ? i0 + GN_CHUNK : L;
    float s = 0.0f, q = 0.0f;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
        const float d = (to_f32(base[i]) + gn_bias(bias, plane0 + f * C + i / S)) - shift;
        s += d;
        q = fmaf(d, d, q);
    }
    const double2 r = block_sum2((double)s, (double)q);
    if (threadIdx.x == 0) partial[blk] = r;  // index = (vg * frames + f) * nchunks + ch
}

// Pass 2 helpers: the block-wide sums of one (video, group)'s partials, and the shift its pass 1 subtracted (the
// group's first value in its first frame, plus that plane's bias when given).
__device__ double2 gn_group_sums(const double2 *__restrict__ partial, int64_t vg, int64_t per_group) {
    double s = 0.0, q = 0.0;
    for (int64_t i = threadIdx.x; i < per_group; i += blockDim.x) {
        const double2 p = partial[vg * per_group + i];
        s += p.x;
        q += p.y;
    }
    return block_sum2(s, q);
}

__device__ float gn_shift(const void *x, const void *bias, svdc_dtype dtype, int64_t plane0, int64_t S) {
    const int64_t first = plane0 * S;
    if (dtype == SVDC_DTYPE_F16)
        return __half2float(static_cast<const __half *>(x)[first]) +
               (bias ? __half2float(static_cast<const __half *>(bias)[plane0]) : 0.0f);
    if (dtype == SVDC_DTYPE_BF16)
        return __bfloat162float(static_cast<const __nv_bfloat16 *>(x)[first]) +
               (bias ? __bfloat162float(static_cast<const __nv_bfloat16 *>(bias)[plane0]) : 0.0f);
    return static_cast<const float *>(x)[first] + (bias ? static_cast<const float *>(bias)[plane0] : 0.0f);
}

// Pass 2: one block per (video, group): mean (as hi + lo floats) and rstd.
__global__ void gn_stats_kernel(const double2 *__restrict__ partial, const void *x, const void *bias, svdc_dtype dtype,
                                float3 *__restrict__ stats, int64_t C, int64_t S, int64_t G, int64_t frames,
                                int64_t per_group, float eps) {
    const int64_t vg = blockIdx.x;
    const double2 r = gn_group_sums(partial, vg, per_group);
    if (threadIdx.x == 0) {
        const int64_t v = vg / G, g = vg % G, Cg = C / G;
        const float shift = gn_shift(x, bias, dtype, v * frames * C + g * Cg, S);
        const double count = (double)(Cg * S * frames);
        const double ms = r.x / count;
        double var = r.y / count - ms * ms;
        if (var < 0.0) var = 0.0;
        const double mean = (double)shift + ms;
        const float hi = (float)mean;
        stats[vg] = make_float3(hi, (float)(mean - (double)hi), (float)(1.0 / sqrt(var + (double)eps)));
    }
}

// group_norm_moments, pass 2: one block per (video, group): (mean_hi, mean_lo, m2) as float32 triples.
__global__ void gn_moments_kernel(const double2 *__restrict__ partial, const void *x, svdc_dtype dtype,
                                  float *__restrict__ moments, int64_t C, int64_t S, int64_t G, int64_t frames,
                                  int64_t per_group) {
    const int64_t vg = blockIdx.x;
    const double2 r = gn_group_sums(partial, vg, per_group);
    if (threadIdx.x == 0) {
        const int64_t v = vg / G, g = vg % G, Cg = C / G;
        const float shift = gn_shift(x, nullptr, dtype, v * frames * C + g * Cg, S);
        const double ms = r.x / (double)(Cg * S * frames);
        double m2 = r.y - ms * r.x;
        if (m2 < 0.0) m2 = 0.0;
        const double mean = (double)shift + ms;
        const float hi = (float)mean;
        moments[vg * 3 + 0] = hi;
        moments[vg * 3 + 1] = (float)(mean - (double)hi);
        moments[vg * 3 + 2] = (float)m2;
    }
}

// Pass 3: normalise every value. x (N, C, S) with N = videos * frames; in place allowed (same index read, written).
template <typename T>
__global__ void gn_apply_kernel(const T *x, const T *__restrict__ bias, T *y, const float3 *__restrict__ stats,
                                const T *__restrict__ gamma, const T *__restrict__ beta, int64_t C, int64_t S,
                                int64_t G, int64_t frames, int apply_silu, int64_t total) {
    const int64_t Cg = C / G;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t plane = idx / S, c = plane % C, n = plane / C;
        const float3 st = stats[(n / frames) * G + c / Cg];
        const float a = st.z * (gamma ? to_f32(gamma[c]) : 1.0f), b = beta ? to_f32(beta[c]) : 0.0f;
        float v = (((to_f32(x[idx]) + gn_bias(bias, plane)) - st.x) - st.y) * a + b;
        if (apply_silu) v = silu_f(v);
        y[idx] = from_f32<T>(v);
    }
}

// Layer norm: one block per row of D values.
template <typename T>
__global__ void layer_norm_kernel(const T *x, T *y, const T *__restrict__ gamma, const T *__restrict__ beta,
                                  int64_t D, float eps) {
    const int64_t row = blockIdx.x;
    const T *in = x + row * D;
    T *out = y + row * D;
    const float shift = to_f32(in[0]);
    float s = 0.0f, q = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        const float d = to_f32(in[i]) - shift;
        s += d;
        q = fmaf(d, d, q);
    }
    const double2 r = block_sum2((double)s, (double)q);
    __shared__ float3 st;
    if (threadIdx.x == 0) {
        const double ms = r.x / (double)D;
        double var = r.y / (double)D - ms * ms;
        if (var < 0.0) var = 0.0;
        const double mean = (double)shift + ms;
        const float hi = (float)mean;
        st = make_float3(hi, (float)(mean - (double)hi), (float)(1.0 / sqrt(var + (double)eps)));
    }
    __syncthreads();
    const float3 m = st;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        const float v = ((to_f32(in[i]) - m.x) - m.y) * m.z * (gamma ? to_f32(gamma[i]) : 1.0f) +
                        (beta ? to_f32(beta[i]) : 0.0f);
        out[i] = from_f32<T>(v);
    }
}

}  // namespace

svdc_status svdc_cuda_group_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias, int num_groups,
                                 int frames, const svdc_tensor *gamma, const svdc_tensor *beta, float eps,
                                 int apply_silu, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t G = num_groups, F = frames, videos = N / F, L = (C / G) * S;
    if (L == 0 || videos == 0) return SVDC_OK;
    const int64_t nchunks = (L + GN_CHUNK - 1) / GN_CHUNK, per_group = F * nchunks;
    const int64_t nblocks = videos * G * per_group;
    if (nblocks >= ((int64_t)1 << 31) || videos * G >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "group_norm: %lld partial blocks exceed the CUDA grid", (long long)nblocks);
    const size_t mark = svdc_arena_mark(ctx->arena);
    double2 *partial = static_cast<double2 *>(svdc_cuda_scratch(ctx, (size_t)nblocks * sizeof(double2)));
    float3 *stats = partial ? static_cast<float3 *>(svdc_cuda_scratch(ctx, (size_t)(videos * G) * sizeof(float3)))
                            : nullptr;
    if (!stats || svdc_cuda_measuring(ctx)) { /* a measuring pass (core/plan.h) only takes the scratch */
        svdc_arena_release(ctx->arena, mark);  /* `partial` may have been allocated */
        return stats ? SVDC_OK : SVDC_ERR_MEMORY;
    }
    const svdc_status s = svdc_cuda_dispatch(x->dtype, "group_norm", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        const T *bd = bias ? static_cast<const T *>(bias->data) : nullptr;
        gn_partial_kernel<T><<<(unsigned)nblocks, NORM_THREADS, 0, dev->stream>>>(static_cast<const T *>(x->data),
                                                                                   bd, partial, C, S, G, F, nchunks);
        SVDC_CUDA_LAUNCHED(dev, "gn_partial_kernel");
        gn_stats_kernel<<<(unsigned)(videos * G), NORM_THREADS, 0, dev->stream>>>(
            partial, x->data, bias ? bias->data : nullptr, x->dtype, stats, C, S, G, F, per_group, eps);
        SVDC_CUDA_LAUNCHED(dev, "gn_stats_kernel");
        const int64_t total = N * C * S;
        gn_apply_kernel<T><<<svdc_cuda_blocks(total, NORM_THREADS), NORM_THREADS, 0, dev->stream>>>(
            static_cast<const T *>(x->data), bd, static_cast<T *>(y->data), stats,
            gamma ? static_cast<const T *>(gamma->data) : nullptr, beta ? static_cast<const T *>(beta->data) : nullptr,
            C, S, G, F, apply_silu, total);
        SVDC_CUDA_LAUNCHED(dev, "gn_apply_kernel");
        return SVDC_OK;
    });
    svdc_arena_release(ctx->arena, mark);
    return s;
}

svdc_status svdc_cuda_group_norm_moments(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                         svdc_tensor *moments) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t G = num_groups, F = frames, videos = N / F, L = (C / G) * S;
    if (L == 0 || videos == 0) return SVDC_OK;
    const int64_t nchunks = (L + GN_CHUNK - 1) / GN_CHUNK, per_group = F * nchunks;
    const int64_t nblocks = videos * G * per_group;
    if (nblocks >= ((int64_t)1 << 31) || videos * G >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "group_norm_moments: %lld partial blocks exceed the CUDA grid",
                         (long long)nblocks);
    const size_t mark = svdc_arena_mark(ctx->arena);
    double2 *partial = static_cast<double2 *>(svdc_cuda_scratch(ctx, (size_t)nblocks * sizeof(double2)));
    if (!partial || svdc_cuda_measuring(ctx)) { /* a measuring pass (core/plan.h) only takes the scratch */
        svdc_arena_release(ctx->arena, mark);
        return partial ? SVDC_OK : SVDC_ERR_MEMORY;
    }
    const svdc_status s = svdc_cuda_dispatch(x->dtype, "group_norm_moments", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        gn_partial_kernel<T><<<(unsigned)nblocks, NORM_THREADS, 0, dev->stream>>>(static_cast<const T *>(x->data),
                                                                                   nullptr, partial, C, S, G, F,
                                                                                   nchunks);
        SVDC_CUDA_LAUNCHED(dev, "gn_partial_kernel");
        gn_moments_kernel<<<(unsigned)(videos * G), NORM_THREADS, 0, dev->stream>>>(
            partial, x->data, x->dtype, static_cast<float *>(moments->data), C, S, G, F, per_group);
        SVDC_CUDA_LAUNCHED(dev, "gn_moments_kernel");
        return SVDC_OK;
    });
    svdc_arena_release(ctx->arena, mark);
    return s;
}

svdc_status svdc_cuda_group_norm_apply(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                       const svdc_tensor *stats, const svdc_tensor *gamma, const svdc_tensor *beta,
                                       int apply_silu, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t total = N * C * S;
    if (total == 0) return SVDC_OK;
    /* stats (videos, G, 3) float32 is the float3 array gn_apply_kernel reads: (mean_hi, mean_lo, rstd) */
    const float3 *st = static_cast<const float3 *>(stats->data);
    return svdc_cuda_dispatch(x->dtype, "group_norm_apply", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        gn_apply_kernel<T><<<svdc_cuda_blocks(total, NORM_THREADS), NORM_THREADS, 0, dev->stream>>>(
            static_cast<const T *>(x->data), nullptr, static_cast<T *>(y->data), st,
            gamma ? static_cast<const T *>(gamma->data) : nullptr, beta ? static_cast<const T *>(beta->data) : nullptr,
            C, S, (int64_t)num_groups, (int64_t)frames, apply_silu, total);
        SVDC_CUDA_LAUNCHED(dev, "gn_apply_kernel");
        return SVDC_OK;
    });
}

svdc_status svdc_cuda_layer_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                                 const svdc_tensor *beta, float eps, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t D = x->shape[x->ndim - 1], rows = svdc_tensor_numel(x) / D;
    if (rows == 0) return SVDC_OK;
    if (rows >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "layer_norm: %lld rows exceed the CUDA grid", (long long)rows);
    const int threads = D >= 1024 ? 256 : 128;
    return svdc_cuda_dispatch(x->dtype, "layer_norm", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        layer_norm_kernel<T><<<(unsigned)rows, threads, 0, dev->stream>>>(
            static_cast<const T *>(x->data), static_cast<T *>(y->data),
            gamma ? static_cast<const T *>(gamma->data) : nullptr, beta ? static_cast<const T *>(beta->data) : nullptr,
            D, eps);
        SVDC_CUDA_LAUNCHED(dev, "layer_norm_kernel");
        return SVDC_OK;
    });
}
