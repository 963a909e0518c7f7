/* attention.h — the residual sub-layers of diffusers' BasicTransformerBlock (attention.py): self-attention,
 * cross-attention and the GEGLU feed-forward, each x += sublayer(LayerNorm(x)), and the block that chains them.
 * Shared by the 2-D transformer (SD 2.x), the spatio-temporal transformer (SVD) and its temporal blocks. */
#ifndef SVDC_BLOCKS_ATTENTION_H
#define SVDC_BLOCKS_ATTENTION_H

#include "../../core/ops.h"
#include "../../core/params.h"

/* diffusers Attention as the UNets use it: to_q/to_k/to_v without bias, to_out.0 with bias, heads split head-major.
 * upcast_attention (SD 2.1) changes nothing here: every score is computed in float32 already. */
typedef struct svdc_attention {
    int query_dim;   /* C = heads * head_dim */
    int context_dim; /* C for self-attention, cross_attention_dim for cross-attention */
    int heads;
    svdc_tensor q_w, k_w, v_w; /* (C, C), (C, Ckv), (C, Ckv) */
    svdc_tensor out_w, out_b;  /* (C, C), (C,) */
} svdc_attention;

/* diffusers FeedForward with GEGLU: net.0.proj (2*inner, dim) -> a * gelu(g) -> net.2 (dim, inner), inner = 4*dim. */
typedef struct svdc_geglu_ff {
    int dim, inner;
    svdc_tensor proj_w, proj_b, out_w, out_b;
} svdc_geglu_ff;

/* BasicTransformerBlock (pre-LN, LN eps 1e-5): norm1 + attn1 (self), norm2 + attn2 (cross), norm3 + ff. */
typedef struct svdc_basic_block {
    svdc_tensor norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b;
    svdc_attention attn1, attn2;
    svdc_geglu_ff ff;
} svdc_basic_block;

/* Weights under `prefix` (diffusers names): attention "<prefix>.to_q.weight", ...; ff "<prefix>.net.0.proj.weight", ...;
 * block "<prefix>.norm1.weight", "<prefix>.attn1.*", "<prefix>.attn2.*", "<prefix>.ff.*". */
svdc_status svdc_attention_declare(svdc_attention *a, svdc_params *p, const char *prefix, int channels,
                                   int context_dim, int heads);
svdc_status svdc_geglu_ff_declare(svdc_geglu_ff *f, svdc_params *p, const char *prefix, int dim);
svdc_status svdc_basic_block_declare(svdc_basic_block *b, svdc_params *p, const char *prefix, int channels, int heads,
                                     int context_dim);

/* The sub-layers update the float32 token stream x in place; every one runs in chunks whose scratch is capped, so the
 * stream is the only full-size buffer it touches. Temporaries come from ctx->arena and are released on return. */

/* x (rows, C) += FF(LN(x)). */
svdc_status svdc_ff_residual(const svdc_ctx *ctx, const svdc_geglu_ff *ff, const svdc_tensor *norm_w,
                             const svdc_tensor *norm_b, float *x, int64_t rows);
/* x (batch, len, C) += SelfAttn(LN(x)) over the `len` tokens of each batch entry. */
svdc_status svdc_self_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *norm_w,
                                    const svdc_tensor *norm_b, float *x, int64_t batch, int64_t len);
/* x (B, T, C) += CrossAttn(LN(x), context[b]) for every token of entry b; context (B, L, context_dim). A context of
 * length 1 takes the exact softmax-free path to_out(to_v(context[b])) broadcast over the T tokens. */
svdc_status svdc_cross_attn_residual(const svdc_ctx *ctx, const svdc_attention *a, const svdc_tensor *norm_w,
                                     const svdc_tensor *norm_b, float *x, int64_t batch, int64_t tokens,
                                     const svdc_tensor *context);

/* One BasicTransformerBlock on x (rows, len, C): self-attention within each row's `len` tokens, then cross-attention
 * of every token to its context entry (context (Bc, L, D); rows*len must be a multiple of Bc: with video rows
 * (B*F, hw, C) all F*hw tokens of video b see context[b]), then the feed-forward. */
svdc_status svdc_basic_block_forward(const svdc_ctx *ctx, const svdc_basic_block *b, float *x, int64_t rows,
                                     int64_t len, const svdc_tensor *context);

#endif
