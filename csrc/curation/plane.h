/* plane.h — small-plane reduction for video curation: box-average downscaling of an 8-bit image plane (a decoder's
 * Y, U or V plane, with its row stride) by integer factors, so no full-size colour conversion is ever made. */
#ifndef SVDC_CURATION_PLANE_H
#define SVDC_CURATION_PLANE_H

#include <stdint.h>

#include "svdc.h"

/* dst[r][c] = rounded mean of src[r*fy .. r*fy+fy-1][c*fx .. c*fx+fx-1] for r < height/fy, c < width/fx (the
 * remainder rows and columns are dropped). dst is (height/fy) x (width/fx), C-contiguous. Factors 1..255. */
svdc_status svdc_plane_downscale(const uint8_t *src, int64_t stride, int width, int height, int fx, int fy,
                                 uint8_t *dst);

#endif
