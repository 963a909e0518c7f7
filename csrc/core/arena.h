/* arena.h — the activation allocator: a stack of device chunks with mark/release, reset per model call, that
 * remembers its high-water mark. Chunks are kept between calls, so a steady-state call allocates nothing.
 *
 * Pattern inside a model:  out = alloc(...);  m = mark();  ...temporaries...;  release(m);   // out survives
 */
#ifndef SVDC_ARENA_H
#define SVDC_ARENA_H

#include "svdc.h"

typedef struct svdc_backend svdc_backend;
typedef struct svdc_arena svdc_arena;

svdc_status svdc_arena_init(svdc_arena **out, const svdc_backend *backend, int device);
/* A measuring arena for a planning pass (plan.h): it hands out addresses of a PROT_NONE reservation (never backed,
 * never readable), never calls the backend, and its peak is what a real call of the same work needs. */
svdc_status svdc_arena_init_measuring(svdc_arena **out, int device);
void svdc_arena_free(svdc_arena *arena); /* NULL is a no-op; returns every chunk to the device */

/* 256-byte aligned; NULL (with SVDC_ERR_MEMORY and a message naming bytes and device) when the device is out of
 * memory. */
void *svdc_arena_alloc(svdc_arena *arena, size_t bytes);

/* Allocates a tensor of the given dtype/shape on the arena's device; out->data is NULL on failure. */
svdc_status svdc_arena_tensor(svdc_arena *arena, svdc_dtype dtype, int ndim, const int64_t *shape, svdc_tensor *out);

size_t svdc_arena_mark(const svdc_arena *arena);
void svdc_arena_release(svdc_arena *arena, size_t mark); /* frees everything allocated after `mark` */
void svdc_arena_reset(svdc_arena *arena);                 /* release(0) */

size_t svdc_arena_peak(const svdc_arena *arena);      /* high-water mark of in_use since the last reset_peak */
size_t svdc_arena_reserved(const svdc_arena *arena);  /* bytes held from the device */
void svdc_arena_reset_peak(svdc_arena *arena);
/* Returns every chunk to the device (keeps the arena usable). */
void svdc_arena_trim(svdc_arena *arena);
/* Holds exactly one chunk of at least `bytes` (trims first when it must grow or merge): reserved at a call's
 * measured peak, the next calls of the same shapes neither allocate nor free device memory. Needs an empty arena. */
svdc_status svdc_arena_reserve(svdc_arena *arena, size_t bytes);
int svdc_arena_num_chunks(const svdc_arena *arena);
/* The status of the last failed allocation: SVDC_ERR_MEMORY, or the device error the backend reported. */
svdc_status svdc_arena_last_status(const svdc_arena *arena);

#endif
