// gemm.cu — the GEMM every matrix op of the CUDA backend goes through (cuBLAS GemmEx with fp32 accumulation, or a
// plain tiled fallback kernel when the module was built without cuBLAS), the bias pre-fill, and linear.
#include "common.cuh"

// ---- fallback GEMM: 64x64 output tiles, 16-deep K steps, 256 threads of 4x4 outputs, fp32 accumulation ----

namespace {

constexpr int GB_M = 64, GB_N = 64, GB_K = 16;

template <typename T, bool TRANS_B>
__global__ void __launch_bounds__(256) gemm_fallback_kernel(int M, int N, int K, float alpha, const T *__restrict__ A,
                                                            int64_t lda, int64_t stride_a, const T *__restrict__ B,
                                                            int64_t ldb, int64_t stride_b, float beta, T *C,
                                                            int64_t ldc, int64_t stride_c) {
    __shared__ float As[GB_K][GB_M + 4];  // As[k][i] = A[m0 + i, k0 + k]
    __shared__ float Bs[GB_K][GB_N + 4];  // Bs[k][j] = op(B)[k0 + k, n0 + j]
    const int64_t batch = blockIdx.z;
    A += batch * stride_a;
    B += batch * stride_b;
    C += batch * stride_c;
    const int m0 = blockIdx.y * GB_M, n0 = blockIdx.x * GB_N;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += GB_K) {
        // 1024 elements of each tile, 4 per thread; consecutive threads take consecutive k (A, Bᵀ) or j (B).
        for (int e = tid; e < GB_M * GB_K; e += 256) {
            const int i = e / GB_K, k = e % GB_K;
            const int gi = m0 + i, gk = k0 + k;
            As[k][i] = (gi < M && gk < K) ? to_f32(A[(int64_t)gi * lda + gk]) : 0.0f;
        }
        for (int e = tid; e < GB_N * GB_K; e += 256) {
            int j, k;
            if (TRANS_B) {
                j = e / GB_K, k = e % GB_K;
            } else {
                k = e / GB_N, j = e % GB_N;
            }
            const int gj = n0 + j, gk = k0 + k;
            float v = 0.0f;
            if (gj < N && gk < K) v = to_f32(TRANS_B ? B[(int64_t)gj * ldb + gk] : B[(int64_t)gk * ldb + gj]);
            Bs[k][j] = v;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < GB_K; k++) {
            float a[4], b[4];
#pragma unroll
            for (int r = 0; r < 4; r++) a[r] = As[k][ty * 4 + r];
#pragma unroll
            for (int c = 0; c < 4; c++) b[c] = Bs[k][tx * 4 + c];
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int gi = m0 + ty * 4 + r;
        if (gi >= M) continue;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int gj = n0 + tx * 4 + c;
            if (gj >= N) continue;
            T *out = C + (int64_t)gi * ldc + gj;
            const float v = alpha * acc[r][c];
            *out = from_f32<T>(beta == 0.0f ? v : v + beta * to_f32(*out));
        }
    }
}

template <typename T>
svdc_status gemm_fallback(svdc_cuda_device *dev, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const void *A, int64_t lda, int64_t sa, const void *B, int64_t ldb, int64_t sb, float beta,
                          void *C, int64_t ldc, int64_t sc, int64_t batch) {
    const int64_t gx = (N + GB_N - 1) / GB_N, gy = (M + GB_M - 1) / GB_M;
    if (gy > 65535)
        return svdc_fail(SVDC_ERR_SHAPE, "gemm: %lld rows exceed the fallback kernel's grid (build with cuBLAS)",
                         (long long)M);
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
        const int64_t nb = batch - b0 < 65535 ? batch - b0 : 65535;
        dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)nb);
        const T *a = static_cast<const T *>(A) + b0 * sa, *b = static_cast<const T *>(B) + b0 * sb;
        T *c = static_cast<T *>(C) + b0 * sc;
        if (trans_b)
            gemm_fallback_kernel<T, true><<<grid, 256, 0, dev->stream>>>((int)M, (int)N, (int)K, alpha, a, lda, sa, b,
                                                                         ldb, sb, beta, c, ldc, sc);
        else
            gemm_fallback_kernel<T, false><<<grid, 256, 0, dev->stream>>>((int)M, (int)N, (int)K, alpha, a, lda, sa,
                                                                          b, ldb, sb, beta, c, ldc, sc);
        SVDC_CUDA_LAUNCHED(dev, "gemm_fallback_kernel");
    }
    return SVDC_OK;
}

#ifdef SVDC_HAVE_CUBLAS
cudaDataType_t blas_type(svdc_dtype dtype) {
    switch (dtype) {
    case SVDC_DTYPE_F16: return CUDA_R_16F;
    case SVDC_DTYPE_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

svdc_status blas_fail(svdc_cuda_device *dev, cublasStatus_t st, const char *what) {
    // An execution failure may stem from a sticky CUDA error: let the CUDA side classify it first.
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return svdc_cuda_error(dev->ordinal, err, what, __FILE__, __LINE__);
    return svdc_fail(st == CUBLAS_STATUS_ALLOC_FAILED ? SVDC_ERR_MEMORY : SVDC_ERR_DEVICE,
                     "cuda: %s failed on device %d: %s", what, dev->ordinal, cublasGetStatusString(st));
}
#endif

template <typename T> __global__ void fill_bias_kernel(const T *__restrict__ bias, T *y, int64_t O, int64_t P,
                                                       int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = bias[(i / P) % O];  // y (rows, O, P): plane (row, o) holds bias[o]
}

template <typename T> __global__ void fill_zero_kernel(T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = from_f32<T>(0.0f);
}

}  // namespace

svdc_status svdc_cuda_gemm(svdc_cuda_device *dev, svdc_dtype dtype, int trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb,
                           int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return SVDC_OK;
    if (K <= 0) {
        // Nothing to accumulate: C = beta * C. Callers only pass beta 0 (C = 0) or 1 (C unchanged) here.
        if (beta != 0.0f) return SVDC_OK;
        if (ldc != N || (batch > 1 && stride_c != M * N))
            return svdc_fail(SVDC_ERR_INTERNAL, "gemm: K = 0 with a strided C is not supported");
        const int64_t n = M * N * batch;
        return svdc_cuda_dispatch(dtype, "gemm", [&](auto tag) -> svdc_status {
            using T = decltype(tag);
            fill_zero_kernel<T><<<svdc_cuda_blocks(n, 256), 256, 0, dev->stream>>>(static_cast<T *>(C), n);
            SVDC_CUDA_LAUNCHED(dev, "fill_zero_kernel");
            return SVDC_OK;
        });
    }
#ifdef SVDC_HAVE_CUBLAS
    if (dev->use_cublas) {
        // Row-major C = A·op(B) is column-major Cᵀ = op(B)ᵀ·Aᵀ: swap the operands and the M/N roles; each row-major
        // operand read as column-major is already its transpose, so op(B)ᵀ needs CUBLAS_OP_T exactly when trans_b.
        const cudaDataType_t t = blas_type(dtype);
        const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        for (int64_t b0 = 0; b0 < batch; b0 += 32768) {
            const int64_t nb = batch - b0 < 32768 ? batch - b0 : 32768;
            const size_t es = svdc_dtype_size(dtype);
            const char *a = static_cast<const char *>(A) + (size_t)(b0 * stride_a) * es;
            const char *b = static_cast<const char *>(B) + (size_t)(b0 * stride_b) * es;
            char *c = static_cast<char *>(C) + (size_t)(b0 * stride_c) * es;
            cublasStatus_t st;
            if (nb == 1)
                st = cublasGemmEx(dev->blas, opb, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, b, t, (int)ldb, a, t,
                                  (int)lda, &beta, c, t, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            else
                st = cublasGemmStridedBatchedEx(dev->blas, opb, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, b, t,
                                                (int)ldb, (long long)stride_b, a, t, (int)lda, (long long)stride_a,
                                                &beta, c, t, (int)ldc, (long long)stride_c, (int)nb,
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            if (st == CUBLAS_STATUS_NOT_SUPPORTED) {  // a layout cuBLAS has no kernel for: the plain kernel takes it
                const svdc_status fs = svdc_cuda_dispatch(dtype, "gemm", [&](auto tag) -> svdc_status {
                    using T = decltype(tag);
                    return gemm_fallback<T>(dev, trans_b, M, N, K, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                            c, ldc, stride_c, nb);
                });
                if (fs != SVDC_OK) return fs;
                continue;
            }
            if (st != CUBLAS_STATUS_SUCCESS) return blas_fail(dev, st, "cublasGemmEx");
        }
        return SVDC_OK;
    }
#endif
    return svdc_cuda_dispatch(dtype, "gemm", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        return gemm_fallback<T>(dev, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                                stride_c, batch);
    });
}

svdc_status svdc_cuda_fill_bias(svdc_cuda_device *dev, const svdc_tensor *bias, void *y, int64_t rows, int64_t O,
                                int64_t P) {
    const int64_t n = rows * O * P;
    if (n == 0) return SVDC_OK;
    return svdc_cuda_dispatch(bias->dtype, "bias", [&](auto tag) -> svdc_status {
        using T = decltype(tag);
        fill_bias_kernel<T><<<svdc_cuda_blocks(n, 256), 256, 0, dev->stream>>>(static_cast<const T *>(bias->data),
                                                                              static_cast<T *>(y), O, P, n);
        SVDC_CUDA_LAUNCHED(dev, "fill_bias_kernel");
        return SVDC_OK;
    });
}

// y (M, N) = x (M, K) · wᵀ (+ b): the bias is written first and the GEMM accumulates onto it (beta = 1), so the
// result is rounded once to the storage type.
svdc_status svdc_cuda_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                             svdc_tensor *y) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(ctx->device, &dev));
    const int64_t K = x->shape[x->ndim - 1], N = w->shape[0];
    const int64_t M = N ? svdc_tensor_numel(y) / N : 0;  /* rows: the product of the leading dims */
    if (M == 0 || N == 0) return SVDC_OK;
    if (b) SVDC_TRY(svdc_cuda_fill_bias(dev, b, y->data, M, N, 1));
    return svdc_cuda_gemm(dev, y->dtype, 1, M, N, K, 1.0f, x->data, K, 0, w->data, K, 0, b ? 1.0f : 0.0f, y->data, N,
                          0, 1);
}
