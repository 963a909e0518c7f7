/* transfer.h — the host <-> device transfer service: a host tensor staged into the context's arena (copied, then
 * converted to the device dtype on the device) and a device tensor brought back into a host buffer (converted to
 * the host dtype on the device, then copied). On the CPU backend with matching dtypes nothing is copied. Used by
 * the model bindings and the op-test surface. */
#ifndef SVDC_TRANSFER_H
#define SVDC_TRANSFER_H

#include "ops.h"

/* `out` becomes a tensor on ctx's device, of dtype `dtype`, holding host tensor `host` (allocated from ctx's arena;
 * the CPU backend with host->dtype == dtype just views `host`). */
svdc_status svdc_transfer_upload(const svdc_ctx *ctx, const svdc_tensor *host, svdc_dtype dtype, svdc_tensor *out);

/* An uninitialised tensor on ctx's device with `like`'s shape and dtype `dtype` (the CPU backend with `like` of that
 * dtype: `like` itself, so the result is written in place). */
svdc_status svdc_transfer_output(const svdc_ctx *ctx, const svdc_tensor *like, svdc_dtype dtype, svdc_tensor *out);

/* Copies device tensor `dev` into host tensor `host` (same shape; converted to host->dtype first when they differ).
 * A no-op when they are the same memory. */
svdc_status svdc_transfer_download(const svdc_ctx *ctx, const svdc_tensor *dev, const svdc_tensor *host);

#endif
