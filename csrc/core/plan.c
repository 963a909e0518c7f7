/* plan.c — the measuring table of a backend (see plan.h). */
#include "plan.h"

#include <string.h>

_Static_assert(SVDC_OP_COUNT <= 64, "scratch_ops is a 64-bit set of op indices");

/* One no-op per op: the arguments were validated by ops.c; nothing is read or written (check_finite leaves the
 * caller's "all finite" answer, which ops.c sets before the call). */
#define PLAN_NOOP_(name, params, args) \
    static svdc_status plan_##name params { return SVDC_OK; }
SVDC_OP_LIST(PLAN_NOOP_)

static svdc_status plan_copy_bytes(int device, void *dst, const void *src, size_t bytes) {
    (void)device;
    (void)dst;
    (void)src;
    (void)bytes;
    return SVDC_OK;
}

static svdc_status plan_synchronize(int device) {
    (void)device;
    return SVDC_OK;
}

void svdc_plan_backend(const svdc_backend *real, svdc_backend *out) {
    *out = *real;
    out->measuring = 1;
    out->copy_to_device = plan_copy_bytes;
    out->copy_to_host = plan_copy_bytes;
    out->synchronize = plan_synchronize;
    /* alloc/free/health stay the real ones: a measuring arena never calls them, and weights are already there. */
#define PLAN_ENTRY_(name, params, args) \
    if (!(real->scratch_ops & SVDC_OP_BIT(name))) out->name = plan_##name;
    SVDC_OP_LIST(PLAN_ENTRY_)
#undef PLAN_ENTRY_
}
