// attention.cu — multi-head attention on the GPU with a streaming (online) softmax, fp32 throughout (scores,
// probabilities and the output accumulator), whatever the storage type; memory never grows with Lq x Lk.
// Layout: q (B, Lq, H*D), k/v (B, Lk, H*D); head h occupies columns [h*D, (h+1)*D) of every token.
// Three kernels: a tiled one (32 queries x 64 keys per step, tiles in shared memory, head dim up to 128) for long key
// sequences; its wide variant for head dims above 128 (the VAE's single 512-wide head): scores over the whole head
// dim in 128-column chunks, the output in 128-column slices, one slice per block; and a warp-per-query-row one for
// short key sequences (Lk <= 64: temporal attention over frames, one-token cross-attention) of any head dim.
#include <atomic>
#include <cmath>

#include "common.cuh"

namespace {

constexpr int TQ = 32;       // queries per block (8 per warp)
constexpr int TK = 64;       // keys per online-softmax step (2 per lane)
constexpr int TWARPS = 4;    // warps per block
constexpr int ROWS = TQ / TWARPS;
constexpr int ROW_KERNEL_MAX_LK = 64;

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// One online-softmax step of a query row held by a warp, over the keys lane and lane + 32 of a 64-key tile: sa, sb
// are their scaled scores (-inf where masked). Updates the row's max m, sum l and NaN flag, writes the tile's
// probabilities *pa, *pb and returns the factor the row's output accumulator must be scaled by. Warp-uniform.
__device__ __forceinline__ float online_softmax_step(float sa, float sb, float &m, float &l, bool &nan_row, float *pa,
                                                     float *pb) {
    // A NaN score must reach the output as the CPU's softmax gives it (NaN for the whole row); fmaxf would drop it
    // and a tile of NaN scores would pass for a masked one.
    if (__any_sync(0xffffffffu, isnan(sa) || isnan(sb))) nan_row = true;
    const float mx = fmaxf(m, warp_max(fmaxf(sa, sb)));
    *pa = *pb = 0.0f;
    float corr = 1.0f;
    if (mx != -INFINITY) {  // a row with every key so far masked keeps its (empty) state
        *pa = expf(sa - mx);
        *pb = expf(sb - mx);
        corr = m == -INFINITY ? 0.0f : expf(m - mx);
        l = l * corr + warp_sum(*pa + *pb);
        m = mx;
    }
    return corr;
}

// Tiled kernel. NS = ceil(D / 32) column slots per lane (D <= 32 * NS <= 128). One block: TQ queries of one
// (batch, head); warp w owns query rows [8w, 8w + 8) of the tile: their scores, softmax state and output.
// Shared memory (floats): Qs [TQ][D], Ks [TK][D + 1] (padded: lanes read different key rows), Vs [TK][D],
// Ps [TQ][TK] (probabilities of the step; each warp reads back only its own rows).
template <typename T, int NS>
__global__ void __launch_bounds__(TWARPS * 32) attention_tiled_kernel(const T *__restrict__ q, const T *__restrict__ k,
                                                                      const T *__restrict__ v, T *__restrict__ y,
                                                                      int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                                                      int D, float scale, int causal) {
    extern __shared__ float smem[];
    float *Qs = smem, *Ks = Qs + TQ * D, *Vs = Ks + TK * (D + 1), *Ps = Vs + TK * D;
    const int64_t E = H * D, nqb = (Lq + TQ - 1) / TQ;
    const int64_t blk = blockIdx.x;
    const int64_t qb = blk % nqb, h = (blk / nqb) % H, b = blk / (nqb * H);
    const int64_t q0 = qb * TQ;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

    for (int e = tid; e < TQ * D; e += blockDim.x) {
        const int r = e / D, d = e % D;
        const int64_t gi = q0 + r;
        Qs[e] = gi < Lq ? to_f32(q[(b * Lq + gi) * E + h * D + d]) : 0.0f;
    }
    float m[ROWS], l[ROWS], acc[ROWS][NS];
    bool nan_row[ROWS];  // warp-uniform (online_softmax_step)
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        nan_row[r] = false;
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int t = 0; t < NS; t++) acc[r][t] = 0.0f;
    }
    // Causal: keys after the tile's last query are masked for every row of the tile.
    int64_t kend = Lk;
    if (causal && q0 + TQ < kend) kend = q0 + TQ;

    for (int64_t k0 = 0; k0 < kend; k0 += TK) {
        __syncthreads();  // the previous step's Ks/Vs (and, first time, nothing) are no longer read
        for (int e = tid; e < TK * D; e += blockDim.x) {
            const int j = e / D, d = e % D;
            const int64_t gj = k0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (gj < Lk) {
                const int64_t off = (b * Lk + gj) * E + h * D + d;
                kv = to_f32(k[off]);
                vv = to_f32(v[off]);
            }
            Ks[j * (D + 1) + d] = kv;
            Vs[j * D + d] = vv;
        }
        __syncthreads();

        // Scores of this warp's rows against keys lane and lane + 32.
        float s[ROWS][2];
#pragma unroll
        for (int r = 0; r < ROWS; r++) s[r][0] = s[r][1] = 0.0f;
        const float *k_a = Ks + lane * (D + 1), *k_b = Ks + (lane + 32) * (D + 1);
        const float *qrow = Qs + warp * ROWS * D;
        for (int d = 0; d < D; d++) {
            const float ka = k_a[d], kb = k_b[d];
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                const float qv = qrow[r * D + d];  // the same address across the warp: a broadcast
                s[r][0] = fmaf(qv, ka, s[r][0]);
                s[r][1] = fmaf(qv, kb, s[r][1]);
            }
        }
        const int64_t ja = k0 + lane, jb = k0 + lane + 32;
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            const int64_t gi = q0 + warp * ROWS + r;
            float sa = ja < Lk && !(causal && ja > gi) ? s[r][0] * scale : -INFINITY;
            float sb = jb < Lk && !(causal && jb > gi) ? s[r][1] * scale : -INFINITY;
            float pa, pb;
            const float corr = online_softmax_step(sa, sb, m[r], l[r], nan_row[r], &pa, &pb);
#pragma unroll
            for (int t = 0; t < NS; t++) acc[r][t] *= corr;
            Ps[(warp * ROWS + r) * TK + lane] = pa;
            Ps[(warp * ROWS + r) * TK + lane + 32] = pb;
        }
        __syncwarp();

        // acc[r][d] += sum_j P[r][j] * V[j][d], lane owning columns d = lane + 32 t.
        const int64_t nk = kend - k0 < TK ? kend - k0 : TK;
        const float *prow = Ps + warp * ROWS * TK;
        for (int j = 0; j < nk; j++) {
            float vv[NS];
#pragma unroll
            for (int t = 0; t < NS; t++) {
                const int d = lane + 32 * t;
                vv[t] = d < D ? Vs[j * D + d] : 0.0f;
            }
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                const float p = prow[r * TK + j];
#pragma unroll
                for (int t = 0; t < NS; t++) acc[r][t] = fmaf(p, vv[t], acc[r][t]);
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        const int64_t gi = q0 + warp * ROWS + r;
        if (gi >= Lq) continue;
        const float inv = nan_row[r] ? NAN : 1.0f / l[r];
        T *out = y + (b * Lq + gi) * E + h * D;
#pragma unroll
        for (int t = 0; t < NS; t++) {
            const int d = lane + 32 * t;
            if (d < D) out[d] = from_f32<T>(acc[r][t] * inv);
        }
    }
}

// Wide tiled kernel (D > 128). Block (blockIdx.x, blockIdx.y): TQ queries of one (batch, head) as in the tiled
// kernel, output columns [d0, d0 + DC) with d0 = DC * blockIdx.y. Per 64-key step the scores run over the whole
// head dim in DC-column chunks (the Q and K chunks staged in shared memory in turn), then the V slice of the
// block's columns is accumulated. Each slice recomputes the scores (D / DC times in all), which keeps shared memory
// at the D = 128 tiled kernel's size. Shared memory (floats): Qs [TQ][DC], Ks [TK][DC + 1], Vs [TK][DC], Ps [TQ][TK].
template <typename T, int NS>
__global__ void __launch_bounds__(TWARPS * 32) attention_wide_kernel(const T *__restrict__ q, const T *__restrict__ k,
                                                                     const T *__restrict__ v, T *__restrict__ y,
                                                                     int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                                                     int D, float scale, int causal) {
    constexpr int DC = 32 * NS;
    extern __shared__ float smem[];
    float *Qs = smem, *Ks = Qs + TQ * DC, *Vs = Ks + TK * (DC + 1), *Ps = Vs + TK * DC;
    const int64_t E = H * D, nqb = (Lq + TQ - 1) / TQ;
    const int64_t blk = blockIdx.x;
    const int64_t qb = blk % nqb, h = (blk / nqb) % H, b = blk / (nqb * H);
    const int64_t q0 = qb * TQ;
    const int d0 = DC * (int)blockIdx.y, dw = D - d0 < DC ? D - d0 : DC;  // this block's output columns
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

    float m[ROWS], l[ROWS], acc[ROWS][NS];
    bool nan_row[ROWS];  // warp-uniform (online_softmax_step)
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        nan_row[r] = false;
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int t = 0; t < NS; t++) acc[r][t] = 0.0f;
    }
    int64_t kend = Lk;
    if (causal && q0 + TQ < kend) kend = q0 + TQ;

    for (int64_t k0 = 0; k0 < kend; k0 += TK) {
        // Scores of this warp's rows against keys lane and lane + 32, over the head dim in DC-column chunks.
        float s[ROWS][2];
#pragma unroll
        for (int r = 0; r < ROWS; r++) s[r][0] = s[r][1] = 0.0f;
        for (int c0 = 0; c0 < D; c0 += DC) {
            const int cw = D - c0 < DC ? D - c0 : DC;
            __syncthreads();  // the previous chunk's Qs/Ks (and the previous step's Vs) are no longer read
            for (int e = tid; e < TQ * cw; e += blockDim.x) {
                const int r = e / cw, d = e % cw;
                const int64_t gi = q0 + r;
                Qs[r * DC + d] = gi < Lq ? to_f32(q[(b * Lq + gi) * E + h * D + c0 + d]) : 0.0f;
            }
            for (int e = tid; e < TK * cw; e += blockDim.x) {
                const int j = e / cw, d = e % cw;
                const int64_t gj = k0 + j;
                Ks[j * (DC + 1) + d] = gj < Lk ? to_f32(k[(b * Lk + gj) * E + h * D + c0 + d]) : 0.0f;
            }
            if (c0 == 0) {  // this step's V slice, published by the barrier below
                for (int e = tid; e < TK * dw; e += blockDim.x) {
                    const int j = e / dw, d = e % dw;
                    const int64_t gj = k0 + j;
                    Vs[j * DC + d] = gj < Lk ? to_f32(v[(b * Lk + gj) * E + h * D + d0 + d]) : 0.0f;
                }
            }
            __syncthreads();
            const float *k_a = Ks + lane * (DC + 1), *k_b = Ks + (lane + 32) * (DC + 1);
            const float *qrow = Qs + warp * ROWS * DC;
            for (int d = 0; d < cw; d++) {
                const float ka = k_a[d], kb = k_b[d];
#pragma unroll
                for (int r = 0; r < ROWS; r++) {
                    const float qv = qrow[r * DC + d];  // a broadcast
                    s[r][0] = fmaf(qv, ka, s[r][0]);
                    s[r][1] = fmaf(qv, kb, s[r][1]);
                }
            }
        }
        const int64_t ja = k0 + lane, jb = k0 + lane + 32;
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            const int64_t gi = q0 + warp * ROWS + r;
            float sa = ja < Lk && !(causal && ja > gi) ? s[r][0] * scale : -INFINITY;
            float sb = jb < Lk && !(causal && jb > gi) ? s[r][1] * scale : -INFINITY;
            float pa, pb;
            const float corr = online_softmax_step(sa, sb, m[r], l[r], nan_row[r], &pa, &pb);
#pragma unroll
            for (int t = 0; t < NS; t++) acc[r][t] *= corr;
            Ps[(warp * ROWS + r) * TK + lane] = pa;
            Ps[(warp * ROWS + r) * TK + lane + 32] = pb;
        }
        __syncwarp();

        // acc[r][t] += sum_j P[r][j] * V[j][d0 + lane + 32 t].
        const int64_t nk = kend - k0 < TK ? kend - k0 : TK;
        const float *prow = Ps + warp * ROWS * TK;
        for (int j = 0; j < nk; j++) {
            float vv[NS];
#pragma unroll
            for (int t = 0; t < NS; t++) {
                const int d = lane + 32 * t;
                vv[t] = d < dw ? Vs[j * DC + d] : 0.0f;
            }
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                const float p = prow[r * TK + j];
#pragma unroll
                for (int t = 0; t < NS; t++) acc[r][t] = fmaf(p, vv[t], acc[r][t]);
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        const int64_t gi = q0 + warp * ROWS + r;
        if (gi >= Lq) continue;
        const float inv = nan_row[r] ? NAN : 1.0f / l[r];
        T *out = y + (b * Lq + gi) * E + h * D + d0;
#pragma unroll
        for (int t = 0; t < NS; t++) {
            const int d = lane + 32 * t;
            if (d < dw) out[d] = from_f32<T>(acc[r][t] * inv);
        }
    }
}

// Row kernel: one warp per (batch, query, head). Columns are processed in slices of 32 * NS (one slice when
// D <= 32 * NS); every slice walks all keys with its own online softmax state (identical across slices).
template <typename T, int NS>
__global__ void attention_row_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
                                     T *__restrict__ y, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int D,
                                     float scale, int causal) {
    const int64_t warps_per_block = blockDim.x / 32;
    const int64_t row = blockIdx.x * warps_per_block + threadIdx.x / 32;  // (b * Lq + i) * H + h
    const int lane = threadIdx.x % 32;
    if (row >= B * Lq * H) return;
    const int64_t h = row % H, bi = row / H, b = bi / Lq, i = bi % Lq;
    const int64_t E = H * D;
    const T *qr = q + bi * E + h * D;
    const T *kh = k + b * Lk * E + h * D, *vh = v + b * Lk * E + h * D;
    T *out = y + bi * E + h * D;
    const int64_t nk = causal ? i + 1 : Lk;
    for (int d0 = 0; d0 < D; d0 += 32 * NS) {
        float m = -INFINITY, l = 0.0f, acc[NS];
#pragma unroll
        for (int t = 0; t < NS; t++) acc[t] = 0.0f;
        for (int64_t j = 0; j < nk; j++) {
            const T *kr = kh + j * E;
            float dot = 0.0f;
            for (int d = lane; d < D; d += 32) dot = fmaf(to_f32(qr[d]), to_f32(kr[d]), dot);
            const float s = warp_sum(dot) * scale;
            const float mx = fmaxf(m, s);
            const float corr = m == -INFINITY ? 0.0f : expf(m - mx);
            const float p = expf(s - mx);
            l = l * corr + p;
            m = mx;
            const T *vr = vh + j * E;
#pragma unroll
            for (int t = 0; t < NS; t++) {
                const int d = d0 + lane + 32 * t;
                acc[t] = acc[t] * corr + (d < D ? p * to_f32(vr[d]) : 0.0f);
            }
        }
        const float inv = 1.0f / l;
#pragma unroll
        for (int t = 0; t < NS; t++) {
            const int d = d0 + lane + 32 * t;
            if (d < D) out[d] = from_f32<T>(acc[t] * inv);
        }
    }
}

size_t tiled_smem_bytes(int D) { return (size_t)(TQ * D + TK * (D + 1) + TK * D + TQ * TK) * sizeof(float); }
// The wide kernel's shared memory is that of the tiled kernel at D = 32 * NS, whatever the head dim.
constexpr int WIDE_NS = 4;

template <typename T>
using attention_kernel_t = void (*)(const T *, const T *, const T *, T *, int64_t, int64_t, int64_t, int64_t, int, float,
                                    int);

// The dynamic shared-memory limit of one kernel instantiation, raised once per device to its bucket's maximum
// (D = 32 * NS): a per-launch value would race between host threads launching different D of one bucket.
template <typename T, int NS, bool WIDE>
svdc_status allow_tiled_smem(svdc_cuda_device *dev, attention_kernel_t<T> kernel) {
    static std::atomic<unsigned long long> done{0};  // bit i: set on device i (ordinals >= 64 set it every time)
    const unsigned long long bit = dev->ordinal < 64 ? 1ull << dev->ordinal : 0;
    if (bit && (done.load(std::memory_order_acquire) & bit)) return SVDC_OK;
    SVDC_CUDA_TRY(dev, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            (int)tiled_smem_bytes(32 * NS)));
    done.fetch_or(bit, std::memory_order_release);
    return SVDC_OK;
}

template <typename T, int NS>
svdc_status launch_tiled(svdc_cuda_device *dev, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                         svdc_tensor *y, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int D, float scale,
                         int causal) {
    const size_t smem = tiled_smem_bytes(D);
    const svdc_status smem_ok = allow_tiled_smem<T, NS, false>(dev, attention_tiled_kernel<T, NS>);
    if (smem_ok != SVDC_OK) return smem_ok;
    const int64_t blocks = ((Lq + TQ - 1) / TQ) * H * B;
    attention_tiled_kernel<T, NS><<<(unsigned)blocks, TWARPS * 32, smem, dev->stream>>>(
        static_cast<const T *>(q->data), static_cast<const T *>(k->data), static_cast<const T *>(v->data),
        static_cast<T *>(y->data), B, Lq, Lk, H, D, scale, causal);
    SVDC_CUDA_LAUNCHED(dev, "attention_tiled_kernel");
    return SVDC_OK;
}

template <typename T>
svdc_status launch_wide(svdc_cuda_device *dev, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                        svdc_tensor *y, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int D, float scale, int causal) {
    const svdc_status smem_ok = allow_tiled_smem<T, WIDE_NS, true>(dev, attention_wide_kernel<T, WIDE_NS>);
    if (smem_ok != SVDC_OK) return smem_ok;
    const int64_t blocks = ((Lq + TQ - 1) / TQ) * H * B;
    const unsigned slices = (unsigned)((D + 32 * WIDE_NS - 1) / (32 * WIDE_NS));
    attention_wide_kernel<T, WIDE_NS><<<dim3((unsigned)blocks, slices), TWARPS * 32, tiled_smem_bytes(32 * WIDE_NS),
                                        dev->stream>>>(
        static_cast<const T *>(q->data), static_cast<const T *>(k->data), static_cast<const T *>(v->data),
        static_cast<T *>(y->data), B, Lq, Lk, H, D, scale, causal);
    SVDC_CUDA_LAUNCHED(dev, "attention_wide_kernel");
    return SVDC_OK;
}

template <typename T, int NS>
svdc_status launch_rows(svdc_cuda_device *dev, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                        svdc_tensor *y, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int D, float scale,
                        int causal) {
    const int64_t rows = B * Lq * H, warps = 4;
    const int64_t blocks = (rows + warps - 1) / warps;
    attention_row_kernel<T, NS><<<(unsigned)blocks, (unsigned)(warps * 32), 0, dev->stream>>>(
        static_cast<const T *>(q->data), static_cast<const T *>(k->data), static_cast<const T *>(v->data),
        static_cast<T *>(y->data), B, Lq, Lk, H, D, scale, causal);
    SVDC_CUDA_LAUNCHED(dev, "attention_row_kernel");
    return SVDC_OK;
}

}  // namespace

svdc_status svdc_cuda_attention(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                                int num_heads, float scale, int causal, svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t B = q->shape[0], Lq = q->shape[1], E = q->shape[2], Lk = k->shape[1];
    const int64_t H = num_heads;
    const int D = (int)(E / H);
    if (B == 0 || Lq == 0) return SVDC_OK;
    const bool rows = Lk <= ROW_KERNEL_MAX_LK;
    const int64_t blocks = rows ? (B * Lq * H + 3) / 4 : ((Lq + TQ - 1) / TQ) * H * B;
    if (blocks >= ((int64_t)1 << 31))
        return svdc_fail(SVDC_ERR_SHAPE, "attention: %lld thread blocks exceed the CUDA grid", (long long)blocks);
    return svdc_cuda_dispatch(q->dtype, "attention", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        if (rows) {
            if (D <= 32) return launch_rows<T, 1>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
            if (D <= 64) return launch_rows<T, 2>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
            if (D <= 96) return launch_rows<T, 3>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
            return launch_rows<T, 4>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);  // D > 128: 128-wide slices
        }
        if (D <= 32) return launch_tiled<T, 1>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
        if (D <= 64) return launch_tiled<T, 2>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
        if (D <= 96) return launch_tiled<T, 3>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
        if (D <= 128) return launch_tiled<T, 4>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
        return launch_wide<T>(dev, q, k, v, y, B, Lq, Lk, H, D, scale, causal);
    });
}
