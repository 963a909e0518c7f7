// backend_cuda.cu — the CUDA backend table: per-device state (one stream and a lazily created cuBLAS handle per
// device), device memory, copies, synchronisation, the sticky-error policy, and the ops of the kernel files.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common.cuh"

#define SVDC_CUDA_MAX_DEVICES 64

namespace {

struct device_slot {
    std::mutex lock;
    int ready;                 // stream (and handle) created
    svdc_cuda_device dev;
    volatile int sticky;       // set once a context-destroying error was seen; never cleared
    char sticky_text[512];
};

device_slot slots[SVDC_CUDA_MAX_DEVICES];

// Errors after which the CUDA context of the process is unusable (every later call fails with the same error).
bool is_sticky(cudaError_t err) {
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDevicesUnavailable:
    case cudaErrorUnknown:
        return true;
    default:
        return false;
    }
}

svdc_status refuse_sticky(int device) {
    return svdc_fail(SVDC_ERR_DEVICE,
                     "cuda: device %d is unusable after an earlier error (%s); its work and memory are lost, restart "
                     "the process to use the GPU again",
                     device, slots[device].sticky_text);
}

}  // namespace

svdc_status svdc_cuda_error(int device, cudaError_t err, const char *what, const char *file, int line) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (device >= 0 && device < SVDC_CUDA_MAX_DEVICES && is_sticky(err)) {
        device_slot &s = slots[device];
        if (!s.sticky) {
            snprintf(s.sticky_text, sizeof s.sticky_text, "%s: %s in %s at %s:%d", cudaGetErrorName(err),
                     cudaGetErrorString(err), what, base, line);
            s.sticky = 1;
        }
        return refuse_sticky(device);
    }
    cudaGetLastError();  // a non-sticky error (bad launch configuration, out of memory) must not leak into the next call
    return svdc_fail(err == cudaErrorMemoryAllocation ? SVDC_ERR_MEMORY : SVDC_ERR_DEVICE,
                     "cuda: %s failed on device %d: %s (%s) at %s:%d", what, device, cudaGetErrorString(err),
                     cudaGetErrorName(err), base, line);
}

svdc_status svdc_cuda_begin(int device, svdc_cuda_device **out) {
    *out = nullptr;
    if (device < 0 || device >= SVDC_CUDA_MAX_DEVICES)
        return svdc_fail(SVDC_ERR_ARGUMENT, "cuda: device %d is out of range 0..%d", device,
                         SVDC_CUDA_MAX_DEVICES - 1);
    device_slot &s = slots[device];
    if (s.sticky) return refuse_sticky(device);
    SVDC_CUDA_CHECK_ON(device, cudaSetDevice(device));
    if (!s.ready) {
        std::lock_guard<std::mutex> guard(s.lock);
        if (!s.ready) {
            s.dev.ordinal = device;
            SVDC_CUDA_CHECK_ON(device, cudaStreamCreateWithFlags(&s.dev.stream, cudaStreamNonBlocking));
            s.dev.use_cublas = 0;
#ifdef SVDC_HAVE_CUBLAS
            const char *off = getenv("SVDC_CUDA_NO_CUBLAS");
            if (!(off && off[0] == '1')) {
                cublasStatus_t st = cublasCreate(&s.dev.blas);
                if (st != CUBLAS_STATUS_SUCCESS) {
                    cudaStreamDestroy(s.dev.stream);
                    return svdc_fail(SVDC_ERR_DEVICE, "cuda: cublasCreate failed on device %d: %s", device,
                                     cublasGetStatusString(st));
                }
                // fp32 GEMMs stay fp32: the default math mode with CUBLAS_COMPUTE_32F never uses TF32 (TF32 needs
                // CUBLAS_COMPUTE_32F_FAST_TF32 or CUBLAS_TF32_TENSOR_OP_MATH); fp16/bf16 inputs use tensor cores
                // with fp32 accumulation.
                if ((st = cublasSetMathMode(s.dev.blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS ||
                    (st = cublasSetStream(s.dev.blas, s.dev.stream)) != CUBLAS_STATUS_SUCCESS) {
                    cublasDestroy(s.dev.blas);
                    cudaStreamDestroy(s.dev.stream);
                    return svdc_fail(SVDC_ERR_DEVICE, "cuda: configuring cuBLAS failed on device %d: %s", device,
                                     cublasGetStatusString(st));
                }
                s.dev.use_cublas = 1;
            }
#endif
            __sync_synchronize();
            s.ready = 1;
        }
    }
    *out = &s.dev;
    return SVDC_OK;
}

static void *cuda_alloc(int device, size_t bytes) {
    svdc_cuda_device *dev;
    if (svdc_cuda_begin(device, &dev) != SVDC_OK) return nullptr;
    void *ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();  // clear the non-sticky out-of-memory error
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
        // The arena names the bytes and the device; this detail (appended by the arena) adds what is free.
        svdc_fail(SVDC_ERR_MEMORY, "cudaMalloc: %s; %zu bytes free of %zu on device %d", cudaGetErrorString(err),
                  free_b, total_b, device);
        return nullptr;
    }
    return ptr;
}

static void cuda_free(int device, void *ptr) {
    if (!ptr || device < 0 || device >= SVDC_CUDA_MAX_DEVICES) return;
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(ptr) != cudaSuccess) cudaGetLastError();
}

static svdc_status cuda_copy_to_device(int device, void *dst, const void *src, size_t bytes) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(device, &dev));
    if (!bytes) return SVDC_OK;
    SVDC_CUDA_TRY(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, dev->stream));
    SVDC_CUDA_TRY(dev, cudaStreamSynchronize(dev->stream));  // the host buffer may be freed right after
    return SVDC_OK;
}

static svdc_status cuda_copy_to_host(int device, void *dst, const void *src, size_t bytes) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(device, &dev));
    if (!bytes) return SVDC_OK;
    SVDC_CUDA_TRY(dev, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, dev->stream));
    SVDC_CUDA_TRY(dev, cudaStreamSynchronize(dev->stream));
    return SVDC_OK;
}

static svdc_status cuda_synchronize(int device) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(device, &dev));
    SVDC_CUDA_TRY(dev, cudaStreamSynchronize(dev->stream));
    SVDC_CUDA_TRY(dev, cudaGetLastError());
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
    b.linear = svdc_cuda_linear;
    b.conv2d = svdc_cuda_conv2d;
    b.conv_temporal = svdc_cuda_conv_temporal;
    b.group_norm = svdc_cuda_group_norm;
    b.layer_norm = svdc_cuda_layer_norm;
    b.attention = svdc_cuda_attention;
    b.gelu = svdc_cuda_gelu;
    b.silu = svdc_cuda_silu;
    b.geglu = svdc_cuda_geglu;
    b.axpby = svdc_cuda_axpby;
    b.mul = svdc_cuda_mul;
    b.add_channel_bias = svdc_cuda_add_channel_bias;
    b.add_token_bias = svdc_cuda_add_token_bias;
    b.upsample_nearest2x = svdc_cuda_upsample_nearest2x;
    b.concat_channels = svdc_cuda_concat_channels;
    b.permute_0213 = svdc_cuda_permute_0213;
    b.timestep_embedding = svdc_cuda_timestep_embedding;
    b.convert = svdc_cuda_convert;
    b.copy = svdc_cuda_copy;
    b.fill = svdc_cuda_fill;
    b.check_finite = svdc_cuda_check_finite;
    return b;
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
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    snprintf(buf, (size_t)len, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}

// Whether GEMMs on `device` go through cuBLAS (1), the fallback kernel (0), or the device failed (-1).
extern "C" int svdc_cuda_uses_cublas(int device) {
    svdc_cuda_device *dev;
    if (svdc_cuda_begin(device, &dev) != SVDC_OK) return -1;
    return dev->use_cublas;
}

// ---- test hook: a deliberate illegal memory access, to check the sticky-error policy (tests run it in a child
// process, since it destroys the CUDA context of the process for good) ----

__global__ void svdc_illegal_write_kernel(float *p) { p[threadIdx.x] = 1.0f; }

extern "C" svdc_status svdc_cuda_debug_fault(int device) {
    svdc_cuda_device *dev;
    SVDC_TRY(svdc_cuda_begin(device, &dev));
    svdc_illegal_write_kernel<<<1, 32, 0, dev->stream>>>(reinterpret_cast<float *>(uintptr_t(16)));
    SVDC_CUDA_LAUNCHED(dev, "svdc_illegal_write_kernel");
    SVDC_CUDA_TRY(dev, cudaStreamSynchronize(dev->stream));
    return SVDC_OK;
}
