/* tensor.h — building and describing svdc_tensor views (no ownership; see svdc.h). */
#ifndef SVDC_TENSOR_H
#define SVDC_TENSOR_H

#include "svdc.h"

/* Inline (not in tensor.c) so that kernels built as a separate module use them without linking a core file. */
static inline int64_t svdc_tensor_numel(const svdc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static inline size_t svdc_tensor_bytes(const svdc_tensor *t) {
    return (size_t)svdc_tensor_numel(t) * svdc_dtype_size(t->dtype);
}

/* A view of `data` with the given shape; device and dtype as given. */
svdc_tensor svdc_tensor_view(void *data, svdc_dtype dtype, int device, int ndim, const int64_t *shape);

/* Writes "(2, 320, 64, 64)" into buf; returns buf. For error messages. */
const char *svdc_shape_str(const svdc_tensor *t, char *buf, size_t len);

#endif
