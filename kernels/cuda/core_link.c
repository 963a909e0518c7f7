/* core_link.c — the core functions the CUDA kernels call, forwarded to the core of svdc._C through the services
 * table the device registry hands over at registration (backend.h: svdc_core_services). svdc._C_cuda compiles no
 * core file: one thread-local error buffer (the core's) and one arena implementation serve both modules. Before
 * registration (device_count, device_name) failures land in a small local buffer. */
#include <stdarg.h>
#include <stdio.h>

#include "arena.h"
#include "backend.h"

const svdc_core_services *svdc_cuda_core_services(void);

static _Thread_local char early_error[1024];

svdc_status svdc_fail(svdc_status status, const char *fmt, ...) {
    char text[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    const svdc_core_services *core = svdc_cuda_core_services();
    if (core) return core->fail(status, text);
    snprintf(early_error, sizeof early_error, "%s", text);
    return status;
}

const char *svdc_last_error(void) {
    const svdc_core_services *core = svdc_cuda_core_services();
    return core ? core->last_error() : early_error;
}

void *svdc_arena_alloc(svdc_arena *arena, size_t bytes) {
    const svdc_core_services *core = svdc_cuda_core_services();
    if (!core) {
        svdc_fail(SVDC_ERR_INTERNAL, "cuda: scratch requested before the backend was registered with the core");
        return NULL;
    }
    return core->scratch_alloc(arena, bytes);
}

size_t svdc_arena_mark(const svdc_arena *arena) {
    const svdc_core_services *core = svdc_cuda_core_services();
    return core ? core->scratch_mark(arena) : 0;
}

void svdc_arena_release(svdc_arena *arena, size_t mark) {
    const svdc_core_services *core = svdc_cuda_core_services();
    if (core) core->scratch_release(arena, mark);
}
