/* tensor.c — element counts, views, reshapes and shape strings for svdc_tensor. */
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

svdc_status svdc_tensor_reshape(const svdc_tensor *t, int ndim, const int64_t *shape, svdc_tensor *out) {
    if (ndim < 0 || ndim > SVDC_MAX_DIMS)
        return svdc_fail(SVDC_ERR_ARGUMENT, "reshape: ndim %d is outside 0..%d", ndim, SVDC_MAX_DIMS);
    svdc_tensor r = svdc_tensor_view(t->data, t->dtype, t->device, ndim, shape);
    if (svdc_tensor_numel(&r) != svdc_tensor_numel(t)) {
        char a[96], b[96];
        return svdc_fail(SVDC_ERR_SHAPE, "reshape: cannot view %s as %s", svdc_shape_str(t, a, sizeof a),
                         svdc_shape_str(&r, b, sizeof b));
    }
    *out = r;
    return SVDC_OK;
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

svdc_tensor svdc_f32_1d(float *data, int64_t a) {
    int64_t s[1] = {a};
    return svdc_tensor_view(data, SVDC_DTYPE_F32, SVDC_DEVICE_CPU, 1, s);
}
svdc_tensor svdc_f32_2d(float *data, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return svdc_tensor_view(data, SVDC_DTYPE_F32, SVDC_DEVICE_CPU, 2, s);
}
svdc_tensor svdc_f32_3d(float *data, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return svdc_tensor_view(data, SVDC_DTYPE_F32, SVDC_DEVICE_CPU, 3, s);
}
svdc_tensor svdc_f32_4d(float *data, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    return svdc_tensor_view(data, SVDC_DTYPE_F32, SVDC_DEVICE_CPU, 4, s);
}
