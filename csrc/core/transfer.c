/* transfer.c — host <-> device staging (see transfer.h). */
#include "transfer.h"

#include "arena.h"
#include "backend.h"
#include "tensor.h"
#include "try.h"

static int is_host(const svdc_ctx *ctx) { return ctx->device == SVDC_DEVICE_CPU; }

svdc_status svdc_transfer_upload(const svdc_ctx *ctx, const svdc_tensor *host, svdc_dtype dtype, svdc_tensor *out) {
    if (is_host(ctx) && host->dtype == dtype) {
        *out = *host;
        return SVDC_OK;
    }
    svdc_tensor raw = *host; /* the CPU converts straight from the host buffer */
    if (!is_host(ctx)) {
        SVDC_TRY(svdc_arena_tensor(ctx->arena, host->dtype, host->ndim, host->shape, &raw));
        SVDC_TRY(ctx->backend->copy_to_device(ctx->device, raw.data, host->data, svdc_tensor_bytes(&raw)));
    }
    if (raw.dtype == dtype) {
        *out = raw;
        return SVDC_OK;
    }
    SVDC_TRY(svdc_arena_tensor(ctx->arena, dtype, raw.ndim, raw.shape, out));
    return svdc_op_convert(ctx, &raw, out);
}

svdc_status svdc_transfer_output(const svdc_ctx *ctx, const svdc_tensor *like, svdc_dtype dtype, svdc_tensor *out) {
    if (is_host(ctx) && like->dtype == dtype) {
        *out = *like;
        return SVDC_OK;
    }
    return svdc_arena_tensor(ctx->arena, dtype, like->ndim, like->shape, out);
}

svdc_status svdc_transfer_download(const svdc_ctx *ctx, const svdc_tensor *dev, const svdc_tensor *host) {
    if (dev->data == host->data && dev->dtype == host->dtype) return SVDC_OK;
    svdc_tensor back = *dev;
    if (dev->dtype != host->dtype) {
        if (is_host(ctx)) {
            svdc_tensor h = *host;
            return svdc_op_convert(ctx, dev, &h);
        }
        SVDC_TRY(svdc_arena_tensor(ctx->arena, host->dtype, dev->ndim, dev->shape, &back));
        SVDC_TRY(svdc_op_convert(ctx, dev, &back));
    }
    if (is_host(ctx)) {
        svdc_tensor h = *host;
        return svdc_op_copy(ctx, &back, &h);
    }
    return ctx->backend->copy_to_host(ctx->device, host->data, back.data, svdc_tensor_bytes(&back));
}
