/* plane.c — box-average downscaling of 8-bit planes and lag differences (see plane.h). Downscaling sums rows into a
 * 32-bit column accumulator first (a contiguous loop the compiler vectorises), then groups of fx columns. */
#include "plane.h"

#include <stdlib.h>

svdc_status svdc_plane_downscale(const uint8_t *src, int64_t stride, int width, int height, int fx, int fy,
                                 int rows, uint8_t *dst) {
    if (!src || !dst) return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: src and dst must not be NULL");
    if (width < 1 || height < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: size must be positive, got %dx%d", width, height);
    if (stride < width)
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: stride %lld is below the width %d", (long long)stride,
                         width);
    if (fx < 1 || fx > 255 || fy < 1 || fy > 255)
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: factors must be in [1, 255], got fx=%d fy=%d", fx, fy);
    if (rows < 1 || rows > fy)
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: rows must be in [1, fy=%d], got %d", fy, rows);
    const int out_w = width / fx, out_h = height / fy;
    if (out_w < 1 || out_h < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_downscale: factors %dx%d exceed the plane size %dx%d", fx, fy,
                         width, height);
    const int used_w = out_w * fx;
    uint32_t *cols = malloc((size_t)used_w * sizeof *cols);
    if (!cols) return svdc_fail(SVDC_ERR_MEMORY, "plane_downscale: cannot allocate %d column sums", used_w);
    const uint32_t area = (uint32_t)fx * (uint32_t)rows, half = area / 2;
    for (int r = 0; r < out_h; r++) {
        const uint8_t *block = src + (int64_t)r * fy * stride;
        for (int x = 0; x < used_w; x++) cols[x] = 0;
        for (int k = 0; k < rows; k++) {
            const int offset = (int)(((2 * (int64_t)k + 1) * fy) / (2 * rows)); /* centres of rows equal parts */
            const uint8_t *line = block + (int64_t)offset * stride;
            for (int x = 0; x < used_w; x++) cols[x] += line[x];
        }
        uint8_t *out = dst + (int64_t)r * out_w;
        for (int c = 0; c < out_w; c++) {
            uint32_t sum = 0;
            const uint32_t *group = cols + (int64_t)c * fx;
            for (int k = 0; k < fx; k++) sum += group[k];
            out[c] = (uint8_t)((sum + half) / area);
        }
    }
    free(cols);
    return SVDC_OK;
}

svdc_status svdc_plane_lag_mad(const uint8_t *frames, int64_t n, int64_t plane_size, int64_t lag, float *out) {
    if (!frames || !out) return svdc_fail(SVDC_ERR_ARGUMENT, "plane_lag_mad: frames and out must not be NULL");
    if (n < 0 || plane_size < 1 || plane_size > (INT64_C(1) << 24) || lag < 1)
        return svdc_fail(SVDC_ERR_ARGUMENT,
                         "plane_lag_mad: expected n >= 0, 1 <= plane_size <= 2^24 and lag >= 1, got n=%lld "
                         "plane_size=%lld lag=%lld",
                         (long long)n, (long long)plane_size, (long long)lag);
    for (int64_t i = lag; i < n; i++) {
        const uint8_t *a = frames + i * plane_size, *b = frames + (i - lag) * plane_size;
        uint32_t sum = 0; /* 255 * 2^24 fits */
        for (int64_t k = 0; k < plane_size; k++) sum += (uint32_t)(a[k] > b[k] ? a[k] - b[k] : b[k] - a[k]);
        out[i - lag] = (float)((double)sum / (double)plane_size);
    }
    return SVDC_OK;
}
