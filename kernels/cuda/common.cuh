// common.cuh — what every CUDA kernel file shares: per-device state (one stream, a lazily created cuBLAS handle),
// the CUDA-error -> svdc-status bridge with sticky-error bookkeeping, element-type helpers (float / half / bfloat16
// storage with float compute), and the entry points of each kernel file (the CUDA twin of kernels/cpu/kernels.h).
#ifndef SVDC_CUDA_COMMON_CUH
#define SVDC_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#ifdef SVDC_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

extern "C" {
#include "arena.h"
#include "backend.h"
#include "svdc.h"
#include "tensor.h"
}

// ---- per-device state (backend_cuda.cu) ----

struct svdc_cuda_device {
    int ordinal;
    cudaStream_t stream; // every kernel, copy and GEMM of this device runs on it, in order
#ifdef SVDC_HAVE_CUBLAS
    cublasHandle_t blas; // bound to `stream`; fp32 math without TF32
#endif
    int use_cublas;      // 0 when built without cuBLAS or SVDC_CUDA_NO_CUBLAS=1 (the fallback GEMM kernel runs)
};

// Makes `device` current, refuses a device that hit a sticky error, creates its stream/handle on first use.
svdc_status svdc_cuda_begin(int device, svdc_cuda_device **out);

// Records a failed CUDA call: the message names the call, the device and the CUDA error text; an error that leaves
// the context unusable (illegal address, launch failure, ...) marks the device so every later call is refused.
// Returns SVDC_ERR_MEMORY for an out-of-memory, else SVDC_ERR_DEVICE.
svdc_status svdc_cuda_error(int device, cudaError_t err, const char *what, const char *file, int line);

#define SVDC_CUDA_TRY(dev, call)                                                             \
    do {                                                                                     \
        cudaError_t svdc_err_ = (call);                                                      \
        if (svdc_err_ != cudaSuccess)                                                        \
            return svdc_cuda_error((dev)->ordinal, svdc_err_, #call, __FILE__, __LINE__);    \
    } while (0)

// After every kernel launch: a bad configuration shows here at once, a fault of an earlier kernel may show too.
#define SVDC_CUDA_LAUNCHED(dev, name)                                                        \
    do {                                                                                     \
        cudaError_t svdc_err_ = cudaGetLastError();                                          \
        if (svdc_err_ != cudaSuccess)                                                        \
            return svdc_cuda_error((dev)->ordinal, svdc_err_, name, __FILE__, __LINE__);     \
    } while (0)

// Kept for host helpers without a device at hand (device given explicitly).
#define SVDC_CUDA_CHECK_ON(device, call)                                                     \
    do {                                                                                     \
        cudaError_t svdc_err_ = (call);                                                      \
        if (svdc_err_ != cudaSuccess)                                                        \
            return svdc_cuda_error((device), svdc_err_, #call, __FILE__, __LINE__);          \
    } while (0)

#define SVDC_TRY(expr)                           \
    do {                                         \
        svdc_status svdc_try_ = (expr);          \
        if (svdc_try_ != SVDC_OK) return svdc_try_; \
    } while (0)

// ---- element types: storage T in {float, __half, __nv_bfloat16}, arithmetic in float ----

template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

// Round-to-nearest-even stores.
template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Calls f(T{}) with T the storage type of `dtype` (a host-side switch; f launches the kernels templated on T).
template <typename F> svdc_status svdc_cuda_dispatch(svdc_dtype dtype, const char *op, F &&f) {
    switch (dtype) {
    case SVDC_DTYPE_F32: return f(float{});
    case SVDC_DTYPE_F16: return f(__half{});
    case SVDC_DTYPE_BF16: return f(__nv_bfloat16{});
    }
    return svdc_fail(SVDC_ERR_INTERNAL, "%s: unknown dtype code %d on the cuda backend", op, (int)dtype);
}

// Blocks for a grid-stride loop over n elements (at least 1, at most a few waves of the largest GPUs).
static inline unsigned svdc_cuda_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536;
    return (unsigned)b;
}

// Scratch from the context's (device) arena, through the core's services (core_link.c); the caller releases to a
// mark when done. NULL on failure with the arena's message set.
static inline void *svdc_cuda_scratch(const svdc_ctx *ctx, size_t bytes) { return svdc_arena_alloc(ctx->arena, bytes); }

// A measuring pass (core/plan.h): the ops of the table's scratch_ops take their scratch as a real call would and
// return before any launch (the tensors are address space only).
static inline bool svdc_cuda_measuring(const svdc_ctx *ctx) { return ctx->backend && ctx->backend->measuring; }

// ---- GEMM (gemm.cu): row-major, strided-batched, fp32 accumulation, storage type `dtype` for A, B and C ----
// C[b] (M x N, ldc) = alpha * A[b] (M x K, lda) * op(B[b]) + beta * C[b], op(B) = B (K x N, ldb) or, trans_b,
// Bᵀ with B stored (N x K, ldb). beta == 0 never reads C. Strides in elements; batch >= 1.
svdc_status svdc_cuda_gemm(svdc_cuda_device *dev, svdc_dtype dtype, int trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb,
                           int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch);

// y (rows, O, P) = bias[o] broadcast (every (row, o) plane of P values); used to start GEMMs with beta = 1.
svdc_status svdc_cuda_fill_bias(svdc_cuda_device *dev, const svdc_tensor *bias, void *y, int64_t rows, int64_t O,
                                int64_t P);

// ---- backend entries: one svdc_cuda_<name> per op of the op list (op_list.h), file for file with kernels/cpu
// (gemm.cu, conv.cu, norm.cu, attention.cu, elementwise.cu, resample.cu) ----
#define SVDC_CUDA_PROTOTYPE_(name, params, args) svdc_status svdc_cuda_##name params;
extern "C" {
SVDC_OP_LIST(SVDC_CUDA_PROTOTYPE_)
}
#undef SVDC_CUDA_PROTOTYPE_

#endif
