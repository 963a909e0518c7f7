/* packed.h — weights packed once, at load, for the CPU GEMM kernels (pgemm.c), and the registry the kernels find
 * them in by the original weight's data pointer.
 *
 * Two panel layouts, both over the whole depth K so any K block of a panel is contiguous:
 *   A panels (the weight is the left operand, its rows the output rows: conv2d, Winograd U, temporal taps):
 *     panel p, depth k, row i  ->  data[(p * K + k) * MR + i] = W[p*MR + i][k]      (rows past M are zero)
 *   B panels (the weight is the right operand transposed: linear's w (N, K) in y = x · wᵀ):
 *     panel q, depth k, col j  ->  data[(q * K + k) * NR + j] = w[q*NR + j][k]      (columns past N are zero)
 * One packed weight holds `mats` such matrices, `mat_stride` floats apart (16 for Winograd, 3 for temporal taps).
 *
 * Packing runs when a model's weights are loaded (svdc_cpu_prepack_params, called through the backend's
 * prepare_params); a kernel that finds no packed form for its weight (16-bit weights widened per op, a 3x3 conv run
 * with stride 2, a weight SVDC_PREPACK left unpacked) takes the unpacked OpenBLAS path. */
#ifndef SVDC_CPU_PACKED_H
#define SVDC_CPU_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "svdc.h"

/* 3x3 stride-1 convs with at least this many input and output channels take the Winograd path (conv.c). */
#define SVDC_WINOGRAD_MIN_CHANNELS 16

/* The microkernel's tile: MR output rows by NR output columns (pgemm.c). */
#define SVDC_PACK_MR 6
#define SVDC_PACK_NR 16

typedef enum svdc_packed_kind {
    SVDC_PACKED_LINEAR,   /* w (N, K): one B-panel matrix */
    SVDC_PACKED_CONV,     /* w (O, C, kh, kw): one A-panel matrix (O, C*kh*kw) */
    SVDC_PACKED_WINOGRAD, /* w (O, C, 3, 3): 16 A-panel matrices U[xi] (O, C) = (G g Gᵀ)[xi] */
    SVDC_PACKED_TEMPORAL, /* w (O, C, 3[, 1, 1]): 3 A-panel matrices, tap k = w[:, :, k] (O, C) */
} svdc_packed_kind;

typedef struct svdc_packed_weight {
    const void *key;      /* the original weight's data (a host address) */
    svdc_packed_kind kind;
    int64_t rows, depth;  /* of each matrix: M (A panels) or N (B panels), and K */
    int mats;
    size_t mat_stride;    /* floats between matrices */
    float *data;          /* 64-byte aligned */
} svdc_packed_weight;

/* Floats of one packed matrix: rows rounded up to the panel width, times depth. */
size_t svdc_packed_matrix_floats(int64_t rows, int64_t depth, int panel);

/* The packed form of the weight whose data is `key`, if it is packed as `kind`; NULL otherwise. Counts hits for the
 * op-test surface (svdc_packed_hits). Safe from any thread; call outside parallel regions. */
const svdc_packed_weight *svdc_packed_find(const void *key, svdc_packed_kind kind);
unsigned long long svdc_packed_hits(void);

/* Packs one float32 weight (data `w`, shape as the op sees it) by its shape: 2-D -> LINEAR, 4-D -> WINOGRAD for 3x3
 * with >= 16 channels each side (conv.c's Winograd rule) else CONV, 5-D (O, C, 3, 1, 1) or 3-D (O, C, 3) -> TEMPORAL; other shapes
 * are not packed (*out = NULL, SVDC_OK). */
svdc_status svdc_packed_create(const void *w, int ndim, const int64_t *shape, svdc_packed_weight **out);
/* Registers / unregisters a packed weight (the registry does not own it); free releases its memory. */
svdc_status svdc_packed_register(svdc_packed_weight *pw);
void svdc_packed_unregister(const svdc_packed_weight *pw);
void svdc_packed_free(svdc_packed_weight *pw);

/* What loading packs (SVDC_PREPACK): "0" nothing (low-memory machines); unset or "1" the default, the weights whose
 * packed path measured faster than OpenBLAS's (Winograd U, im2col convs: benchmarks/results/gemm_cpu.md); "all"
 * every GEMM weight (linear, 1x1 and temporal convs too). Another value: SVDC_ERR_ARGUMENT naming it. */
typedef enum svdc_prepack_mode { SVDC_PREPACK_NONE, SVDC_PREPACK_DEFAULT, SVDC_PREPACK_ALL } svdc_prepack_mode;
svdc_status svdc_packed_mode(svdc_prepack_mode *mode);

/* Packing for the kernels that pack per call what loading did not (the layouts above):
 * A panels of a row-major (rows, K) matrix into dst (svdc_packed_matrix_floats(rows, K, MR) floats); and panel p of
 * the 16 U[xi] matrices (mat_stride floats apart) of the rows [o0, o0 + on) of a 3x3 weight (O, C, 3, 3). */
void svdc_pack_a_panels(const float *w, int64_t rows, int64_t K, float *dst);
void svdc_winograd_pack_panel(const float *w, int64_t C, int64_t o0, int64_t on, int64_t p, size_t mat_stride,
                              float *dst);

/* The Winograd weight transform of one 3x3 kernel g: u[xi] = (G g Gᵀ)[xi], xi = 4*i + j (conv.c's transform). */
void svdc_winograd_kernel(const float *g, float u[16]);

/* ---- a model's packed weights (the backends' prepare_params) ---- */

typedef struct svdc_params svdc_params;
typedef struct svdc_packed_set svdc_packed_set;

/* The host address of `bytes` of device memory at `dev` (the CPU: dev itself; the emulated device: its shadow). */
typedef svdc_status (*svdc_host_view_fn)(const void *dev, size_t bytes, const void **host);

/* Packs and registers the float32 weights of `p` that a GEMM kernel multiplies (2-D but embedding tables, 4-D, 5-D
 * temporal) and SVDC_PREPACK selects; *out = NULL when nothing is packed (16-bit storage, SVDC_PREPACK=0). */
svdc_status svdc_cpu_prepack_params(const svdc_params *p, svdc_host_view_fn host_view, svdc_packed_set **out);
/* Unregisters and frees a set (NULL: nothing); its bytes, for the memory report. */
void svdc_packed_set_free(svdc_packed_set *set);
size_t svdc_packed_set_bytes(const svdc_packed_set *set);

#endif
