/* params.c — the declared weight table, its single allocation, and loading a weight into it (see params.h). */
#define _DEFAULT_SOURCE /* madvise and its MADV_* advice (not in POSIX) */
#include "params.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "tensor.h"

#define PARAM_ALIGN 256

void svdc_params_init(svdc_params *p, const svdc_backend *backend, int device, svdc_dtype dtype) {
    memset(p, 0, sizeof *p);
    p->backend = backend;
    p->device = device;
    p->dtype = dtype;
}

static void release_prepared(svdc_params *p) {
    if (p->prepared && p->backend->release_prepared) p->backend->release_prepared(p->prepared);
    p->prepared = NULL;
    p->prepared_bytes = 0;
}

void svdc_params_release_prepared(svdc_params *p) { release_prepared(p); }

svdc_status svdc_params_prepare(svdc_params *p) {
    release_prepared(p);
    if (!p->block || !p->backend->prepare_params) return SVDC_OK;
    return p->backend->prepare_params(p, &p->prepared, &p->prepared_bytes);
}

void svdc_params_free(svdc_params *p) {
    if (!p) return;
    release_prepared(p);
    for (int i = 0; i < p->count; i++) free(p->items[i].name);
    free(p->items);
    if (p->block) p->backend->free(p->device, p->block);
    p->items = NULL;
    p->block = NULL;
    p->count = p->capacity = 0;
}

svdc_status svdc_params_add(svdc_params *p, svdc_tensor *slot, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (p->block) return svdc_fail(SVDC_ERR_INTERNAL, "params: weight declared after allocation");
    if (ndim < 1 || ndim > SVDC_MAX_DIMS) return svdc_fail(SVDC_ERR_INTERNAL, "params: bad ndim %d", ndim);
    if (p->count == p->capacity) {
        int cap = p->capacity ? 2 * p->capacity : 256;
        svdc_param *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) return svdc_fail(SVDC_ERR_MEMORY, "params: cannot grow the weight table to %d entries", cap);
        p->items = items;
        p->capacity = cap;
    }
    char name[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(name, sizeof name, fmt, args);
    va_end(args);
    svdc_param *it = &p->items[p->count];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    if (!it->name) return svdc_fail(SVDC_ERR_MEMORY, "params: out of host memory");
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return svdc_fail(SVDC_ERR_ARGUMENT, "params: %s has a non-positive dimension %lld (check the config)",
                             name, (long long)shape[i]);
        it->shape[i] = shape[i];
    }
    it->slot = slot;
    p->count++;
    return SVDC_OK;
}

static int64_t param_numel(const svdc_param *it) {
    int64_t n = 1;
    for (int i = 0; i < it->ndim; i++) n *= it->shape[i];
    return n;
}

/* The dtype weight `it` is stored in: the table's, except that 1-D weights (biases, norm scales, mix factors,
 * CLIP's class embedding) stay float32 in a 16-bit table. They are well under 1% of any model's bytes, and keeping
 * them float32 saves the ops that take them (most ops take a bias) a conversion each: one device launch per op. */
static svdc_dtype param_dtype(const svdc_params *p, const svdc_param *it) {
    return it->ndim >= 2 ? p->dtype : SVDC_DTYPE_F32;
}

/* Lays the table out (each weight in param_dtype), allocates the block and points every slot into it. */
static svdc_status place_block(svdc_params *p) {
    size_t total = 0;
    for (int i = 0; i < p->count; i++) {
        const size_t esize = svdc_dtype_size(param_dtype(p, &p->items[i]));
        p->items[i].offset = total;
        total += ((size_t)param_numel(&p->items[i]) * esize + PARAM_ALIGN - 1) & ~(size_t)(PARAM_ALIGN - 1);
    }
    p->block = p->backend->alloc(p->device, total ? total : PARAM_ALIGN);
    if (!p->block && p->backend->health(p->device)) return p->backend->health(p->device);
    if (!p->block)
        return svdc_fail(SVDC_ERR_MEMORY,
                         "out of memory: could not allocate %zu bytes of weights on %s device %d (%s storage)", total,
                         p->backend->name, p->device, svdc_dtype_name(p->dtype));
    p->bytes = total;
    for (int i = 0; i < p->count; i++) {
        svdc_param *it = &p->items[i];
        svdc_tensor *t = it->slot;
        memset(t, 0, sizeof *t);
        t->data = (char *)p->block + it->offset;
        t->dtype = param_dtype(p, it);
        t->device = p->device;
        t->ndim = it->ndim;
        for (int d = 0; d < it->ndim; d++) t->shape[d] = it->shape[d];
    }
    return SVDC_OK;
}

svdc_status svdc_params_allocate(svdc_params *p) { return place_block(p); }

svdc_status svdc_params_set_dtype(svdc_params *p, svdc_dtype dtype) {
    if (dtype != SVDC_DTYPE_F32 && dtype != SVDC_DTYPE_F16 && dtype != SVDC_DTYPE_BF16)
        return svdc_fail(SVDC_ERR_INTERNAL, "params: unknown storage dtype code %d", (int)dtype);
    if (dtype == p->dtype) return SVDC_OK;
    for (int i = 0; i < p->count; i++)
        if (p->items[i].loaded)
            return svdc_fail(SVDC_ERR_INTERNAL, "params: the storage dtype changes only before any weight is loaded");
    if (p->block) p->backend->free(p->device, p->block);
    p->block = NULL;
    p->bytes = 0;
    p->dtype = dtype;
    return place_block(p);
}

int svdc_params_find(const svdc_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

/* Largest finite float16 (65504) plus half its last step: float32 values at or beyond it round to Inf. */
#define F16_OVERFLOW 65520.0f

/* Index of the first element of float32 `x` that a float16 block cannot hold (finite, |v| >= 65520), or -1. */
static int64_t first_f16_overflow(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float a = x[i] < 0 ? -x[i] : x[i];
        if (a >= F16_OVERFLOW && a - a == 0.0f) return i;
    }
    return -1;
}

svdc_status svdc_params_set_from(svdc_params *p, int index, const void *host_data, svdc_dtype host_dtype,
                                 int64_t numel) {
    if (index < 0 || index >= p->count) return svdc_fail(SVDC_ERR_INTERNAL, "params: index %d out of range", index);
    svdc_param *it = &p->items[index];
    if (numel != param_numel(it))
        return svdc_fail(SVDC_ERR_CHECKPOINT, "weight %s: %lld elements given, %lld expected", it->name,
                         (long long)numel, (long long)param_numel(it));
    if (!p->block) return svdc_fail(SVDC_ERR_INTERNAL, "params: weight %s set before allocation", it->name);
    void *dst = (char *)p->block + it->offset;
    if (it->borrowed) { /* set again after a borrow: back into the block */
        it->slot->data = dst;
        it->borrowed = 0;
    }
    const svdc_dtype dtype = param_dtype(p, it);
    const size_t bytes = (size_t)numel * svdc_dtype_size(dtype);
    if (host_dtype == dtype) {
        svdc_status s = p->backend->copy_to_device(p->device, dst, host_data, bytes);
        if (s) return s;
        it->loaded = 1;
        return SVDC_OK;
    }
    if (dtype == SVDC_DTYPE_F16 && host_dtype == SVDC_DTYPE_F32) {
        const int64_t bad = first_f16_overflow(host_data, numel);
        if (bad >= 0)
            return svdc_fail(SVDC_ERR_CHECKPOINT,
                             "weight %s: element %lld = %g is beyond float16's range (|x| <= 65504); store this "
                             "model in bf16 or fp32",
                             it->name, (long long)bad, (double)((const float *)host_data)[bad]);
    }
    /* Converted on the host by the CPU backend's convert (the same rounding as every backend's); straight into the
     * block when it is host memory, else through one tensor of staging. */
    const svdc_backend *cpu = svdc_backend_cpu();
    const svdc_ctx host = {cpu, NULL, SVDC_DEVICE_CPU};
    const int64_t shape[1] = {numel};
    const int on_host = p->backend == cpu;
    void *staging = on_host ? dst : malloc(bytes ? bytes : 1);
    if (!staging)
        return svdc_fail(SVDC_ERR_MEMORY, "out of memory: could not allocate %zu bytes of host memory to convert "
                         "weight %s", bytes, it->name);
    svdc_tensor from = svdc_tensor_view((void *)host_data, host_dtype, SVDC_DEVICE_CPU, 1, shape);
    svdc_tensor to = svdc_tensor_view(staging, dtype, SVDC_DEVICE_CPU, 1, shape);
    svdc_status s = cpu->convert(&host, &from, &to);
    if (!s && !on_host) s = p->backend->copy_to_device(p->device, dst, staging, bytes);
    if (!on_host) free(staging);
    if (s) return s;
    it->loaded = 1;
    return SVDC_OK;
}

svdc_status svdc_params_set(svdc_params *p, int index, const float *host_data, int64_t numel) {
    return svdc_params_set_from(p, index, host_data, SVDC_DTYPE_F32, numel);
}

/* Bytes of a file mapping read ahead and checked per step while loading: large reads for a cold page cache. */
#define LOAD_STEP ((size_t)8 << 20)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels refuse it (EINVAL), which costs only the read-ahead */
#endif

/* Advice on the pages of [data, data + bytes): `outward` covers every page the range touches, else only the pages
 * wholly inside it (so dropping pages never reaches a neighbouring tensor). Failures are ignored: advice only. */
static void advise_pages(const void *data, size_t bytes, int advice, int outward) {
    const long ps = sysconf(_SC_PAGESIZE);
    const uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096, lo = (uintptr_t)data, hi = lo + bytes;
    const uintptr_t begin = outward ? lo & ~(page - 1) : (lo + page - 1) & ~(page - 1);
    const uintptr_t end = outward ? (hi + page - 1) & ~(page - 1) : hi & ~(page - 1);
    if (end > begin) (void)madvise((void *)begin, end - begin, advice);
}

/* Whether element i of `dtype` values is NaN or Inf (its exponent bits are all ones). */
static int is_nonfinite(const void *data, svdc_dtype dtype, int64_t i) {
    if (dtype == SVDC_DTYPE_F32) return (((const uint32_t *)data)[i] & 0x7f800000u) == 0x7f800000u;
    const uint16_t mask = dtype == SVDC_DTYPE_F16 ? 0x7c00u : 0x7f80u;
    return (((const uint16_t *)data)[i] & mask) == mask;
}

/* NaN/Inf among n values of `dtype`: the count, and *first, the first index (-1 when none). */
static int64_t count_nonfinite(const void *data, svdc_dtype dtype, int64_t n, int64_t *first) {
    int64_t bad = 0;
    if (dtype == SVDC_DTYPE_F32) { /* a branch-free loop the compiler vectorises */
        const uint32_t *u = data;
        for (int64_t i = 0; i < n; i++) bad += (u[i] & 0x7f800000u) == 0x7f800000u;
    } else {
        const uint16_t *u = data, mask = dtype == SVDC_DTYPE_F16 ? 0x7c00u : 0x7f80u;
        for (int64_t i = 0; i < n; i++) bad += (uint16_t)(u[i] & mask) == mask;
    }
    *first = -1;
    for (int64_t i = 0; bad && i < n && *first < 0; i++)
        if (is_nonfinite(data, dtype, i)) *first = i;
    return bad;
}

svdc_status svdc_params_load(svdc_params *p, int index, const void *host_data, svdc_dtype host_dtype, int64_t numel,
                             unsigned flags, int *borrowed) {
    if (borrowed) *borrowed = 0;
    if (index < 0 || index >= p->count) return svdc_fail(SVDC_ERR_INTERNAL, "params: index %d out of range", index);
    svdc_param *it = &p->items[index];
    const size_t esize = svdc_dtype_size(host_dtype);
    if (numel != param_numel(it) || !esize)
        return svdc_fail(SVDC_ERR_CHECKPOINT, "weight %s: %lld elements given, %lld expected", it->name,
                         (long long)numel, (long long)param_numel(it));
    const int mapped = (flags & SVDC_LOAD_FILE_MAPPING) != 0, check = (flags & SVDC_LOAD_CHECK_FINITE) != 0;
    /* Borrowed: host memory already in the storage dtype, element-aligned (the kernels need no more alignment). */
    const int borrow = mapped && p->backend == svdc_backend_cpu() && host_dtype == param_dtype(p, it) &&
                       (uintptr_t)host_data % esize == 0;
    const size_t bytes = (size_t)numel * esize;
    /* Sequential advice doubles the kernel's read-ahead of a mapping (a cold file is read about twice as fast); the
     * normal advice comes back afterwards, so that under memory pressure the kept pages age like any others. */
    if (mapped && (check || !borrow)) advise_pages(host_data, bytes, MADV_SEQUENTIAL, 1);
    svdc_status s = SVDC_OK;
    if (check) {
        /* Step by step: each step's pages are read in one go (a cold file at disk speed), then scanned while cached. */
        for (size_t at = 0; at < bytes; at += LOAD_STEP) {
            const size_t step = bytes - at < LOAD_STEP ? bytes - at : LOAD_STEP;
            const char *part = (const char *)host_data + at;
            if (mapped) advise_pages(part, step, MADV_POPULATE_READ, 1);
            int64_t first;
            const int64_t bad = count_nonfinite(part, host_dtype, (int64_t)(step / esize), &first);
            if (bad) {
                int64_t more = 0, ignored;
                if (at + step < bytes)
                    more = count_nonfinite(part + step, host_dtype, (int64_t)((bytes - at - step) / esize), &ignored);
                s = svdc_fail(SVDC_ERR_CHECKPOINT,
                              "weights['%s']: %lld of %lld values are NaN or Inf (the first at element %lld); the "
                              "checkpoint is corrupt (set SVDC_CHECK_WEIGHTS=0 to skip this check)",
                              it->name, (long long)(bad + more), (long long)numel,
                              (long long)(first + (int64_t)(at / esize)));
                break;
            }
        }
    }
    if (!s && borrow) {
        it->slot->data = (void *)host_data; /* weights are never written after load: the mapping may be read-only */
        it->borrowed = 1;
        it->loaded = 1;
        if (borrowed) *borrowed = 1;
    } else if (!s) {
        if (mapped && !check) advise_pages(host_data, bytes, MADV_POPULATE_READ, 1);
        s = svdc_params_set_from(p, index, host_data, host_dtype, numel);
        if (mapped) advise_pages(host_data, bytes, MADV_DONTNEED, 0);
    }
    if (mapped && (check || !borrow)) advise_pages(host_data, bytes, MADV_NORMAL, 1);
    return s;
}

svdc_status svdc_params_check_complete(const svdc_params *p, const char *model_name) {
    int missing = 0, first = -1;
    for (int i = 0; i < p->count; i++)
        if (!p->items[i].loaded) {
            if (first < 0) first = i;
            missing++;
        }
    if (missing)
        return svdc_fail(SVDC_ERR_CHECKPOINT, "%s: %d weight(s) missing from the checkpoint, first: %s", model_name,
                         missing, p->items[first].name);
    return SVDC_OK;
}

int64_t svdc_params_count_elements(const svdc_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->count; i++) n += param_numel(&p->items[i]);
    return n;
}
