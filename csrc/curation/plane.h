/* plane.h — small-plane work for video curation: box-average downscaling of an 8-bit image plane (a decoder's Y, U or
 * V plane, with its row stride) by integer factors, so no full-size colour conversion is ever made; the mean
 * absolute difference of small planes at a frame lag (the cut detector's frame-difference signal); value histograms
 * with mean and spread (its histogram signal and the uniform-frame test of fades). */
#ifndef SVDC_CURATION_PLANE_H
#define SVDC_CURATION_PLANE_H

#include <stdint.h>

#include "svdc.h"

/* dst[r][c] = rounded mean of the block src[r*fy .. r*fy+fy-1][c*fx .. c*fx+fx-1] for r < height/fy,
 * c < width/fx (the remainder rows and columns are dropped), reading `rows` of the block's fy rows, evenly spaced
 * (rows = fy: the exact box mean; fewer rows read less memory, which is what this costs on a decoded frame).
 * dst is (height/fy) x (width/fx), C-contiguous. Factors 1..255, 1 <= rows <= fy. */
svdc_status svdc_plane_downscale(const uint8_t *src, int64_t stride, int width, int height, int fx, int fy,
                                 int rows, uint8_t *dst);

/* out[i - lag] = mean |frames[i] - frames[i - lag]| over plane_size bytes, for i = lag .. n-1: the frame difference
 * at a lag, over n planes of plane_size bytes stored back to back. */
svdc_status svdc_plane_lag_mad(const uint8_t *frames, int64_t n, int64_t plane_size, int64_t lag, float *out);

/* For each of n planes of plane_size bytes stored back to back: hist[i][b] = share of the plane's bytes whose value
 * >> shift is b (bins = 256 >> shift, each row summing to 1, the count over plane_size rounded once to float), and,
 * unless mean and std are both NULL, the mean and population standard deviation of its bytes (exact integer sums,
 * then double). shift 0..7. */
svdc_status svdc_plane_histograms(const uint8_t *frames, int64_t n, int64_t plane_size, int shift, float *hist,
                                  float *mean, float *std);

#endif
