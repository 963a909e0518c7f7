/* status.c — the thread-local error text behind svdc_fail / svdc_last_error, and dtype facts. */
#include "svdc.h"
#include "tensor.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_text[1024];

const char *svdc_last_error(void) { return error_text; }

void svdc_clear_error(void) { error_text[0] = '\0'; }

svdc_status svdc_fail(svdc_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, args);
    va_end(args);
    return status;
}

const char *svdc_dtype_name(svdc_dtype dtype) {
    switch (dtype) {
    case SVDC_DTYPE_F32: return "float32";
    case SVDC_DTYPE_F16: return "float16";
    case SVDC_DTYPE_BF16: return "bfloat16";
    }
    return "unknown";
}
