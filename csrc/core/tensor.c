/* tensor.c — views and shape strings for svdc_tensor. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

svdc_tensor svdc_tensor_view(void *data, svdc_dtype dtype, int device, int ndim, const int64_t *shape) {
    svdc_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.device = device;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < SVDC_MAX_DIMS; i++) t.shape[i] = shape[i];
    return t;
}

const char *svdc_shape_str(const svdc_tensor *t, char *buf, size_t len) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, len - used, "(");
    for (int i = 0; i < t->ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (t->ndim == 1 && used < len) used += (size_t)snprintf(buf + used, len - used, ",");
    if (used < len) snprintf(buf + used, len - used, ")");
    return buf;
}
