/* pgemm.c — the packed-weight GEMM of pgemm.h: cache blocking around one MR x NR = 6 x 16 microkernel.
 *
 * Two shapes of call. pgemm_wa (the weight is the left operand: convs) packs blocks of the activation B into
 * NR-column panels (kc x NR, contiguous: one 64-byte row per k) and runs them against the weight's A panels.
 * pgemm_wb (the weight is the right operand: linears) packs nothing: the microkernel broadcasts the activation A
 * straight from its MR rows (row stride lda) against the weight's B panels.
 *
 * The avx2 variant's microkernel keeps the 6x16 tile in 12 ymm accumulators and uses FMA; the baseline variant's
 * (4-wide GCC vectors, any x86-64 or other target) works on two 6x8 halves so its 12 accumulators fit 16 SSE
 * registers. Summation order per element: acc = sum over the block's k in order (each step one multiply-add, fused
 * or not per variant), then C = acc (+ bias) on the first K block (C += acc when the caller accumulates) and
 * C += acc on later blocks, in K order. */
#include "pgemm.h"

#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PGEMM_AVX2 1
#endif

#define MR SVDC_PACK_MR
#define NR SVDC_PACK_NR
#define KC SVDC_PGEMM_KC
#define NC SVDC_PGEMM_NC
#define MC SVDC_PGEMM_MC

/* What the microkernel's store does with its tile: C = acc, C += acc, plus a bias per row (wa) or per column (wb)
 * of the tile (already offset to the tile's first row / column). */
typedef struct tile_out {
    int accumulate;
    const float *row_bias, *col_bias;
} tile_out;

/* Starts fetching the C tile the microkernel will read and write after its K loop: C's rows are far apart (a row
 * of the output), so without this each call waits for MR cache misses at the end. */
static inline void prefetch_tile(const float *C, int64_t ldc, int mr) {
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(C + i * ldc, 1, 3);
        __builtin_prefetch(C + i * ldc + NR - 1, 1, 3);
    }
}

/* Writes the tile acc (MR x NR, row-major) into C's mr x nr corner per `out`. */
static inline void store_tile(const float *acc, float *C, int64_t ldc, int mr, int nr, tile_out out) {
    for (int i = 0; i < mr; i++) {
        float *c = C + i * ldc;
        for (int j = 0; j < nr; j++) {
            float v = acc[i * NR + j];
            if (out.row_bias) v += out.row_bias[i];
            if (out.col_bias) v += out.col_bias[j];
            c[j] = out.accumulate ? c[j] + v : v;
        }
    }
}

#ifdef PGEMM_AVX2
/* The 6x16 tile's FMA step at depth k: a(i) is row i's value at k, b0/b1 the NR values of B at k. */
#define PGEMM_STEP(a0, a1, a2, a3, a4, a5, b)                                                                        \
    do {                                                                                                             \
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps((b) + 8);                                          \
        __m256 ai = _mm256_broadcast_ss(a0);                                                                         \
        c00 = _mm256_fmadd_ps(ai, b0, c00);                                                                          \
        c01 = _mm256_fmadd_ps(ai, b1, c01);                                                                          \
        ai = _mm256_broadcast_ss(a1);                                                                                \
        c10 = _mm256_fmadd_ps(ai, b0, c10);                                                                          \
        c11 = _mm256_fmadd_ps(ai, b1, c11);                                                                          \
        ai = _mm256_broadcast_ss(a2);                                                                                \
        c20 = _mm256_fmadd_ps(ai, b0, c20);                                                                          \
        c21 = _mm256_fmadd_ps(ai, b1, c21);                                                                          \
        ai = _mm256_broadcast_ss(a3);                                                                                \
        c30 = _mm256_fmadd_ps(ai, b0, c30);                                                                          \
        c31 = _mm256_fmadd_ps(ai, b1, c31);                                                                          \
        ai = _mm256_broadcast_ss(a4);                                                                                \
        c40 = _mm256_fmadd_ps(ai, b0, c40);                                                                          \
        c41 = _mm256_fmadd_ps(ai, b1, c41);                                                                          \
        ai = _mm256_broadcast_ss(a5);                                                                                \
        c50 = _mm256_fmadd_ps(ai, b0, c50);                                                                          \
        c51 = _mm256_fmadd_ps(ai, b1, c51);                                                                          \
    } while (0)

#define PGEMM_ZERO_ACC                                                                                               \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, \
           c40 = c00, c41 = c00, c50 = c00, c51 = c00

/* Stores the 12 accumulators into C's mr x nr corner per `out` (vector stores for a whole tile). */
static inline void store_acc(const __m256 rows[MR][2], float *C, int64_t ldc, int mr, int nr, tile_out out) {
    if (mr == MR && nr == NR) {
        const __m256 cb0 = out.col_bias ? _mm256_loadu_ps(out.col_bias) : _mm256_setzero_ps();
        const __m256 cb1 = out.col_bias ? _mm256_loadu_ps(out.col_bias + 8) : _mm256_setzero_ps();
        for (int i = 0; i < MR; i++) {
            float *c = C + i * ldc;
            __m256 r0 = rows[i][0], r1 = rows[i][1];
            if (out.row_bias) {
                const __m256 rb = _mm256_broadcast_ss(out.row_bias + i);
                r0 = _mm256_add_ps(r0, rb);
                r1 = _mm256_add_ps(r1, rb);
            }
            if (out.col_bias) {
                r0 = _mm256_add_ps(r0, cb0);
                r1 = _mm256_add_ps(r1, cb1);
            }
            if (out.accumulate) {
                r0 = _mm256_add_ps(_mm256_loadu_ps(c), r0);
                r1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), r1);
            }
            _mm256_storeu_ps(c, r0);
            _mm256_storeu_ps(c + 8, r1);
        }
        return;
    }
    float acc[MR * NR] __attribute__((aligned(32)));
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(acc + i * NR, rows[i][0]);
        _mm256_store_ps(acc + i * NR + 8, rows[i][1]);
    }
    store_tile(acc, C, ldc, mr, nr, out);
}

/* C[mr, nr] (per out) = a (kc x MR panel slice) · b (kc x NR panel slice). */
static void microkernel(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int mr, int nr,
                        tile_out out) {
    prefetch_tile(C, ldc, mr);
    PGEMM_ZERO_ACC;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) PGEMM_STEP(a, a + 1, a + 2, a + 3, a + 4, a + 5, b);
    const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    store_acc(rows, C, ldc, mr, nr, out);
}

/* The same with A read in place: row i of the strip at a + i * lda (rows past mr repeat row 0; their results are
 * not stored), k contiguous. */
static void microkernel_rows(int64_t kc, const float *a, int64_t lda, const float *b, float *C, int64_t ldc, int mr,
                             int nr, tile_out out) {
    prefetch_tile(C, ldc, mr);
    const float *a0 = a, *a1 = mr > 1 ? a + lda : a, *a2 = mr > 2 ? a + 2 * lda : a, *a3 = mr > 3 ? a + 3 * lda : a,
                *a4 = mr > 4 ? a + 4 * lda : a, *a5 = mr > 5 ? a + 5 * lda : a;
    PGEMM_ZERO_ACC;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++, b += NR) PGEMM_STEP(a0 + k, a1 + k, a2 + k, a3 + k, a4 + k, a5 + k, b);
    const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    store_acc(rows, C, ldc, mr, nr, out);
}

const char *svdc_pgemm_kernel_name(void) { return "svdc avx2-fma 6x16"; }
#else
typedef float vec4 __attribute__((vector_size(16)));

static inline vec4 load4(const float *p) {
    vec4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* C[mr, nr] (per out) = A (MR rows: row i at depth k is a[i * ars + k * aks]) · b (kc x NR panel slice), as two
 * 6 x 8 halves. Rows past mr repeat row 0 (their results are not stored). */
static inline void microkernel_any(int64_t kc, const float *a, int64_t ars, int64_t aks, const float *b, float *C,
                                   int64_t ldc, int mr, int nr, tile_out out) {
    prefetch_tile(C, ldc, mr);
    const float *ar[MR];
    for (int i = 0; i < MR; i++) ar[i] = a + (i < mr ? i * ars : 0);
    float acc[MR * NR];
    for (int h = 0; h < NR; h += 8) {
        vec4 c[MR][2];
        for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = (vec4){0, 0, 0, 0};
        const float *bk = b + h;
        for (int64_t k = 0; k < kc; k++, bk += NR) {
            const vec4 b0 = load4(bk), b1 = load4(bk + 4);
            for (int i = 0; i < MR; i++) {
                const float v = ar[i][k * aks];
                const vec4 ai = {v, v, v, v};
                c[i][0] += ai * b0;
                c[i][1] += ai * b1;
            }
        }
        for (int i = 0; i < MR; i++) {
            memcpy(acc + i * NR + h, &c[i][0], sizeof c[i][0]);
            memcpy(acc + i * NR + h + 4, &c[i][1], sizeof c[i][1]);
        }
    }
    store_tile(acc, C, ldc, mr, nr, out);
}

static void microkernel(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int mr, int nr,
                        tile_out out) {
    microkernel_any(kc, a, 1, MR, b, C, ldc, mr, nr, out);
}

static void microkernel_rows(int64_t kc, const float *a, int64_t lda, const float *b, float *C, int64_t ldc, int mr,
                             int nr, tile_out out) {
    microkernel_any(kc, a, lda, 1, b, C, ldc, mr, nr, out);
}

const char *svdc_pgemm_kernel_name(void) { return "svdc vec4 6x16"; }
#endif

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The depth of each K block: K split into equal blocks of at most KC (no short last block that would cost a
 * whole pass over C for little arithmetic). Depends on K only, so the summation order does too. */
static inline int64_t block_depth(int64_t K) {
    const int64_t blocks = (K + KC - 1) / KC;
    return (K + blocks - 1) / blocks;
}

/* The store of the block at depth k0: the caller's epilogue on the first block, accumulate on the others. */
static inline tile_out block_out(const svdc_pgemm_epilogue *ep, int64_t k0) {
    tile_out out = {.accumulate = k0 > 0 || (ep && ep->accumulate)};
    return out;
}

void svdc_pgemm_wa(int64_t M, int64_t N, int64_t K, const float *ap, const float *B, int64_t ldb, float *C,
                   int64_t ldc, const svdc_pgemm_epilogue *ep, float *scratch) {
    const int64_t kb = block_depth(K);
    for (int64_t n0 = 0; n0 < N; n0 += NC) {
        const int64_t nc = min64(NC, N - n0), panels = (nc + NR - 1) / NR;
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            const int64_t kc = min64(kb, K - k0);
            /* scratch: B[k0 : k0+kc, n0 : n0+nc] as NR-column panels (kc x NR each), zero past N */
            for (int64_t q = 0; q < panels; q++) {
                const int64_t j0 = n0 + q * NR, w = min64(NR, N - j0);
                float *bp = scratch + q * kc * NR;
                for (int64_t k = 0; k < kc; k++) {
                    const float *row = B + (k0 + k) * ldb + j0;
                    float *dst = bp + k * NR;
                    memcpy(dst, row, (size_t)w * sizeof(float));
                    for (int64_t j = w; j < NR; j++) dst[j] = 0.0f;
                }
            }
            tile_out out = block_out(ep, k0);
            /* MC rows of A at a time (their kc-deep strips stay in L2) against each B panel slice (in L1) */
            for (int64_t m0 = 0; m0 < M; m0 += MC)
                for (int64_t q = 0; q < panels; q++) {
                    const float *b = scratch + q * kc * NR;
                    const int nr = (int)min64(NR, nc - q * NR);
                    for (int64_t i0 = m0; i0 < M && i0 < m0 + MC; i0 += MR) { /* strip i0/MR at depth k0 */
                        out.row_bias = k0 == 0 && ep && ep->bias ? ep->bias + i0 : NULL;
                        microkernel(kc, ap + (i0 * K + k0 * MR), b, C + i0 * ldc + n0 + q * NR, ldc,
                                    (int)min64(MR, M - i0), nr, out);
                    }
                }
        }
    }
}

void svdc_pgemm_wb(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *bp, float *C,
                   int64_t ldc, const svdc_pgemm_epilogue *ep) {
    const int64_t kb = block_depth(K);
    /* MC x NC blocks of C (in L2 across the K blocks), each built from the block's MC rows of A (kc deep, in L2) and
     * the NC / NR weight panel slices (kc x NR, each in L1 across the block's row strips) */
    for (int64_t m0 = 0; m0 < M; m0 += MC) {
        const int64_t mc = min64(MC, M - m0);
        for (int64_t n0 = 0; n0 < N; n0 += NC) {
            const int64_t q1 = (min64(N, n0 + NC) + NR - 1) / NR;
            for (int64_t k0 = 0; k0 < K; k0 += kb) {
                const int64_t kc = min64(kb, K - k0);
                tile_out out = block_out(ep, k0);
                for (int64_t q = n0 / NR; q < q1; q++) {
                    const float *b = bp + (q * K + k0) * NR; /* panel q, depth k0 */
                    const int nr = (int)min64(NR, N - q * NR);
                    out.col_bias = k0 == 0 && ep && ep->bias ? ep->bias + q * NR : NULL;
                    for (int64_t i0 = m0; i0 < m0 + mc; i0 += MR)
                        microkernel_rows(kc, A + i0 * lda + k0, lda, b, C + i0 * ldc + q * NR, ldc,
                                         (int)min64(MR, m0 + mc - i0), nr, out);
                }
            }
        }
    }
}
