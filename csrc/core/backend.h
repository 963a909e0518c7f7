/* backend.h — the backend contract: one table of function pointers per device kind, registered in the core's device
 * registry (device.h). ops.c validates and then calls the op entries with arguments already checked against the
 * shapes documented in ops.h, so kernels check nothing but what only they can know (e.g. a failed device
 * allocation). The op entries are generated from the op list (op_list.h). Tables: kernels/cpu/backend_cpu.c,
 * kernels/emu/backend_emu.c (the CPU kernels behind device semantics, for CI) and kernels/cuda/backend_cuda.cu
 * (exported by the separate svdc._C_cuda module, which links no core file: it reaches the core through
 * svdc_core_services). */
#ifndef SVDC_BACKEND_H
#define SVDC_BACKEND_H

#include "op_list.h"
#include "ops.h"

/* Bumped when the non-op part of the table changes; the op part is checked through op_signature. */
#define SVDC_BACKEND_ABI_VERSION 4

typedef struct svdc_params svdc_params;

/* What the core lends a backend built as a separate module: the one thread-local error buffer and scratch memory
 * from the calling context's arena. Handed over by the registry (attach) before the backend is used. */
typedef struct svdc_core_services {
    svdc_status (*fail)(svdc_status status, const char *text); /* records `text` as this thread's error */
    const char *(*last_error)(void);
    void *(*scratch_alloc)(svdc_arena *arena, size_t bytes); /* NULL with an out-of-memory message set */
    size_t (*scratch_mark)(const svdc_arena *arena);
    void (*scratch_release)(svdc_arena *arena, size_t mark);
} svdc_core_services;

#define SVDC_OP_FIELD_(name, params, args) svdc_status(*name) params;

struct svdc_backend {
    /* These two come first in every ABI version, so the registry can refuse a table from another build safely. */
    int abi_version;          /* SVDC_BACKEND_ABI_VERSION */
    const char *op_signature; /* SVDC_OP_SIGNATURE of the build that made the table */
    const char *name;         /* "cpu", "emu", "cuda": the device string's prefix */
    const char *build_info;   /* one line for svdc.info(): toolkit, libraries, architectures */
    /* Bytes of one op's working set the model code should aim for when it splits a layer into chunks (the CPU's
     * cache-friendly size); 0 = no limit, issue one op per layer (a GPU: fewer, larger launches). */
    size_t chunk_budget;
    /* The ops whose kernels take scratch from the context's arena (bit SVDC_OP_BIT(name)). A measuring pass (plan.h)
     * still calls them: they take their scratch as a real call would, release it and return without touching any
     * tensor, so the plan includes it. Zero where scratch never comes from the device arena (cpu, emu). */
    unsigned long long scratch_ops;
    /* 1 only in a measuring table (plan.h): device memory is address space only and nothing may be launched. */
    int measuring;

    /* Called once by the registry before first use (NULL when the backend is built into the core). */
    svdc_status (*attach)(const svdc_core_services *core);
    /* Usable devices of this kind (>= 1 for cpu/emu); 0 with a reason written into `why`. */
    int (*device_count)(char *why, size_t why_len);

    /* Memory on this backend's device. alloc returns NULL when it cannot; then health() tells a plain
     * out-of-memory (SVDC_OK: the arena reports the bytes) from a device fault (its status and message, which the
     * caller forwards instead of calling it out of memory). */
    void *(*alloc)(int device, size_t bytes);
    svdc_status (*health)(int device);
    void (*free)(int device, void *ptr);
    /* Host <-> device copies (the CPU backend: memcpy). */
    svdc_status (*copy_to_device)(int device, void *dst, const void *src, size_t bytes);
    svdc_status (*copy_to_host)(int device, void *dst, const void *src, size_t bytes);
    /* Waits for queued work; returns a sticky error if the device is unusable. */
    svdc_status (*synchronize)(int device);

    /* Derived forms of a model's weights built once after they are loaded (the CPU: GEMM panels and Winograd
     * transforms, kernels/cpu/packed.h), which the kernels find by the weight's address: *prepared is an opaque
     * handle (NULL: nothing built), *bytes the memory it holds; release_prepared frees it before the weights go.
     * NULL entries: the backend prepares nothing (CUDA). */
    svdc_status (*prepare_params)(const svdc_params *params, void **prepared, size_t *bytes);
    void (*release_prepared)(void *prepared);

    /* Ops: the same arguments as the svdc_op_* of the same name, already validated. */
    SVDC_OP_LIST(SVDC_OP_FIELD_)
};

/* The built-in backends (always in svdc._C). */
const svdc_backend *svdc_backend_cpu(void);
const svdc_backend *svdc_backend_emu(void);

#endif
