/* ops.h — the op layer models compute with: each svdc_op_* validates shapes/dtypes/devices, then dispatches through
 * the context's backend table (backend.h). Models never call kernels directly.
 *
 * Conventions for every op:
 * - Tensors are C-contiguous with NumPy-order shapes; `y` (the output) is preallocated by the caller with the
 *   exact shape stated below, and must not alias an input unless the op says "in place allowed".
 * - All tensors of one call share the context's device and dtype (the CPU backend computes in float32).
 * - A failure returns a status and leaves a message naming the op, the tensor, and the expected vs actual value.
 */
#ifndef SVDC_OPS_H
#define SVDC_OPS_H

#include "svdc.h"
#include "tensor.h"

typedef struct svdc_backend svdc_backend;
typedef struct svdc_arena svdc_arena;

/* What every op and model call runs in: a backend and the arena that activations/scratch come from. */
typedef struct svdc_ctx {
    const svdc_backend *backend;
    svdc_arena *arena;
    int device; /* SVDC_DEVICE_CPU or a CUDA ordinal; tensors must live here */
} svdc_ctx;

/* The bytes a model should keep one op's scratch under when it splits a layer into chunks: the CPU's cache-friendly
 * size on the CPU, 0 where the backend asks for one op per layer (a GPU, the emulated device). */
size_t svdc_ctx_chunk_budget(const svdc_ctx *ctx);

/* y[..., N] = x[..., K] · w[N, K]ᵀ (+ b[N]). x may have any number of leading dims (rows = their product). */
svdc_status svdc_op_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                           svdc_tensor *y);

typedef struct svdc_conv2d_params {
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right; /* zero padding; asymmetric allowed (VAE downsampler: 0,1,0,1) */
} svdc_conv2d_params;

/* x (N, C, H, W), w (O, C, kh, kw), b (O,) or NULL -> y (N, O, Ho, Wo) with
 * Ho = (H + pad_top + pad_bottom - kh) / stride_h + 1 (floor), likewise Wo. */
svdc_status svdc_op_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                           const svdc_conv2d_params *p, svdc_tensor *y);

/* Temporal convolution over frames with kernel 3 and zero padding 1, i.e. a Conv3d with kernel (3,1,1) and padding
 * (1,0,0) applied to each video. x (B*F, C, H, W) with frames minor, w (O, C, 3) (the Conv3d weight [O, C, 3, 1, 1]
 * viewed without its unit dims), b (O,) or NULL -> y (B*F, O, H, W):
 *   y[b,f] = b + sum_{k=0..2} w[:, :, k] · x[b, f + k - 1]   (frames outside 0..F-1 are zero). */
svdc_status svdc_op_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                  const svdc_tensor *b, svdc_tensor *y);

/* Group norm. x (N, C, S...) (any trailing spatial dims, at least one, may be 1). Statistics for group g are taken
 * over its C/groups channels x all spatial positions x `frames` consecutive rows: frames = 1 is the ordinary per-row
 * (per frame) group norm; frames = F pools the F frames of each video, as the 5-D GroupNorm of the temporal blocks
 * does (N must be a multiple of frames). gamma/beta (C,) or NULL. apply_silu fuses y = silu(norm(x)).
 * Variance is the biased one (divide by count), y = (x - mean) / sqrt(var + eps) * gamma + beta. In place allowed. */
svdc_status svdc_op_group_norm(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                               const svdc_tensor *gamma, const svdc_tensor *beta, float eps, int apply_silu,
                               svdc_tensor *y);
/* Group norm of x + bias: bias (N, C) is added to every spatial value of row n, channel c before the statistics, as
 * a res block adds its time embedding right before norm2 (one pass instead of add_channel_bias + group_norm; the sum
 * is rounded to float32 first, so the result equals those two ops'). x itself is not changed unless y is x. */
svdc_status svdc_op_group_norm_biased(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                      int num_groups, int frames, const svdc_tensor *gamma, const svdc_tensor *beta,
                                      float eps, int apply_silu, svdc_tensor *y);

/* The group norm in two halves, for statistics gathered over chunks of a tensor too large to normalise at once
 * (csrc/models/vae_stream.c). Shapes and grouping as in group_norm; `moments` and `stats` are float32 on every
 * backend, one row per (video, group):
 *   group_norm_moments: moments (N/frames, G, 3) = (mean_hi, mean_lo, m2), the mean as a float pair (hi + lo) and
 *     m2 = sum over the group's values of (x - mean)^2, so chunks combine exactly (Chan et al.) in double;
 *   group_norm_apply: stats (N/frames, G, 3) = (mean_hi, mean_lo, rstd) ->
 *     y = ((x - mean_hi) - mean_lo) * rstd * gamma + beta, then silu when apply_silu. In place allowed. */
svdc_status svdc_op_group_norm_moments(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                       svdc_tensor *moments);
svdc_status svdc_op_group_norm_apply(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                     const svdc_tensor *stats, const svdc_tensor *gamma, const svdc_tensor *beta,
                                     int apply_silu, svdc_tensor *y);

/* Layer norm over the last dim D: x (..., D), gamma/beta (D,) or NULL -> y same shape. In place allowed. */
svdc_status svdc_op_layer_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                               const svdc_tensor *beta, float eps, svdc_tensor *y);

/* Multi-head attention with a streaming (online) softmax: memory never grows with Lq x Lk.
 * q (B, Lq, H*D), k (B, Lk, H*D), v (B, Lk, H*D) -> y (B, Lq, H*D); the last dim is split head-major (H, D).
 * y = softmax(scale · q kᵀ [+ causal mask]) v per batch and head. causal masks key j > query i (needs Lq == Lk). */
svdc_status svdc_op_attention(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                              int num_heads, float scale, int causal, svdc_tensor *y);

/* Elementwise; x and y have the same shape; in place allowed. */
svdc_status svdc_op_gelu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);  /* exact erf GELU */
svdc_status svdc_op_silu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* GEGLU: x (..., 2N) split into [a | g] along the last dim -> y (..., N) = a * gelu(g) (exact erf). */
svdc_status svdc_op_geglu(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* y = alpha * a + beta * b (same shapes; in place allowed). add: alpha = beta = 1. */
svdc_status svdc_op_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                          svdc_tensor *y);
svdc_status svdc_op_add(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);
/* y = a * b elementwise (same shapes). */
svdc_status svdc_op_mul(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);
/* y = alpha * x. */
svdc_status svdc_op_scale(const svdc_ctx *ctx, const svdc_tensor *x, float alpha, svdc_tensor *y);

/* The alpha blender: y = alpha * x_spatial + (1 - alpha) * x_temporal, alpha already a probability (the model applies
 * the sigmoid to mix_factor and chooses the direction: UNet alpha = σ(m); VAE alpha = 1 - σ(m)). In place allowed. */
svdc_status svdc_op_alpha_blend(const svdc_ctx *ctx, const svdc_tensor *x_spatial, const svdc_tensor *x_temporal,
                                float alpha, svdc_tensor *y);

/* Channels-first broadcast add: x (N, C, S...) + bias (N, C) -> y, bias[n, c] added at every position.
 * (the per-row time-embedding projection of a res block). In place allowed. */
svdc_status svdc_op_add_channel_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                     svdc_tensor *y);

/* Channels-last broadcast add: x (N, L, C) + v (N, C) -> y, v[n] added to every token of row n
 * (frame position embedding; the constant cross-attention output). In place allowed. */
svdc_status svdc_op_add_token_bias(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y);

/* Nearest-neighbour x2: x (N, C, H, W) -> y (N, C, 2H, 2W). */
svdc_status svdc_op_upsample_nearest2x(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* Channel concat: a (N, C1, S...), b (N, C2, S...) -> y (N, C1 + C2, S...), a first. */
svdc_status svdc_op_concat_channels(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y);

/* Swap the two middle axes: x (A, B, C, D) -> y (A, C, B, D). Used for (B, F, hw, C) <-> (B, hw, F, C) and, with
 * D = 1, for NCHW <-> NHWC: (N, C, HW, 1) -> (N, HW, C, 1). */
svdc_status svdc_op_permute_0213(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* y = alpha * permute_0213(x) + beta * r: the permute with the sum that follows it in one pass (a transformer's exit
 * residual, the spatio-temporal mixer). r has y's shape (A, C, B, D) and may be y itself; y must not overlap x. */
svdc_status svdc_op_permute_0213_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta,
                                       const svdc_tensor *r, svdc_tensor *y);

/* Sinusoidal embedding, cos first (flip_sin_to_cos=True, downscale_freq_shift=0, max_period 10000):
 * t (N,) -> y (N, dim); half = dim/2, freq_k = exp(-ln(10000)·k/half), y = [cos(t·freq), sin(t·freq)];
 * an odd dim gets a zero last column (as diffusers pads). */
svdc_status svdc_op_timestep_embedding(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y);

/* Copies with dtype conversion (f32 <-> f16 <-> bf16, round-to-nearest-even); same shape, any dtypes. */
svdc_status svdc_op_convert(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* y = x (same shape and dtype). */
svdc_status svdc_op_copy(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y);

/* Every element of y set to value. */
svdc_status svdc_op_fill(const svdc_ctx *ctx, svdc_tensor *y, float value);

/* SVDC_ERR_VALUE naming `what` if any element of x is NaN or ±Inf. */
svdc_status svdc_op_check_finite(const svdc_ctx *ctx, const svdc_tensor *x, const char *what);

#endif
