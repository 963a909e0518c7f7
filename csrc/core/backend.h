/* backend.h — the backend contract: one table of function pointers per device kind. ops.c validates and then calls
 * these with arguments already checked against the shapes documented in ops.h, so kernels check nothing but what
 * only they can know (e.g. a failed device allocation). The CPU table lives in kernels/cpu/backend_cpu.c; the CUDA
 * table in kernels/cuda/backend_cuda.cu, exported by the separate svdc._C_cuda module. */
#ifndef SVDC_BACKEND_H
#define SVDC_BACKEND_H

#include "ops.h"

#define SVDC_BACKEND_ABI_VERSION 1

struct svdc_backend {
    int abi_version;   /* SVDC_BACKEND_ABI_VERSION */
    const char *name;  /* "cpu", "cuda" */
    /* The failure text of this backend's module (a separately built module has its own thread-local buffer);
     * ops.c copies it into the caller's svdc_last_error when a backend call fails. */
    const char *(*last_error)(void);

    /* Memory on this backend's device. alloc returns NULL when it cannot (the arena reports the bytes). */
    void *(*alloc)(int device, size_t bytes);
    void (*free)(int device, void *ptr);
    /* Host <-> device copies (the CPU backend: memcpy). */
    svdc_status (*copy_to_device)(int device, void *dst, const void *src, size_t bytes);
    svdc_status (*copy_to_host)(int device, void *dst, const void *src, size_t bytes);
    /* Waits for queued work; returns a sticky error if the device is unusable. */
    svdc_status (*synchronize)(int device);

    /* Ops: the same arguments as the svdc_op_* of the same name, already validated. An entry may be NULL while a
     * backend is incomplete: ops.c then fails with SVDC_ERR_DEVICE naming the op and the backend. */
    svdc_status (*linear)(const svdc_ctx *, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                          svdc_tensor *y);
    svdc_status (*conv2d)(const svdc_ctx *, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                          const svdc_conv2d_params *p, svdc_tensor *y);
    svdc_status (*conv_temporal)(const svdc_ctx *, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                 const svdc_tensor *b, svdc_tensor *y);
    svdc_status (*group_norm)(const svdc_ctx *, const svdc_tensor *x, int num_groups, int frames,
                              const svdc_tensor *gamma, const svdc_tensor *beta, float eps, int apply_silu,
                              svdc_tensor *y);
    svdc_status (*layer_norm)(const svdc_ctx *, const svdc_tensor *x, const svdc_tensor *gamma,
                              const svdc_tensor *beta, float eps, svdc_tensor *y);
    svdc_status (*attention)(const svdc_ctx *, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                             int num_heads, float scale, int causal, svdc_tensor *y);
    svdc_status (*gelu)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*silu)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*geglu)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*axpby)(const svdc_ctx *, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                         svdc_tensor *y);
    svdc_status (*mul)(const svdc_ctx *, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);
    svdc_status (*add_channel_bias)(const svdc_ctx *, const svdc_tensor *x, const svdc_tensor *bias, svdc_tensor *y);
    svdc_status (*add_token_bias)(const svdc_ctx *, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y);
    svdc_status (*upsample_nearest2x)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*concat_channels)(const svdc_ctx *, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);
    svdc_status (*permute_0213)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*timestep_embedding)(const svdc_ctx *, const svdc_tensor *t, int dim, svdc_tensor *y);
    svdc_status (*convert)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*copy)(const svdc_ctx *, const svdc_tensor *x, svdc_tensor *y);
    svdc_status (*fill)(const svdc_ctx *, svdc_tensor *y, float value);
    /* Sets *all_finite to 1 or 0. */
    svdc_status (*check_finite)(const svdc_ctx *, const svdc_tensor *x, int *all_finite);
};

/* The CPU backend (always built into svdc._C). */
const svdc_backend *svdc_backend_cpu(void);

#endif
