/* svdc.h — the public C API of svdc: status codes, the error text, tensors and version.
 *
 * Usage (C):
 *   svdc_status s = svdc_some_call(...);
 *   if (s != SVDC_OK) fprintf(stderr, "%s\n", svdc_last_error());
 *
 * Ownership: every *_init has a matching *_free; free(NULL) is a no-op. Tensors never own their data: the caller
 * (an arena or a weight block) does.
 * Thread safety: the error text is thread-local; model objects are not re-entrant (the Python binding holds a mutex
 * per object); the weight blocks are immutable after load and may be shared between threads.
 */
#ifndef SVDC_H
#define SVDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SVDC_VERSION /* set by setup.py from svdc/_version.py, the one place the version lives */
#define SVDC_VERSION "unknown"
#endif
#define SVDC_MAX_DIMS 6

typedef enum svdc_status {
    SVDC_OK = 0,
    SVDC_ERR_ARGUMENT = 1,   /* a bad scalar argument (negative size, unknown enum, ...) -> ValueError */
    SVDC_ERR_SHAPE = 2,      /* shapes or dtypes do not fit -> svdc.ShapeError (a ValueError) */
    SVDC_ERR_VALUE = 3,      /* bad values, e.g. NaN/Inf input -> ValueError */
    SVDC_ERR_MEMORY = 4,     /* allocation failed -> MemoryError naming bytes and device */
    SVDC_ERR_CHECKPOINT = 5, /* missing/unknown/mis-shaped weight -> svdc.CheckpointError */
    SVDC_ERR_DEVICE = 6,     /* backend not available / sticky device error -> svdc.DeviceUnavailableError */
    SVDC_ERR_INTERNAL = 7    /* a bug in svdc -> svdc.SvdcError */
} svdc_status;

/* The message of the last failure on this thread ("" when none). Valid until the next failing call. */
const char *svdc_last_error(void);

/* Record a failure: formats the message into the thread-local buffer and returns `status`, so that library code can
 * write `return svdc_fail(SVDC_ERR_SHAPE, "linear: x has %d columns, expected %d", a, b);`. */
svdc_status svdc_fail(svdc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clear the thread-local message. */
void svdc_clear_error(void);

typedef enum svdc_dtype { SVDC_DTYPE_F32 = 0, SVDC_DTYPE_F16 = 1, SVDC_DTYPE_BF16 = 2 } svdc_dtype;

/* Bytes per element (0 for a value that is not a dtype). Inline, so that modules linking no core file (the CUDA
 * kernels) have it too. */
static inline size_t svdc_dtype_size(svdc_dtype dtype) {
    return dtype == SVDC_DTYPE_F32 ? 4 : (dtype == SVDC_DTYPE_F16 || dtype == SVDC_DTYPE_BF16) ? 2 : 0;
}
const char *svdc_dtype_name(svdc_dtype dtype);

/* A non-owning view: NumPy-order shape (outermost first), C-contiguous, on one device.
 * device: -1 = host memory (CPU backend), N >= 0 = CUDA device N. */
typedef struct svdc_tensor {
    void *data;
    svdc_dtype dtype;
    int device;
    int ndim;
    int64_t shape[SVDC_MAX_DIMS];
} svdc_tensor;

#define SVDC_DEVICE_CPU (-1)

#ifdef __cplusplus
}
#endif
#endif /* SVDC_H */
