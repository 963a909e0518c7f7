/* params.c — the declared weight table and its single allocation (see params.h). */
#include "params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#define PARAM_ALIGN 256

void svdc_params_init(svdc_params *p, const svdc_backend *backend, int device, svdc_dtype dtype) {
    memset(p, 0, sizeof *p);
    p->backend = backend;
    p->device = device;
    p->dtype = dtype;
}

void svdc_params_free(svdc_params *p) {
    if (!p) return;
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

svdc_status svdc_params_allocate(svdc_params *p) {
    size_t esize = svdc_dtype_size(p->dtype);
    size_t total = 0;
    for (int i = 0; i < p->count; i++) {
        p->items[i].offset = total;
        total += ((size_t)param_numel(&p->items[i]) * esize + PARAM_ALIGN - 1) & ~(size_t)(PARAM_ALIGN - 1);
    }
    p->block = p->backend->alloc(p->device, total ? total : PARAM_ALIGN);
    if (!p->block && p->backend->health(p->device)) return p->backend->health(p->device);
    if (!p->block)
        return svdc_fail(SVDC_ERR_MEMORY, "out of memory: could not allocate %zu bytes of weights on %s device %d",
                         total, p->backend->name, p->device);
    p->bytes = total;
    for (int i = 0; i < p->count; i++) {
        svdc_param *it = &p->items[i];
        svdc_tensor *t = it->slot;
        memset(t, 0, sizeof *t);
        t->data = (char *)p->block + it->offset;
        t->dtype = p->dtype;
        t->device = p->device;
        t->ndim = it->ndim;
        for (int d = 0; d < it->ndim; d++) t->shape[d] = it->shape[d];
    }
    return SVDC_OK;
}

int svdc_params_find(const svdc_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

svdc_status svdc_params_set(svdc_params *p, int index, const float *host_data, int64_t numel) {
    if (index < 0 || index >= p->count) return svdc_fail(SVDC_ERR_INTERNAL, "params: index %d out of range", index);
    svdc_param *it = &p->items[index];
    if (numel != param_numel(it))
        return svdc_fail(SVDC_ERR_CHECKPOINT, "weight %s: %lld elements given, %lld expected", it->name,
                         (long long)numel, (long long)param_numel(it));
    if (p->dtype != SVDC_DTYPE_F32)
        return svdc_fail(SVDC_ERR_INTERNAL, "params: only float32 weight blocks can be filled from the host yet");
    svdc_status s = p->backend->copy_to_device(p->device, (char *)p->block + it->offset, host_data,
                                               (size_t)numel * sizeof(float));
    if (s) return s;
    it->loaded = 1;
    return SVDC_OK;
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
