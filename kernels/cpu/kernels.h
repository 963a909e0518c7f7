/* kernels.h — the CPU kernels behind the backend table, one group per file (gemm.c, conv.c, norm.c, attention.c,
 * elementwise.c, resample.c). Arguments are validated by ops.c; float32 only. */
#ifndef SVDC_CPU_KERNELS_H
#define SVDC_CPU_KERNELS_H

#include "backend.h"

/* gemm.c */
svdc_status svdc_cpu_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            svdc_tensor *y);

/* conv.c */
svdc_status svdc_cpu_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            const svdc_conv2d_params *p, svdc_tensor *y);
svdc_status svdc_cpu_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                   const svdc_tensor *b, svdc_tensor *y);

/* norm.c */
svdc_status svdc_cpu_group_norm(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                const svdc_tensor *gamma, const svdc_tensor *beta, float eps, int apply_silu,
                                svdc_tensor *y);
svdc_status svdc_cpu_layer_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                                const svdc_tensor *beta, float eps, svdc_tensor *y);

/* attention.c */
svdc_status svdc_cpu_attention(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                               int num_heads, float scale, int causal, svdc_tensor *y);

/* elementwise.c */
svdc_status svdc_cpu_gelu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_silu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_geglu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                           svdc_tensor *y);
svdc_status svdc_cpu_mul(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);
svdc_status svdc_cpu_add_channel_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                      svdc_tensor *y);
svdc_status svdc_cpu_add_token_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y);
svdc_status svdc_cpu_fill(const svdc_ctx *ctx, svdc_tensor *y, float value);
svdc_status svdc_cpu_copy(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_check_finite(const svdc_ctx *ctx, const svdc_tensor *x, int *all_finite);
svdc_status svdc_cpu_convert(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_timestep_embedding(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y);

/* resample.c */
svdc_status svdc_cpu_upsample_nearest2x(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);
svdc_status svdc_cpu_concat_channels(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b,
                                     svdc_tensor *y);
svdc_status svdc_cpu_permute_0213(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

#endif
