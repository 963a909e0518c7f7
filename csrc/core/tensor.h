/* tensor.h — building and describing svdc_tensor views (no ownership; see svdc.h). */
#ifndef SVDC_TENSOR_H
#define SVDC_TENSOR_H

#include "svdc.h"

/* Inline (not in tensor.c) so that kernels built as a separate module use them without linking a core file. */
static inline size_t svdc_dtype_width(svdc_dtype dtype) {
    return dtype == SVDC_DTYPE_F32 ? 4 : (dtype == SVDC_DTYPE_F16 || dtype == SVDC_DTYPE_BF16) ? 2 : 0;
}

static inline int64_t svdc_tensor_numel(const svdc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static inline size_t svdc_tensor_bytes(const svdc_tensor *t) {
    return (size_t)svdc_tensor_numel(t) * svdc_dtype_width(t->dtype);
}

/* A view of `data` with the given shape; device and dtype as given. */
svdc_tensor svdc_tensor_view(void *data, svdc_dtype dtype, int device, int ndim, const int64_t *shape);

/* Same data, new shape with the same element count (the caller guarantees it; checked by svdc_tensor_reshape). */
svdc_status svdc_tensor_reshape(const svdc_tensor *t, int ndim, const int64_t *shape, svdc_tensor *out);

/* Writes "(2, 320, 64, 64)" into buf; returns buf. For error messages. */
const char *svdc_shape_str(const svdc_tensor *t, char *buf, size_t len);

/* Convenience constructors for f32 host views, used by models and tests. */
svdc_tensor svdc_f32_1d(float *data, int64_t a);
svdc_tensor svdc_f32_2d(float *data, int64_t a, int64_t b);
svdc_tensor svdc_f32_3d(float *data, int64_t a, int64_t b, int64_t c);
svdc_tensor svdc_f32_4d(float *data, int64_t a, int64_t b, int64_t c, int64_t d);

#endif
