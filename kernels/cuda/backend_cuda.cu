// backend_cuda.cu — the CUDA backend table: device memory, copies, synchronisation and (as they land) the ops of
// backend.h. Entries still NULL make ops.c refuse the op with a clear message rather than crash.
#include <cstdio>

#include "common.cuh"

extern "C" {
#include "backend.h"
}

static void *cuda_alloc(int device, size_t bytes) {
    if (cudaSetDevice(device) != cudaSuccess) return nullptr;
    void *ptr = nullptr;
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
        cudaGetLastError();  // clear the non-sticky out-of-memory error; the arena reports the bytes
        return nullptr;
    }
    return ptr;
}

static void cuda_free(int device, void *ptr) {
    if (!ptr) return;
    cudaSetDevice(device);
    cudaFree(ptr);
}

static svdc_status cuda_copy_to_device(int device, void *dst, const void *src, size_t bytes) {
    SVDC_CUDA_CHECK(cudaSetDevice(device));
    SVDC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    return SVDC_OK;
}

static svdc_status cuda_copy_to_host(int device, void *dst, const void *src, size_t bytes) {
    SVDC_CUDA_CHECK(cudaSetDevice(device));
    SVDC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    return SVDC_OK;
}

static svdc_status cuda_synchronize(int device) {
    SVDC_CUDA_CHECK(cudaSetDevice(device));
    SVDC_CUDA_CHECK(cudaDeviceSynchronize());
    return SVDC_OK;
}

static svdc_backend make_cuda_backend() {
    svdc_backend b = {};
    b.abi_version = SVDC_BACKEND_ABI_VERSION;
    b.name = "cuda";
    b.last_error = svdc_last_error;
    b.alloc = cuda_alloc;
    b.free = cuda_free;
    b.copy_to_device = cuda_copy_to_device;
    b.copy_to_host = cuda_copy_to_host;
    b.synchronize = cuda_synchronize;
    return b;  // ops: none yet (issue 7)
}

static const svdc_backend cuda_backend = make_cuda_backend();

extern "C" const svdc_backend *svdc_backend_cuda(void) { return &cuda_backend; }

extern "C" int svdc_cuda_device_count(const char **error) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        *error = cudaGetErrorString(err);
        cudaGetLastError();
        return 0;
    }
    *error = count ? "" : "no CUDA device present";
    return count;
}

extern "C" int svdc_cuda_device_name(int device, char *buf, int len) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return -1;
    snprintf(buf, (size_t)len, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}
