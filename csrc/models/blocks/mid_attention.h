/* mid_attention.h — the self-attention of diffusers' UNetMidBlock2D as the VAEs use it (attention_processor.py
 * Attention with a group norm, one head, biased projections and a residual), shared by the VAE encoder and decoder. */
#ifndef SVDC_BLOCKS_MID_ATTENTION_H
#define SVDC_BLOCKS_MID_ATTENTION_H

#include "common.h"

/* y = x + to_out(softmax(q kᵀ / sqrt(C)) v) with q, k, v = to_q, to_k, to_v of group_norm(x) over the h*w positions. */
typedef struct svdc_mid_attention {
    int channels, groups;
    float eps; /* the group norm's: 1e-6 */
    svdc_tensor norm_w, norm_b;                      /* group_norm (C,) */
    svdc_tensor q_w, q_b, k_w, k_b, v_w, v_b;        /* to_q, to_k, to_v: (C, C), (C,) */
    svdc_tensor out_w, out_b;                        /* to_out.0: (C, C), (C,) */
} svdc_mid_attention;

/* Keys "<prefix>.group_norm.*", "<prefix>.to_q.*", ".to_k.*", ".to_v.*", ".to_out.0.*" (diffusers names). */
svdc_status svdc_mid_attention_declare(svdc_mid_attention *a, svdc_params *p, const char *prefix, int channels,
                                       int groups);
/* x (N, C, h, w) -> y (N, C, h, w), y not aliasing x. Runs image by image (rows are independent), so its temporaries
 * are a few single-image activations. */
svdc_status svdc_mid_attention_forward(const svdc_ctx *ctx, const svdc_mid_attention *a, const svdc_tensor *x,
                                       svdc_tensor *y);

#endif
