// backend_cuda.cu — the CUDA backend table: per-device state (one stream and a lazily created cuBLAS handle per
// device), device memory, copies, synchronisation, the sticky-error policy, and the ops of the kernel files.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common.cuh"

#define SVDC_CUDA_MAX_DEVICES 64

namespace {

struct device_slot {
    std::mutex lock;
    std::atomic<int> ready{0};    // stream (and handle) created: release-stored after them, acquire-loaded
    svdc_cuda_device dev;
    std::mutex sticky_lock;       // guards the first write of sticky_text
    std::atomic<int> sticky{0};   // set once a context-destroying error was seen; never cleared
    char sticky_text[512];
    char cublas_off_reason[256];  // why GEMMs use the fallback kernel ("" when cuBLAS runs them)
};

device_slot slots[SVDC_CUDA_MAX_DEVICES];

// The device (+1) whose last cuda_alloc on this thread failed with something other than an out-of-memory, and the
// message, for cuda_health.
thread_local int last_alloc_fault = 0;
thread_local char alloc_fault_text[512];

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
        std::lock_guard<std::mutex> guard(s.sticky_lock);
        if (!s.sticky.load()) {
            snprintf(s.sticky_text, sizeof s.sticky_text, "%s: %s in %s at %s:%d", cudaGetErrorName(err),
                     cudaGetErrorString(err), what, base, line);
            s.sticky.store(1, std::memory_order_release);
        }
        return refuse_sticky(device);
    }
    cudaGetLastError();  // a non-sticky error (bad launch configuration, out of memory) must not leak into the next call
    return svdc_fail(err == cudaErrorMemoryAllocation ? SVDC_ERR_MEMORY : SVDC_ERR_DEVICE,
                     "cuda: %s failed on device %d: %s (%s) at %s:%d", what, device, cudaGetErrorString(err),
                     cudaGetErrorName(err), base, line);
}

#ifdef SVDC_HAVE_CUBLAS
// Creates and configures the device's cuBLAS handle; on failure the device keeps working with the fallback GEMM
// kernel and the reason is kept for info() (a missing libcublasLt must not take the whole GPU down).
static void init_cublas(device_slot &s, int device) {
    const char *off = getenv("SVDC_CUDA_NO_CUBLAS");
    if (off && off[0] == '1') {
        snprintf(s.cublas_off_reason, sizeof s.cublas_off_reason, "SVDC_CUDA_NO_CUBLAS=1");
        return;
    }
    cublasStatus_t st = cublasCreate(&s.dev.blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(s.cublas_off_reason, sizeof s.cublas_off_reason, "cublasCreate failed on device %d: %s", device,
                 cublasGetStatusString(st));
        return;
    }
    // fp32 GEMMs stay fp32: the default math mode with CUBLAS_COMPUTE_32F never uses TF32. Reduced-precision
    // split-K reductions are disallowed, so a 16-bit output is rounded once from fp32 sums (kernels/cuda/NOTES.md).
    if ((st = cublasSetMathMode(s.dev.blas, (cublasMath_t)(CUBLAS_DEFAULT_MATH |
                                                           CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION))) !=
            CUBLAS_STATUS_SUCCESS ||
        (st = cublasSetStream(s.dev.blas, s.dev.stream)) != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(s.dev.blas);
        snprintf(s.cublas_off_reason, sizeof s.cublas_off_reason, "configuring cuBLAS failed on device %d: %s",
                 device, cublasGetStatusString(st));
        return;
    }
    s.dev.use_cublas = 1;
}
#endif

svdc_status svdc_cuda_begin(int device, svdc_cuda_device **out) {
    *out = nullptr;
    if (device < 0 || device >= SVDC_CUDA_MAX_DEVICES)
        return svdc_fail(SVDC_ERR_ARGUMENT, "cuda: device %d is out of range 0..%d", device,
                         SVDC_CUDA_MAX_DEVICES - 1);
    device_slot &s = slots[device];
    if (s.sticky.load(std::memory_order_acquire)) return refuse_sticky(device);
    SVDC_CUDA_CHECK_ON(device, cudaSetDevice(device));
    if (!s.ready.load(std::memory_order_acquire)) {
        std::lock_guard<std::mutex> guard(s.lock);
        if (!s.ready.load(std::memory_order_relaxed)) {
            s.dev.ordinal = device;
            SVDC_CUDA_CHECK_ON(device, cudaStreamCreateWithFlags(&s.dev.stream, cudaStreamNonBlocking));
            s.dev.use_cublas = 0;
#ifdef SVDC_HAVE_CUBLAS
            init_cublas(s, device);
#else
            snprintf(s.cublas_off_reason, sizeof s.cublas_off_reason, "built without cuBLAS");
#endif
            s.ready.store(1, std::memory_order_release);
        }
    }
    *out = &s.dev;
    return SVDC_OK;
}

// NULL when the device cannot allocate. Only cudaErrorMemoryAllocation is an out-of-memory (the arena then names
// the bytes, this text adds what is free); any other error (an earlier kernel's fault surfacing here, a sticky
// refusal) goes through the sticky classification and cuda_health reports it, so it is never called "out of memory".
static void *cuda_alloc(int device, size_t bytes) {
    svdc_cuda_device *dev;
    if (svdc_cuda_begin(device, &dev) != SVDC_OK) return nullptr;
    void *ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clear the non-sticky out-of-memory error
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
        svdc_fail(SVDC_ERR_MEMORY, "cudaMalloc: %s; %zu bytes free of %zu on device %d", cudaGetErrorString(err),
                  free_b, total_b, device);
        return nullptr;
    }
    if (err != cudaSuccess) {
        svdc_cuda_error(device, err, "cudaMalloc", __FILE__, __LINE__);
        if (!slots[device].sticky.load()) {  // a non-sticky fault: kept for cuda_health, which the arena asks next
            snprintf(alloc_fault_text, sizeof alloc_fault_text, "%s", svdc_last_error());
            last_alloc_fault = device + 1;
        }
        return nullptr;
    }
    return ptr;
}

// After a failed cuda_alloc: SVDC_OK for an out-of-memory, else the device's failure (sticky or not).
static svdc_status cuda_health(int device) {
    if (device < 0 || device >= SVDC_CUDA_MAX_DEVICES)
        return svdc_fail(SVDC_ERR_ARGUMENT, "cuda: device %d is out of range", device);
    if (slots[device].sticky.load(std::memory_order_acquire)) return refuse_sticky(device);
    if (last_alloc_fault == device + 1) {
        last_alloc_fault = 0;
        return svdc_fail(SVDC_ERR_DEVICE, "%s", alloc_fault_text);
    }
    return SVDC_OK;
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

static int cuda_device_count(char *why, size_t why_len) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        snprintf(why, why_len, "%s", cudaGetErrorString(err));
        cudaGetLastError();
        return 0;
    }
    if (!count) snprintf(why, why_len, "no CUDA device present");
    return count;
}

static const svdc_core_services *core_services;

static svdc_status cuda_attach(const svdc_core_services *core) {
    core_services = core;
    return SVDC_OK;
}

extern "C" const svdc_core_services *svdc_cuda_core_services(void) { return core_services; }

#define SVDC_STR_(x) #x
#define SVDC_STR(x) SVDC_STR_(x)
static const char cuda_build_info[] = "CUDA runtime " SVDC_STR(CUDART_VERSION)
#ifdef SVDC_HAVE_CUBLAS
    " + cuBLAS"
#else
    " (no cuBLAS: fallback GEMM kernel)"
#endif
#ifdef SVDC_CUDA_ARCH_LIST
    ", archs " SVDC_CUDA_ARCH_LIST
#endif
    ;

#define CUDA_OP_ENTRY_(name, params, args) b.name = svdc_cuda_##name;
static svdc_backend make_cuda_backend() {
    svdc_backend b = {};
    b.abi_version = SVDC_BACKEND_ABI_VERSION;
    b.op_signature = SVDC_OP_SIGNATURE;
    b.name = "cuda";
    b.build_info = cuda_build_info;
    b.chunk_budget = 0;  // one op per layer: launches, not cache sizes, are what a GPU runs short of
    // The ops that take scratch from the device arena (and honour a measuring pass: core/plan.h).
    b.scratch_ops = SVDC_OP_BIT(conv2d) | SVDC_OP_BIT(conv_temporal) | SVDC_OP_BIT(group_norm) |
                    SVDC_OP_BIT(group_norm_moments) | SVDC_OP_BIT(check_finite);
    b.attach = cuda_attach;
    b.device_count = cuda_device_count;
    b.alloc = cuda_alloc;
    b.health = cuda_health;
    b.free = cuda_free;
    b.copy_to_device = cuda_copy_to_device;
    b.copy_to_host = cuda_copy_to_host;
    b.synchronize = cuda_synchronize;
    SVDC_OP_LIST(CUDA_OP_ENTRY_)
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

// Whether GEMMs on `device` go through cuBLAS (1), the fallback kernel (0, with the reason in *why), or the
// device failed (-1).
extern "C" int svdc_cuda_uses_cublas(int device, const char **why) {
    svdc_cuda_device *dev;
    *why = "";
    if (svdc_cuda_begin(device, &dev) != SVDC_OK) return -1;
    *why = slots[device].cublas_off_reason;
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
