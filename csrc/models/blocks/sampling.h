/* sampling.h — diffusers Downsample2D and Upsample2D with their convolutions (resnet.py / upsampling.py), shared by
 * the UNets and the VAEs. */
#ifndef SVDC_BLOCKS_SAMPLING_H
#define SVDC_BLOCKS_SAMPLING_H

#include "common.h"

/* Downsample2D(use_conv=True): k3 stride 2. UNet: padding 1 -> ceil(h/2); VAE encoder (padding=0): zero pad right
 * and bottom by one first -> floor(h/2). Keys "<prefix>.conv.weight" (C, C, 3, 3), "<prefix>.conv.bias". */
typedef struct svdc_downsample2d {
    svdc_tensor w, b;
    svdc_conv2d_params conv;
} svdc_downsample2d;

typedef enum svdc_downsample_padding {
    SVDC_DOWNSAMPLE_PAD_SAME = 0,        /* padding 1 on every side (UNet) */
    SVDC_DOWNSAMPLE_PAD_RIGHT_BOTTOM = 1 /* (0, 1, 0, 1) (VAE encoder) */
} svdc_downsample_padding;

svdc_status svdc_downsample2d_declare(svdc_downsample2d *d, svdc_params *p, const char *prefix, int channels,
                                      svdc_downsample_padding padding);
/* x (N, C, h, w) -> y (N, C, ho, wo): the caller allocates y with the size its padding gives. */
svdc_status svdc_downsample2d_forward(const svdc_ctx *ctx, const svdc_downsample2d *d, const svdc_tensor *x,
                                      svdc_tensor *y);

/* Upsample2D(use_conv=True): nearest x2, then conv k3 pad 1. Keys "<prefix>.conv.weight" (C, C, 3, 3), ".bias". */
typedef struct svdc_upsample2d {
    svdc_tensor w, b;
} svdc_upsample2d;

svdc_status svdc_upsample2d_declare(svdc_upsample2d *u, svdc_params *p, const char *prefix, int channels);
/* x (N, C, h, w) -> y (N, C, th, tw) with th in {2h - 1, 2h} (likewise tw): an odd target (the UNet's skip of an
 * odd-sized level) crops the x2 map, which equals diffusers' nearest interpolation to that size (src = floor(dst/2)).
 * Runs row by row (the x2 map exists for one row at a time); y may start at x's address (in-place growth). */
svdc_status svdc_upsample2d_forward(const svdc_ctx *ctx, const svdc_upsample2d *u, const svdc_tensor *x,
                                    svdc_tensor *y);

#endif
