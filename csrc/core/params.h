/* params.h — a model's declared weight table: every tensor it needs, by checkpoint name (diffusers naming) and shape,
 * placed in one allocation on the model's device. Models register a slot per weight while they build their layer
 * structs, then svdc_params_allocate points every slot into the block; the loader fills the block by name and rejects
 * missing, unknown and mis-shaped tensors. A weight read from a memory-mapped checkpoint file whose stored dtype is
 * the storage dtype of a host (CPU) table is borrowed instead: its slot points into the mapping (the file's pages in
 * the page cache), nothing is copied, and its part of the block is never touched (virtual address space only).
 * Weights are immutable after load. */
#ifndef SVDC_PARAMS_H
#define SVDC_PARAMS_H

#include "svdc.h"

typedef struct svdc_backend svdc_backend;

typedef struct svdc_param {
    char *name;
    int ndim;
    int64_t shape[SVDC_MAX_DIMS];
    svdc_tensor *slot; /* where the model keeps its view; slot->data set by svdc_params_allocate */
    size_t offset;     /* byte offset in the block */
    int loaded;        /* set by the loader */
    int borrowed;      /* slot->data points into the caller's file mapping, not into the block */
} svdc_param;

typedef struct svdc_params {
    svdc_param *items;
    int count, capacity;
    const svdc_backend *backend;
    int device;
    svdc_dtype dtype;
    void *block;  /* one allocation for all weights */
    size_t bytes;
    void *prepared;        /* the backend's derived forms of the weights (svdc_params_prepare), or NULL */
    size_t prepared_bytes; /* the memory they hold */
} svdc_params;

void svdc_params_init(svdc_params *p, const svdc_backend *backend, int device, svdc_dtype dtype);
void svdc_params_free(svdc_params *p); /* frees the table and the block; the struct itself is the caller's */

/* Declares one weight. `shape` has ndim entries; the name is printf-formatted. */
svdc_status svdc_params_add(svdc_params *p, svdc_tensor *slot, int ndim, const int64_t *shape, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Places every declared weight in one device allocation and points the slots at it. */
svdc_status svdc_params_allocate(svdc_params *p);

/* Index of `name`, or -1. */
int svdc_params_find(const svdc_params *p, const char *name);

/* Changes the storage dtype (float32, float16, bfloat16) of a table whose block is allocated but holds no weight
 * yet (1-D weights, biases and norm scales, stay float32: see param_dtype in params.c): the old block is given back before the new one is allocated (so the peak is the larger of the two, never
 * both) and every slot is re-pointed into the new block. Model code therefore must not keep copies of a slot's data
 * pointer taken before loading. A no-op when the dtype is already `dtype`. */
svdc_status svdc_params_set_dtype(svdc_params *p, svdc_dtype dtype);

/* Copies host data of `host_dtype` (numel must match) into param i, converting to the block's dtype on the host
 * (round-to-nearest-even, as torch's .to(); one tensor at a time, so the staging is one tensor, never the model).
 * A float32 value beyond float16's range refuses a float16 block (SVDC_ERR_CHECKPOINT naming the weight). */
svdc_status svdc_params_set_from(svdc_params *p, int index, const void *host_data, svdc_dtype host_dtype,
                                 int64_t numel);
/* svdc_params_set_from with float32 host data. */
svdc_status svdc_params_set(svdc_params *p, int index, const float *host_data, int64_t numel);

/* svdc_params_load's flags. */
enum {
    /* Refuse NaN/Inf (SVDC_ERR_CHECKPOINT naming the weight, the count and the first index): one NaN in a VAE weight
     * turns every frame black with no other sign. */
    SVDC_LOAD_CHECK_FINITE = 1,
    /* host_data lies in a read-only shared file mapping that the caller keeps alive as long as the params: the weight
     * is borrowed when the table lives in host memory in host_dtype (nothing copied), else copied into the block and
     * its whole pages dropped from this process afterwards (MADV_DONTNEED: they stay in the page cache), so loading
     * holds at most one tensor of the file besides the block. The mapping is read ahead in large steps
     * (MADV_POPULATE_READ) when it has to be read: a cold page cache is then read at the disk's speed. */
    SVDC_LOAD_FILE_MAPPING = 2,
};

/* Loads param i from numel host values of host_dtype (svdc_params_set_from's conversions) with the checks and the
 * placement `flags` asks for; *borrowed (may be NULL) tells whether the slot now points at host_data. */
svdc_status svdc_params_load(svdc_params *p, int index, const void *host_data, svdc_dtype host_dtype, int64_t numel,
                             unsigned flags, int *borrowed);

/* SVDC_ERR_CHECKPOINT naming the first weight that was never set (and how many are missing). */
svdc_status svdc_params_check_complete(const svdc_params *p, const char *model_name);

int64_t svdc_params_count_elements(const svdc_params *p);

/* After loading: lets the backend build what its kernels derive from the weights once (backend.h prepare_params;
 * the CPU packs GEMM weights unless SVDC_PREPACK=0). Replaces an earlier preparation; freed by svdc_params_free. */
svdc_status svdc_params_prepare(svdc_params *p);
/* Frees what svdc_params_prepare built (the kernels fall back to the plain weights until the next prepare). */
void svdc_params_release_prepared(svdc_params *p);

#endif
