/* op_list.h — the op list as data: one X-macro entry per backend op, in table order. Everything that must agree with
 * the list is generated from it: the fields of svdc_backend (backend.h), the CPU, CUDA and emulated-device
 * prototypes and tables, the backend ABI signature (a string of the names, compared at registration) and the op
 * names the test surface exposes (svdc._C._ops.OP_LIST, which tests/device checks against its case table).
 *
 * X(name, parameters, arguments): parameters as in the backend table (already validated by ops.c), arguments the
 * same names, so a wrapper can forward a call. Adding an entry without a kernel in kernels/cpu fails the build
 * (the CPU table names svdc_cpu_<name>), and without a case in tests/device/test_emu_ops.py fails a test. */
#ifndef SVDC_OP_LIST_H
#define SVDC_OP_LIST_H

#define SVDC_OP_LIST(X)                                                                                              \
    X(linear,                                                                                                        \
      (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b, svdc_tensor *y),       \
      (ctx, x, w, b, y))                                                                                             \
    X(conv2d,                                                                                                        \
      (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,                        \
       const svdc_conv2d_params *p, svdc_tensor *y),                                                                 \
      (ctx, x, w, b, p, y))                                                                                          \
    X(conv_temporal,                                                                                                 \
      (const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w, const svdc_tensor *b,        \
       svdc_tensor *y),                                                                                              \
      (ctx, x, num_frames, w, b, y))                                                                                 \
    /* bias (N, C) or NULL: added to x per row and channel before the statistics (a res block's time embedding) */ \
    X(group_norm,                                                                                                    \
      (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias, int num_groups, int frames,               \
       const svdc_tensor *gamma, const svdc_tensor *beta, float eps, int apply_silu, svdc_tensor *y),                \
      (ctx, x, bias, num_groups, frames, gamma, beta, eps, apply_silu, y))                                           \
    X(layer_norm,                                                                                                    \
      (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma, const svdc_tensor *beta, float eps,      \
       svdc_tensor *y),                                                                                              \
      (ctx, x, gamma, beta, eps, y))                                                                                 \
    X(attention,                                                                                                     \
      (const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v, int num_heads,         \
       float scale, int causal, svdc_tensor *y),                                                                     \
      (ctx, q, k, v, num_heads, scale, causal, y))                                                                   \
    X(gelu, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                                \
    X(silu, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                                \
    X(geglu, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                               \
    X(axpby,                                                                                                         \
      (const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b, svdc_tensor *y),    \
      (ctx, alpha, a, beta, b, y))                                                                                   \
    X(mul, (const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y), (ctx, a, b, y))        \
    X(add_channel_bias, (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias, svdc_tensor *y),        \
      (ctx, x, bias, y))                                                                                             \
    X(add_token_bias, (const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y),             \
      (ctx, x, v, y))                                                                                                \
    X(upsample_nearest2x, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                  \
    X(concat_channels, (const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y),            \
      (ctx, a, b, y))                                                                                                \
    X(permute_0213, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                        \
    /* y = alpha * permute_0213(x) + beta * r; r has y's shape and may be y itself */                             \
    X(permute_0213_axpby,                                                                                            \
      (const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta, const svdc_tensor *r, svdc_tensor *y),    \
      (ctx, alpha, x, beta, r, y))                                                                                   \
    X(timestep_embedding, (const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y), (ctx, t, dim, y))    \
    X(convert, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                             \
    X(copy, (const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y), (ctx, x, y))                                \
    X(fill, (const svdc_ctx *ctx, svdc_tensor *y, float value), (ctx, y, value))                                     \
    /* sets *all_finite to 1 or 0 */                                                                                 \
    X(check_finite, (const svdc_ctx *ctx, const svdc_tensor *x, int *all_finite), (ctx, x, all_finite))          \
    /* the two halves of a group norm, for statistics gathered over chunks (the streamed VAE decoder) */           \
    X(group_norm_moments,                                                                                            \
      (const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames, svdc_tensor *moments),                 \
      (ctx, x, num_groups, frames, moments))                                                                         \
    X(group_norm_apply,                                                                                              \
      (const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames, const svdc_tensor *stats,              \
       const svdc_tensor *gamma, const svdc_tensor *beta, int apply_silu, svdc_tensor *y),                           \
      (ctx, x, num_groups, frames, stats, gamma, beta, apply_silu, y))

/* The names, comma-separated: the ABI signature a backend table carries and the registry compares. */
#define SVDC_OP_NAME_(name, params, args) #name ","
#define SVDC_OP_SIGNATURE SVDC_OP_LIST(SVDC_OP_NAME_)

/* SVDC_OP_COUNT: the number of ops in the list. */
#define SVDC_OP_ONE_(name, params, args) +1
enum { SVDC_OP_COUNT = 0 SVDC_OP_LIST(SVDC_OP_ONE_) };

/* SVDC_OP_INDEX_<name>: an op's position in the list; SVDC_OP_BIT(name) its bit in a set of ops. */
#define SVDC_OP_INDEX_ENTRY_(name, params, args) SVDC_OP_INDEX_##name,
enum { SVDC_OP_LIST(SVDC_OP_INDEX_ENTRY_) SVDC_OP_INDEX_END_ };
#define SVDC_OP_BIT(name) (1ULL << SVDC_OP_INDEX_##name)

#endif
