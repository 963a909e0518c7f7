/* pgemm.c — the packed-weight GEMM of pgemm.h: cache blocking (KC x NC blocks of B, MC x KC blocks of A) around one
 * MR x NR = 6 x 16 microkernel. The avx2 variant's microkernel keeps the 6x16 tile in 12 ymm accumulators and
 * uses FMA; the baseline variant's (4-wide GCC vectors, any x86-64 or other target) works on two 6x8 halves so its
 * 12 accumulators fit 16 SSE registers. Summation order per element: acc = sum over the block's k in order (each
 * step one multiply-add, fused or not per variant), then C = acc or C += acc; blocks in K order. */
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

/* Starts fetching the C tile the microkernel will read and write after its K loop: C's rows are far apart (a row
 * of the output), so without this each call waits for MR cache misses at the end. */
static inline void prefetch_tile(const float *C, int64_t ldc, int mr) {
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(C + i * ldc, 1, 3);
        __builtin_prefetch(C + i * ldc + NR - 1, 1, 3);
    }
}

/* Writes the tile acc (MR x NR, row-major) into C's mr x nr corner: C = acc, or C += acc. */
static inline void store_tile(const float *acc, float *C, int64_t ldc, int mr, int nr, int accumulate) {
    for (int i = 0; i < mr; i++) {
        float *c = C + i * ldc;
        if (accumulate)
            for (int j = 0; j < nr; j++) c[j] += acc[i * NR + j];
        else
            memcpy(c, acc + i * NR, (size_t)nr * sizeof(float));
    }
}

#ifdef PGEMM_AVX2
/* C[mr, nr] (=|+=) a (kc x MR panel slice) · b (kc x NR panel slice). */
static void microkernel(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int mr, int nr,
                        int accumulate) {
    prefetch_tile(C, ldc, mr);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ai = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40);
        c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50);
        c51 = _mm256_fmadd_ps(ai, b1, c51);
    }
    const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *c = C + i * ldc;
            __m256 r0 = rows[i][0], r1 = rows[i][1];
            if (accumulate) {
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
    store_tile(acc, C, ldc, mr, nr, accumulate);
}

const char *svdc_pgemm_kernel_name(void) { return "svdc avx2-fma 6x16"; }
#else
typedef float vec4 __attribute__((vector_size(16)));

static inline vec4 load4(const float *p) {
    vec4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* C[mr, nr] (=|+=) a (kc x MR panel slice) · b (kc x NR panel slice), as two 6 x 8 halves. */
static void microkernel(int64_t kc, const float *a, const float *b, float *C, int64_t ldc, int mr, int nr,
                        int accumulate) {
    prefetch_tile(C, ldc, mr);
    float acc[MR * NR];
    for (int h = 0; h < NR; h += 8) {
        vec4 c[MR][2];
        for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = (vec4){0, 0, 0, 0};
        const float *ak = a, *bk = b + h;
        for (int64_t k = 0; k < kc; k++, ak += MR, bk += NR) {
            const vec4 b0 = load4(bk), b1 = load4(bk + 4);
            for (int i = 0; i < MR; i++) {
                const vec4 ai = {ak[i], ak[i], ak[i], ak[i]};
                c[i][0] += ai * b0;
                c[i][1] += ai * b1;
            }
        }
        for (int i = 0; i < MR; i++) {
            memcpy(acc + i * NR + h, &c[i][0], sizeof c[i][0]);
            memcpy(acc + i * NR + h + 4, &c[i][1], sizeof c[i][1]);
        }
    }
    store_tile(acc, C, ldc, mr, nr, accumulate);
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

void svdc_pgemm_wa(int64_t M, int64_t N, int64_t K, const float *ap, const float *B, int64_t ldb, float *C,
                   int64_t ldc, int accumulate, float *scratch) {
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
            const int acc = accumulate || k0 > 0;
            /* MC rows of A at a time (their kc-deep strips stay in L2) against each B panel slice (in L1) */
            for (int64_t m0 = 0; m0 < M; m0 += MC)
                for (int64_t q = 0; q < panels; q++) {
                    const float *b = scratch + q * kc * NR;
                    const int nr = (int)min64(NR, nc - q * NR);
                    for (int64_t i0 = m0; i0 < M && i0 < m0 + MC; i0 += MR) /* strip i0/MR at depth k0 */
                        microkernel(kc, ap + (i0 * K + k0 * MR), b, C + i0 * ldc + n0 + q * NR, ldc,
                                    (int)min64(MR, M - i0), nr, acc);
                }
        }
    }
}

void svdc_pgemm_wb(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *bp, float *C,
                   int64_t ldc, int accumulate, float *scratch) {
    const int64_t panels = (N + NR - 1) / NR, kb = block_depth(K);
    for (int64_t m0 = 0; m0 < M; m0 += MC) {
        const int64_t mc = min64(MC, M - m0), strips = (mc + MR - 1) / MR;
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            const int64_t kc = min64(kb, K - k0);
            /* scratch: A[m0 : m0+mc, k0 : k0+kc] as MR-row panels (kc x MR each), zero past M */
            for (int64_t p = 0; p < strips; p++) {
                float *dst = scratch + p * kc * MR;
                for (int i = 0; i < MR; i++) {
                    const int64_t r = m0 + p * MR + i;
                    if (r < M) {
                        const float *row = A + r * lda + k0;
                        for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = row[k];
                    } else {
                        for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
                    }
                }
            }
            const int acc = accumulate || k0 > 0;
            for (int64_t q = 0; q < panels; q++) {
                const float *b = bp + (q * K + k0) * NR; /* panel q, depth k0 */
                const int nr = (int)min64(NR, N - q * NR);
                for (int64_t p = 0; p < strips; p++)
                    microkernel(kc, scratch + p * kc * MR, b, C + (m0 + p * MR) * ldc + q * NR, ldc,
                                (int)min64(MR, mc - p * MR), nr, acc);
            }
        }
    }
}
