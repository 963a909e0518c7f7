/* arena.c — chunked stack allocator for activations (see arena.h). Offsets are "logical": chunk i covers
 * [start_i, start_i + cap_i) and chunks are contiguous in that space, so a mark is a single number. A measuring
 * arena has one chunk: a large address-space reservation that nothing reads or writes. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"
#include "tensor.h"

#define ARENA_ALIGN 256
#define ARENA_MIN_CHUNK ((size_t)64 << 20)
#define ARENA_MAX_CHUNKS 64
/* Address space a measuring arena reserves (PROT_NONE, no memory behind it): the largest plan it can measure.
 * Under an address-space limit (RLIMIT_AS) it halves down to the smallest span, which any real call fits anyway. */
#define ARENA_MEASURING_SPAN ((size_t)1 << 40)
#define ARENA_MEASURING_MIN_SPAN ((size_t)256 << 20)

typedef struct arena_chunk {
    char *base;
    size_t start; /* logical offset of base */
    size_t cap;
} arena_chunk;

struct svdc_arena {
    const svdc_backend *backend;
    int device;
    arena_chunk chunks[ARENA_MAX_CHUNKS];
    int num_chunks;
    int current;  /* chunk holding the logical top */
    size_t top;   /* logical offset of the first free byte */
    size_t peak;
    svdc_status last_status; /* why the last failed allocation failed (SVDC_ERR_MEMORY or a device error) */
    int measuring;           /* chunks[0] is a PROT_NONE reservation; the backend is never called */
};

svdc_status svdc_arena_init(svdc_arena **out, const svdc_backend *backend, int device) {
    *out = NULL;
    svdc_arena *a = calloc(1, sizeof *a);
    if (!a) return svdc_fail(SVDC_ERR_MEMORY, "arena: cannot allocate %zu bytes of host memory", sizeof *a);
    a->backend = backend;
    a->device = device;
    *out = a;
    return SVDC_OK;
}

svdc_status svdc_arena_init_measuring(svdc_arena **out, int device) {
    *out = NULL;
    size_t bytes = ARENA_MEASURING_SPAN;
    void *span = MAP_FAILED;
    for (; bytes >= ARENA_MEASURING_MIN_SPAN; bytes /= 2) {
        span = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (span != MAP_FAILED) break;
    }
    if (span == MAP_FAILED)
        return svdc_fail(SVDC_ERR_MEMORY, "arena: cannot reserve %zu bytes of address space for a measuring pass",
                         ARENA_MEASURING_MIN_SPAN);
    svdc_arena *a = calloc(1, sizeof *a);
    if (!a) {
        munmap(span, bytes);
        return svdc_fail(SVDC_ERR_MEMORY, "arena: cannot allocate %zu bytes of host memory", sizeof *a);
    }
    a->device = device;
    a->measuring = 1;
    a->chunks[0] = (arena_chunk){span, 0, bytes};
    a->num_chunks = 1;
    *out = a;
    return SVDC_OK;
}

static void free_chunks_from(svdc_arena *a, int first) {
    if (a->measuring) return; /* its one reservation goes in svdc_arena_free */
    for (int i = first; i < a->num_chunks; i++) a->backend->free(a->device, a->chunks[i].base);
    if (first < a->num_chunks) a->num_chunks = first;
}

void svdc_arena_free(svdc_arena *arena) {
    if (!arena) return;
    if (arena->measuring) munmap(arena->chunks[0].base, arena->chunks[0].cap);
    free_chunks_from(arena, 0);
    free(arena);
}

/* After a failed backend alloc: SVDC_ERR_MEMORY for a plain out-of-memory (the alloc's text kept for the message),
 * else the device's own failure status with its message. */
static svdc_status failure_status(const svdc_arena *a) {
    char detail[512];
    snprintf(detail, sizeof detail, "%s", svdc_last_error());
    svdc_status h = a->backend->health(a->device);
    if (h) return h;
    svdc_fail(SVDC_ERR_MEMORY, "%s", detail);
    return SVDC_ERR_MEMORY;
}

static size_t align_up(size_t x) { return (x + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

void *svdc_arena_alloc(svdc_arena *a, size_t bytes) {
    if (bytes == 0) bytes = 1;
    bytes = align_up(bytes);
    if (a->num_chunks > 0) {
        arena_chunk *c = &a->chunks[a->current];
        size_t local = a->top - c->start;
        if (local + bytes <= c->cap) {
            a->top += bytes;
            if (a->top > a->peak) a->peak = a->top;
            return c->base + local;
        }
        /* Try the chunk after the current one (kept from an earlier call). */
        if (a->current + 1 < a->num_chunks && a->chunks[a->current + 1].cap >= bytes) {
            a->current++;
            a->top = a->chunks[a->current].start + bytes;
            if (a->top > a->peak) a->peak = a->top;
            return a->chunks[a->current].base;
        }
        if (a->measuring) {
            a->last_status = SVDC_ERR_MEMORY;
            svdc_fail(SVDC_ERR_MEMORY, "arena: a measuring pass needs more than %zu bytes on device %d",
                      a->chunks[0].cap, a->device);
            return NULL;
        }
        /* Too small or absent: drop what follows and add a chunk big enough. */
        free_chunks_from(a, a->current + 1);
    }
    if (a->num_chunks == ARENA_MAX_CHUNKS) {
        a->last_status = SVDC_ERR_MEMORY;
        svdc_fail(SVDC_ERR_MEMORY, "arena: more than %d chunks needed for %zu bytes on device %d", ARENA_MAX_CHUNKS,
                  bytes, a->device);
        return NULL;
    }
    size_t reserved = svdc_arena_reserved(a);
    size_t cap = bytes;
    if (cap < ARENA_MIN_CHUNK) cap = ARENA_MIN_CHUNK;
    if (cap < reserved / 2) cap = align_up(reserved / 2);
    char *base = a->backend->alloc(a->device, cap);
    svdc_status why = base ? SVDC_OK : failure_status(a);
    if (!base && cap > bytes && why == SVDC_ERR_MEMORY) {
        cap = bytes; /* retry with exactly what is needed */
        base = a->backend->alloc(a->device, cap);
        why = base ? SVDC_OK : failure_status(a);
    }
    if (!base) {
        a->last_status = why;
        if (why != SVDC_ERR_MEMORY) return NULL; /* a device fault: the backend's message stands */
        /* A device backend explains its failure (e.g. the bytes free on the GPU); the CPU backend sets no text. */
        char detail[512] = "";
        if (strcmp(a->backend->name, "cpu") != 0) snprintf(detail, sizeof detail, "%s", svdc_last_error());
        svdc_fail(SVDC_ERR_MEMORY, "out of memory: could not allocate %zu bytes on %s device %d (arena holds %zu)%s%s",
                  cap, a->backend->name, a->device, reserved, detail[0] ? ": " : "", detail);
        return NULL;
    }
    arena_chunk *c = &a->chunks[a->num_chunks];
    c->base = base;
    c->cap = cap;
    c->start = a->num_chunks ? a->chunks[a->num_chunks - 1].start + a->chunks[a->num_chunks - 1].cap : 0;
    a->current = a->num_chunks++;
    a->top = c->start + bytes;
    if (a->top > a->peak) a->peak = a->top;
    return base;
}

svdc_status svdc_arena_tensor(svdc_arena *a, svdc_dtype dtype, int ndim, const int64_t *shape, svdc_tensor *out) {
    *out = svdc_tensor_view(NULL, dtype, a->device, ndim, shape);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return svdc_fail(SVDC_ERR_SHAPE, "arena: negative dimension %lld", (long long)shape[i]);
    out->data = svdc_arena_alloc(a, svdc_tensor_bytes(out));
    return out->data ? SVDC_OK : a->last_status;
}

size_t svdc_arena_mark(const svdc_arena *a) { return a->top; }

void svdc_arena_release(svdc_arena *a, size_t mark) {
    if (mark > a->top) return;
    a->top = mark;
    int i = a->current;
    while (i > 0 && a->chunks[i].start > mark) i--;
    a->current = i;
}

void svdc_arena_reset(svdc_arena *a) { svdc_arena_release(a, 0); }
size_t svdc_arena_peak(const svdc_arena *a) { return a->peak; }
void svdc_arena_reset_peak(svdc_arena *a) { a->peak = a->top; }

size_t svdc_arena_reserved(const svdc_arena *a) {
    size_t total = 0;
    for (int i = 0; i < a->num_chunks; i++) total += a->chunks[i].cap;
    return total;
}

void svdc_arena_trim(svdc_arena *a) {
    a->top = 0;
    a->current = 0;
    free_chunks_from(a, 0);
}

svdc_status svdc_arena_last_status(const svdc_arena *a) { return a->last_status ? a->last_status : SVDC_ERR_MEMORY; }

svdc_status svdc_arena_reserve(svdc_arena *a, size_t bytes) {
    bytes = align_up(bytes ? bytes : 1);
    if (a->measuring) return svdc_fail(SVDC_ERR_INTERNAL, "arena: reserve on a measuring arena");
    if (a->num_chunks == 1 && a->chunks[0].cap >= bytes) return SVDC_OK;
    svdc_arena_trim(a);
    char *base = a->backend->alloc(a->device, bytes);
    svdc_status why = base ? SVDC_OK : failure_status(a);
    if (!base) {
        a->last_status = why;
        if (why != SVDC_ERR_MEMORY) return why;
        char detail[512] = "";
        if (strcmp(a->backend->name, "cpu") != 0) snprintf(detail, sizeof detail, "%s", svdc_last_error());
        return svdc_fail(SVDC_ERR_MEMORY, "out of memory: could not reserve %zu bytes on %s device %d%s%s", bytes,
                         a->backend->name, a->device, detail[0] ? ": " : "", detail);
    }
    a->chunks[0] = (arena_chunk){base, 0, bytes};
    a->num_chunks = 1;
    return SVDC_OK;
}

int svdc_arena_num_chunks(const svdc_arena *a) { return a->num_chunks; }
