/* vae_common.c — input/output checks and the alternating activation slabs of the VAE encoder and decoder. */
#include "vae_common.h"

svdc_status svdc_vae_check_input(const char *what, const svdc_tensor *x, int64_t channels, int64_t multiple) {
    char buf[96];
    if (!x || !x->data) return svdc_fail(SVDC_ERR_ARGUMENT, "vae %s: input is missing", what);
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != channels)
        return svdc_fail(SVDC_ERR_SHAPE, "vae %s: input has shape %s, expected (N, %lld, H, W)", what,
                         svdc_shape_str(x, buf, sizeof buf), (long long)channels);
    if (x->shape[2] < 1 || x->shape[3] < 1 || x->shape[2] % multiple || x->shape[3] % multiple)
        return svdc_fail(SVDC_ERR_SHAPE, "vae %s: input has shape %s, H and W must be positive multiples of %lld",
                         what, svdc_shape_str(x, buf, sizeof buf), (long long)multiple);
    return SVDC_OK;
}

svdc_status svdc_vae_check_output(const char *what, const svdc_tensor *y, const svdc_tensor *x, int64_t c, int64_t h,
                                  int64_t w) {
    if (!y || !y->data || y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != c || y->shape[2] != h ||
        y->shape[3] != w) {
        char buf[96];
        return svdc_fail(SVDC_ERR_SHAPE, "vae %s: output has shape %s, expected (%lld, %lld, %lld, %lld)", what,
                         y ? svdc_shape_str(y, buf, sizeof buf) : "(none)", (long long)x->shape[0], (long long)c,
                         (long long)h, (long long)w);
    }
    return SVDC_OK;
}

void svdc_vae_slabs_plan_first(svdc_vae_slabs *s, int64_t elems) {
    s->cap[0] = elems;
    s->cap[1] = 0;
    s->cur = 0;
}

void svdc_vae_slabs_plan_step(svdc_vae_slabs *s, int64_t elems) {
    const int i = 1 - s->cur;
    if (elems > s->cap[i]) s->cap[i] = elems;
    s->cur = i;
}

svdc_status svdc_vae_slabs_alloc(const svdc_ctx *ctx, svdc_vae_slabs *s) {
    for (int i = 0; i < 2; i++) {
        int64_t elems = s->cap[i] > 0 ? s->cap[i] : 1;
        svdc_tensor t;
        SVDC_TRY(blk_alloc(ctx, &t, 1, &elems));
        s->buf[i] = t.data;
    }
    s->cur = 0;
    return SVDC_OK;
}

svdc_status svdc_vae_slabs_view(const svdc_ctx *ctx, const svdc_vae_slabs *s, int i, int64_t n, int64_t c, int64_t h,
                                int64_t w, svdc_tensor *out) {
    if (n * c * h * w > s->cap[i])
        return svdc_fail(SVDC_ERR_INTERNAL, "vae: activation (%lld, %lld, %lld, %lld) exceeds its planned slab of %lld "
                         "elements", (long long)n, (long long)c, (long long)h, (long long)w, (long long)s->cap[i]);
    *out = blk_view4(ctx, s->buf[i], n, c, h, w);
    return SVDC_OK;
}

svdc_status svdc_vae_slabs_next(const svdc_ctx *ctx, const svdc_vae_slabs *s, int64_t n, int64_t c, int64_t h,
                                int64_t w, svdc_tensor *out) {
    return svdc_vae_slabs_view(ctx, s, 1 - s->cur, n, c, h, w, out);
}

void svdc_vae_slabs_advance(svdc_vae_slabs *s, svdc_tensor *cur, const svdc_tensor *next) {
    *cur = *next;
    s->cur ^= 1;
}
