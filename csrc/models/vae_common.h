/* vae_common.h — what the VAE encoder and decoder share: the level limit, the input/output checks of their
 * forwards, and the two alternating activation slabs their forwards run in. */
#ifndef SVDC_VAE_COMMON_H
#define SVDC_VAE_COMMON_H

#include "blocks/common.h"

#define SVDC_VAE_MAX_LEVELS 8

/* `x` is (N >= 1, channels, H, W) with H and W positive multiples of `multiple`; `what` names the call in the message
 * ("encode", "decode"). */
svdc_status svdc_vae_check_input(const char *what, const svdc_tensor *x, int64_t channels, int64_t multiple);
/* `y` is (x.shape[0], c, h, w). */
svdc_status svdc_vae_check_output(const char *what, const svdc_tensor *y, const svdc_tensor *x, int64_t c, int64_t h,
                                  int64_t w);

/* Two arena slabs that the activations of a forward alternate between, each sized for the largest activation it
 * receives. The sizes come from a planning walk over the same layer sequence as the forward (plan_first, then one
 * plan_step per activation), so e.g. the decoder's last level does not double its widest tensor. `cur` is the slab
 * holding the live activation; the first activation goes to slab 0. */
typedef struct svdc_vae_slabs {
    void *buf[2];
    int64_t cap[2]; /* elements */
    int cur;
} svdc_vae_slabs;

void svdc_vae_slabs_plan_first(svdc_vae_slabs *s, int64_t elems);
void svdc_vae_slabs_plan_step(svdc_vae_slabs *s, int64_t elems); /* the next activation goes to the other slab */
/* Both slabs from ctx->arena at their planned sizes; the live slab is 0 again. */
svdc_status svdc_vae_slabs_alloc(const svdc_ctx *ctx, svdc_vae_slabs *s);
/* A (n, c, h, w) view of slab i; SVDC_ERR_INTERNAL when the plan did not provide for it. */
svdc_status svdc_vae_slabs_view(const svdc_ctx *ctx, const svdc_vae_slabs *s, int i, int64_t n, int64_t c, int64_t h,
                                int64_t w, svdc_tensor *out);
/* A (n, c, h, w) view of the slab the next activation goes to. */
svdc_status svdc_vae_slabs_next(const svdc_ctx *ctx, const svdc_vae_slabs *s, int64_t n, int64_t c, int64_t h,
                                int64_t w, svdc_tensor *out);
/* `next` (a view of the other slab) becomes the live activation `*cur`. */
void svdc_vae_slabs_advance(svdc_vae_slabs *s, svdc_tensor *cur, const svdc_tensor *next);

#endif
