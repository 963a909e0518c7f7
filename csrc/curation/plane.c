/* plane.c — box-average downscaling of 8-bit planes, lag differences and value histograms (see plane.h).
 * Downscaling sums the sampled rows of a block row into 16-bit column sums (contiguous loops the compiler
 * vectorises), then groups of fx columns, and divides by the block area with a multiply and a shift (no division
 * instruction per output pixel). */
#include "plane.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The rounded mean (sum + area / 2) / area by a multiply and a shift, m = ceil(2^44 / area): with x = sum + area / 2
 * < 256 * area <= 2^24, x * m / 2^44 exceeds x / area by less than x / 2^44 <= 2^-20, while the fraction of
 * x / area is at most 1 - 1 / area <= 1 - 2^-16, so the floor is the exact quotient; x * m < 2^53 fits 64 bits. */
#define DIVIDE_SHIFT 44

static inline uint64_t mean_multiplier(uint32_t area) { return ((UINT64_C(1) << DIVIDE_SHIFT) + area - 1) / area; }

static inline uint8_t rounded_mean(uint32_t sum, uint32_t half, uint64_t multiplier) {
    return (uint8_t)(((uint64_t)(sum + half) * multiplier) >> DIVIDE_SHIFT);
}

/* out[c] = rounded mean of the fx column sums starting at c * fx; fx a constant where the caller inlines it, so the
 * inner loop unrolls. */
static inline void group_columns(const uint16_t *cols, int out_w, int fx, uint32_t area, uint8_t *out) {
    const uint32_t half = area / 2;
    const uint64_t multiplier = mean_multiplier(area);
    for (int c = 0; c < out_w; c++) {
        const uint16_t *group = cols + (int64_t)c * fx;
        uint32_t sum = 0;
        for (int k = 0; k < fx; k++) sum += group[k];
        out[c] = rounded_mean(sum, half, multiplier);
    }
}

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
    /* column sums of at most 255 rows of bytes: 255 * 255 fits 16 bits */
    uint16_t *cols = malloc((size_t)used_w * sizeof *cols);
    if (!cols) return svdc_fail(SVDC_ERR_MEMORY, "plane_downscale: cannot allocate %d column sums", used_w);
    int offsets[255]; /* the sampled rows of a block: centres of `rows` equal parts of its fy rows */
    for (int k = 0; k < rows; k++) offsets[k] = (int)(((2 * (int64_t)k + 1) * fy) / (2 * rows));
    const uint32_t area = (uint32_t)fx * (uint32_t)rows;
    for (int r = 0; r < out_h; r++) {
        const uint8_t *block = src + (int64_t)r * fy * stride;
        int x = 0;
        /* strips of 16 columns summed over all sampled rows in registers (the fixed-length loops become vector
         * instructions), then stored once */
        for (; x + 16 <= used_w; x += 16) {
            uint16_t strip[16] = {0};
            for (int k = 0; k < rows; k++) {
                const uint8_t *line = block + (int64_t)offsets[k] * stride + x;
                for (int j = 0; j < 16; j++) strip[j] = (uint16_t)(strip[j] + line[j]);
            }
            memcpy(cols + x, strip, sizeof strip);
        }
        for (; x < used_w; x++) {
            uint16_t sum = 0;
            for (int k = 0; k < rows; k++) sum = (uint16_t)(sum + block[(int64_t)offsets[k] * stride + x]);
            cols[x] = sum;
        }
        uint8_t *out = dst + (int64_t)r * out_w;
        switch (fx) { /* the factors of common frame widths to a ~128-px plane, unrolled */
        case 2: group_columns(cols, out_w, 2, area, out); break;
        case 3: group_columns(cols, out_w, 3, area, out); break;
        case 4: group_columns(cols, out_w, 4, area, out); break;
        case 5: group_columns(cols, out_w, 5, area, out); break;
        case 6: group_columns(cols, out_w, 6, area, out); break;
        case 8: group_columns(cols, out_w, 8, area, out); break;
        case 10: group_columns(cols, out_w, 10, area, out); break;
        case 15: group_columns(cols, out_w, 15, area, out); break;
        default: group_columns(cols, out_w, fx, area, out); break;
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
        /* written as abs() of the int difference: the compiler turns it into sum-of-absolute-differences code */
        for (int64_t k = 0; k < plane_size; k++) sum += (uint32_t)abs((int)a[k] - (int)b[k]);
        out[i - lag] = (float)((double)sum / (double)plane_size);
    }
    return SVDC_OK;
}

svdc_status svdc_plane_histograms(const uint8_t *frames, int64_t n, int64_t plane_size, int shift, float *hist,
                                  float *mean, float *std) {
    if (!frames || !hist || (!mean) != (!std))
        return svdc_fail(SVDC_ERR_ARGUMENT, "plane_histograms: frames and hist must not be NULL, mean and std "
                                            "both given or both NULL");
    if (n < 0 || plane_size < 1 || plane_size > (INT64_C(1) << 24) || shift < 0 || shift > 7)
        return svdc_fail(SVDC_ERR_ARGUMENT,
                         "plane_histograms: expected n >= 0, 1 <= plane_size <= 2^24 and 0 <= shift <= 7, got "
                         "n=%lld plane_size=%lld shift=%d",
                         (long long)n, (long long)plane_size, shift);
    const int bins = 256 >> shift;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *f = frames + i * plane_size;
        /* four partial counts: consecutive bytes of equal value do not wait on one counter */
        uint32_t counts[4][256];
        memset(counts, 0, sizeof counts);
        int64_t x = 0;
        for (; x + 4 <= plane_size; x += 4) {
            counts[0][f[x]]++;
            counts[1][f[x + 1]]++;
            counts[2][f[x + 2]]++;
            counts[3][f[x + 3]]++;
        }
        for (; x < plane_size; x++) counts[0][f[x]]++;
        uint32_t binned[256] = {0};
        uint64_t sum = 0, sum_sq = 0; /* exact: at most 2^24 * 255^2 */
        for (int v = 0; v < 256; v++) {
            const uint32_t c = counts[0][v] + counts[1][v] + counts[2][v] + counts[3][v];
            binned[v >> shift] += c;
            sum += (uint64_t)c * (uint64_t)v;
            sum_sq += (uint64_t)c * (uint64_t)(v * v);
        }
        /* a share per bin: the count (exact in float below 2^24) over the pixel count, one rounding */
        float *h = hist + i * bins;
        for (int b = 0; b < bins; b++) h[b] = (float)binned[b] / (float)plane_size;
        if (mean) {
            const double mu = (double)sum / (double)plane_size;
            const double var = (double)sum_sq / (double)plane_size - mu * mu;
            mean[i] = (float)mu;
            std[i] = (float)sqrt(var > 0 ? var : 0);
        }
    }
    return SVDC_OK;
}
