/* backend_cpu.c — the CPU backend table: host memory and the kernels of the kernel files (kernels.h). */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernels.h"

static void *cpu_alloc(int device, size_t bytes) {
    (void)device;
    void *ptr = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&ptr, 64, rounded ? rounded : 64) != 0) return NULL;
    return ptr;
}

static void cpu_free(int device, void *ptr) {
    (void)device;
    free(ptr);
}

static svdc_status cpu_copy(int device, void *dst, const void *src, size_t bytes) {
    (void)device;
    if (bytes) memcpy(dst, src, bytes);
    return SVDC_OK;
}

static svdc_status cpu_synchronize(int device) {
    (void)device;
    return SVDC_OK;
}

/* Host memory has no faults to report: a failed allocation is always out-of-memory. */
static svdc_status cpu_health(int device) {
    (void)device;
    return SVDC_OK;
}

static int cpu_device_count(char *why, size_t why_len) {
    (void)why;
    (void)why_len;
    return 1;
}

/* The CPU kernels split a layer into chunks of about this many bytes (cache-friendly working sets). */
#define CPU_CHUNK_BUDGET ((size_t)8 << 20)

#define CPU_OP_ENTRY_(name, params, args) .name = svdc_cpu_##name,
static const svdc_backend cpu_backend = {
    .abi_version = SVDC_BACKEND_ABI_VERSION,
    .op_signature = SVDC_OP_SIGNATURE,
    .name = "cpu",
    .build_info = "C11 kernels (OpenMP) + OpenBLAS",
    .chunk_budget = CPU_CHUNK_BUDGET,
    .device_count = cpu_device_count,
    .alloc = cpu_alloc,
    .health = cpu_health,
    .free = cpu_free,
    .copy_to_device = cpu_copy,
    .copy_to_host = cpu_copy,
    .synchronize = cpu_synchronize,
    SVDC_OP_LIST(CPU_OP_ENTRY_)
};

const svdc_backend *svdc_backend_cpu(void) { return &cpu_backend; }
