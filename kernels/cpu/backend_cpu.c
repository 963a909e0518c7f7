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

static const svdc_backend cpu_backend = {
    .abi_version = SVDC_BACKEND_ABI_VERSION,
    .name = "cpu",
    .last_error = svdc_last_error,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_to_device = cpu_copy,
    .copy_to_host = cpu_copy,
    .synchronize = cpu_synchronize,
    .linear = svdc_cpu_linear,
    .conv2d = svdc_cpu_conv2d,
    .conv_temporal = svdc_cpu_conv_temporal,
    .group_norm = svdc_cpu_group_norm,
    .layer_norm = svdc_cpu_layer_norm,
    .attention = svdc_cpu_attention,
    .gelu = svdc_cpu_gelu,
    .silu = svdc_cpu_silu,
    .geglu = svdc_cpu_geglu,
    .axpby = svdc_cpu_axpby,
    .mul = svdc_cpu_mul,
    .add_channel_bias = svdc_cpu_add_channel_bias,
    .add_token_bias = svdc_cpu_add_token_bias,
    .upsample_nearest2x = svdc_cpu_upsample_nearest2x,
    .concat_channels = svdc_cpu_concat_channels,
    .permute_0213 = svdc_cpu_permute_0213,
    .timestep_embedding = svdc_cpu_timestep_embedding,
    .convert = svdc_cpu_convert,
    .copy = svdc_cpu_copy,
    .fill = svdc_cpu_fill,
    .check_finite = svdc_cpu_check_finite,
};

const svdc_backend *svdc_backend_cpu(void) { return &cpu_backend; }
