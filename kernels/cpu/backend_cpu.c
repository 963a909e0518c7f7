/* backend_cpu.c — the CPU backend table: host memory and the kernels of the kernel files (kernels.h), in the variant
 * chosen at first use: avx2 when the build contains it and the CPU has AVX2 and FMA, else baseline (any x86-64);
 * SVDC_CPU_KERNELS=baseline|avx2|auto overrides the choice (a forced avx2 on a CPU without it falls back to
 * baseline, with the reason). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernels.h"
#include "packed.h"
#include "try.h"

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

/* Host memory is its own host view. */
static svdc_status cpu_host_view(const void *dev, size_t bytes, const void **host) {
    (void)bytes;
    *host = dev;
    return SVDC_OK;
}

/* A loaded model's GEMM weights packed for the kernels (packed.h). */
static svdc_status cpu_prepare_params(const svdc_params *params, void **prepared, size_t *bytes) {
    svdc_packed_set *set = NULL;
    SVDC_TRY(svdc_cpu_prepack_params(params, cpu_host_view, &set));
    *prepared = set;
    *bytes = svdc_packed_set_bytes(set);
    return SVDC_OK;
}

static void cpu_release_prepared(void *prepared) { svdc_packed_set_free(prepared); }

/* The CPU kernels split a layer into chunks of about this many bytes (cache-friendly working sets). */
#define CPU_CHUNK_BUDGET ((size_t)8 << 20)

#define CPU_TABLE_(variant, info)                  \
    {                                              \
        .abi_version = SVDC_BACKEND_ABI_VERSION,   \
        .op_signature = SVDC_OP_SIGNATURE,         \
        .name = "cpu",                             \
        .build_info = info,                        \
        .chunk_budget = CPU_CHUNK_BUDGET,          \
        .device_count = cpu_device_count,          \
        .alloc = cpu_alloc,                        \
        .health = cpu_health,                      \
        .free = cpu_free,                          \
        .copy_to_device = cpu_copy,                \
        .copy_to_host = cpu_copy,                  \
        .synchronize = cpu_synchronize,            \
        .prepare_params = cpu_prepare_params,      \
        .release_prepared = cpu_release_prepared,  \
        SVDC_OP_LIST(variant)                      \
    }

#define CPU_BASELINE_ENTRY_(name, params, args) .name = svdc_cpu_baseline_##name,
static const svdc_backend cpu_baseline = CPU_TABLE_(CPU_BASELINE_ENTRY_, "C11 kernels, baseline x86-64 (OpenMP) + OpenBLAS");
#ifdef SVDC_CPU_HAVE_AVX2
#define CPU_AVX2_ENTRY_(name, params, args) .name = svdc_cpu_avx2_##name,
static const svdc_backend cpu_avx2 = CPU_TABLE_(CPU_AVX2_ENTRY_, "C11 kernels, AVX2+FMA (OpenMP) + OpenBLAS");
#endif

static const svdc_backend *selected;
static char selection_reason[200];
static pthread_once_t select_once = PTHREAD_ONCE_INIT;

static int cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static void select_kernels(void) {
    const char *want = getenv("SVDC_CPU_KERNELS");
    if (!want || !*want) want = "auto";
    selected = &cpu_baseline;
#ifdef SVDC_CPU_HAVE_AVX2
    const int usable = cpu_has_avx2_fma();
    if (!strcmp(want, "baseline"))
        snprintf(selection_reason, sizeof selection_reason, "SVDC_CPU_KERNELS=baseline");
    else if (usable)
        selected = &cpu_avx2;
    else
        snprintf(selection_reason, sizeof selection_reason, "this CPU lacks AVX2 and/or FMA%s",
                 strcmp(want, "avx2") ? "" : " (SVDC_CPU_KERNELS=avx2 ignored)");
#else
    snprintf(selection_reason, sizeof selection_reason, "built without the AVX2 kernels (SVDC_AVX2=0 or not x86-64)%s",
             strcmp(want, "avx2") ? "" : " (SVDC_CPU_KERNELS=avx2 ignored)");
#endif
    if (strcmp(want, "auto") && strcmp(want, "baseline") && strcmp(want, "avx2"))
        snprintf(selection_reason, sizeof selection_reason,
                 "SVDC_CPU_KERNELS='%.60s' is not auto, baseline or avx2: ignored", want);
}

const svdc_backend *svdc_backend_cpu(void) {
    pthread_once(&select_once, select_kernels);
    return selected;
}

const char *svdc_cpu_kernels_selected(void) {
#ifdef SVDC_CPU_HAVE_AVX2
    if (svdc_backend_cpu() == &cpu_avx2) return "avx2";
#endif
    return "baseline";
}

const char *svdc_cpu_kernels_built(void) {
#ifdef SVDC_CPU_HAVE_AVX2
    return "baseline avx2";
#else
    return "baseline";
#endif
}

const char *svdc_cpu_kernels_reason(void) {
    svdc_backend_cpu();
    return selection_reason;
}

static char features_text[96];
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void fill_features(void) {
#if defined(__x86_64__) || defined(__i386__)
    static const char *const names[] = {"sse4.2", "avx", "avx2", "fma", "avx512f"};
    __builtin_cpu_init();
    const int has[] = {__builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"), __builtin_cpu_supports("avx2"),
                       __builtin_cpu_supports("fma"), __builtin_cpu_supports("avx512f")};
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (has[i] && used < sizeof features_text)
            used += (size_t)snprintf(features_text + used, sizeof features_text - used, "%s%s", used ? " " : "",
                                     names[i]);
    if (!used) snprintf(features_text, sizeof features_text, "x86-64 baseline only");
#else
    snprintf(features_text, sizeof features_text, "not x86-64");
#endif
}

const char *svdc_cpu_features(void) {
    pthread_once(&features_once, fill_features);
    return features_text;
}

/* svdc_cpu_<name>: the selected variant's kernel (the emulated device runs the CPU kernels through these). */
#define CPU_SELECTED_(name, params, args) \
    svdc_status svdc_cpu_##name params { return svdc_backend_cpu()->name args; }
SVDC_OP_LIST(CPU_SELECTED_)
