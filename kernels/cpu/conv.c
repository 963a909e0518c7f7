/* conv.c — 2-D convolution (any kernel, stride, asymmetric zero padding) and the temporal (3,1,1) convolution on the
 * CPU, both as GEMMs: Winograd F(2x2,3x3) or F(4x4,3x3) for 3x3 stride-1 convs with >= 16 channels each side, im2col in
 * bounded chunks of output rows for the other conv2d shapes (a 1x1 stride-1 conv is a GEMM on the input as is),
 * three frame-shifted GEMMs for the temporal conv. Winograd and im2col GEMMs are svdc's own (pgemm.h) on the weight
 * (for Winograd its transform U) packed at load, or packed per call when loading did not (16-bit weights,
 * SVDC_PREPACK=0): the same kernel, so the same results either way. The 1x1 and temporal GEMMs are svdc's own on a
 * weight packed at load (SVDC_PREPACK=all), else OpenBLAS SGEMM on the weight as stored. Scratch comes from the
 * context's arena. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "blas.h"
#include "kernels.h"
#include "pgemm.h"

/* Each thread's im2col buffer holds at most this many floats (16 MiB), whatever the layer size. */
#define IM2COL_BUDGET ((int64_t)4 << 20)
/* An im2col conv's weight not packed at load is packed per call when it has at most this many floats (16 MiB). */
#define IM2COL_WEIGHT_PACK_MAX ((int64_t)4 << 20)
/* Output columns per GEMM task at least this many (so each GEMM amortises packing its weight matrix). */
#define MIN_TASK_COLS 256
/* Winograd scratch: per thread the transformed tiles V and products M of one task aim at WINO_SOFT floats, grow to
 * hold at least WINO_MIN_TILES tiles (so each GEMM amortises packing its transformed weights) but never past
 * WINO_BUDGET floats; the transformed weights of one output-channel block take at most WINO_U_BUDGET floats. */
#define WINO_SOFT ((int64_t)3 << 20)
#define WINO_BUDGET ((int64_t)8 << 20)
#define WINO_MIN_TILES 128
#define WINO_U_BUDGET ((int64_t)8 << 20)
/* F(4x4)'s U (36 matrices, per call) may take more, so a 512x512 conv's (9.4 Mi floats, 38 MiB) is one block: a
 * second block would redo the input transform. */
#define WINO4_U_BUDGET ((int64_t)10 << 20)

/* All work of one op runs in ONE OpenMP region of dynamically scheduled tasks, each calling single-threaded GEMMs
 * (svdc_sgemm inside a region). Per-GEMM fork/join would make idle threads spin at every barrier, which on a busy
 * machine steals the CPU from the threads still computing (measured 3x slower at 2 threads under load). */

/* y[:, c0:c1] of an (O, P) matrix starts as the bias (or zero), so the GEMMs accumulate with beta = 1. */
static void init_cols(float *y, const float *bias, int64_t O, int64_t P, int64_t c0, int64_t c1) {
    for (int64_t o = 0; o < O; o++) {
        const float v = bias ? bias[o] : 0.0f;
        float *row = y + o * P;
        for (int64_t p = c0; p < c1; p++) row[p] = v;
    }
}

/* col (K, nr*Wo) for output rows [oh0, oh0+nr) of image xn: col[(c*kh + i)*kw + j, r*Wo + ow] =
 * x[c, (oh0+r)*sh - pt + i, ow*sw - pl + j] (zero outside the image). */
static void im2col_rows(const float *xn, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                        int64_t sw, int64_t pt, int64_t pl, int64_t Wo, int64_t oh0, int64_t nr, float *col) {
    const int64_t K = C * kh * kw, cols = nr * Wo;
    for (int64_t kk = 0; kk < K; kk++) {
        const int64_t c = kk / (kh * kw), i = (kk / kw) % kh, j = kk % kw;
        const float *plane = xn + c * H * W;
        float *out = col + kk * cols;
        for (int64_t r = 0; r < nr; r++) {
            const int64_t ih = (oh0 + r) * sh - pt + i;
            float *orow = out + r * Wo;
            if (ih < 0 || ih >= H) {
                memset(orow, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *irow = plane + ih * W;
            if (sw == 1) {
                /* Contiguous span: zeros left/right of the image, one copy in between. */
                const int64_t iw0 = -pl + j;
                int64_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0;
                if (hi > Wo) hi = Wo;
                if (lo > Wo) lo = Wo;
                if (hi < lo) hi = lo;
                for (int64_t ow = 0; ow < lo; ow++) orow[ow] = 0.0f;
                if (hi > lo) memcpy(orow + lo, irow + iw0 + lo, (size_t)(hi - lo) * sizeof(float));
                for (int64_t ow = hi; ow < Wo; ow++) orow[ow] = 0.0f;
            } else {
                for (int64_t ow = 0; ow < Wo; ow++) {
                    const int64_t iw = ow * sw - pl + j;
                    orow[ow] = (iw >= 0 && iw < W) ? irow[iw] : 0.0f;
                }
            }
        }
    }
}

/* ---- Winograd convolution for 3x3 stride-1 convs (any zero padding) ----
 * Each m x m output tile comes from an n x n input patch d (n = m + 2): Y = A^T [ U .* (B^T d B) ] A with U = G g G^T,
 * done as n*n GEMMs (one per transform position xi):  M[xi] (O, tiles) = U[xi] (O, C) · V[xi] (C, tiles).
 * Two tile sizes:
 *  - F(2x2, 3x3): 16 products per 4 outputs (2.25x fewer multiply-adds than direct). Transforms (Lavin & Gray 2015):
 *    B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *    A^T = [1 1 1 0; 0 1 -1 -1]. U may be packed once per model (SVDC_PACKED_WINOGRAD).
 *  - F(4x4, 3x3): 36 products per 16 outputs (4x fewer; 1.78x fewer than F(2x2)), for large images, where the
 *    per-call weight transform is amortised over many tiles. Toom-Cook with the interpolation points
 *    0, 1, -1, 1/2, -2 and infinity (chosen for float32 accuracy: about half the error of 0, +-1, +-2, measured
 *    against a float64 direct conv with 512 channels):
 *      B^T = [1 -3/2 -2 3/2 1 0; 0 -1 1/2 5/2 1 0; 0 1 -5/2 1/2 1 0; 0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0;
 *             0 1 -3/2 -2 3/2 1]
 *      G   = [1 0 0; 1/3 1/3 1/3; -1/3 1/3 -1/3; -16/15 -8/15 -4/15; 1/15 -2/15 4/15; 0 0 1]
 *      A^T = [1 1 1 1 1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0; 0 1 -1 1/8 -8 1]
 *    U is computed per call (in double, rounded once) in blocks of output channels. */

/* F(4x4) is chosen (SVDC_WINOGRAD_TILE unset or "auto") for images of at least this many 4x4 output tiles: below
 * that the per-call weight transform (and, for weights packed once per model, F(2x2)'s free U) wins
 * (benchmarks/results/winograd_cpu_2026-12-03.md). The choice depends on the image size only, not on how many
 * images a call holds, so a frame's result does not depend on batching. */
#define WINO4_MIN_TILES 512

/* Floats between the transform positions' matrices: their size rounded up to an odd multiple of 64 bytes, so the
 * streams that each transform reads or writes do not all map to the same L1 set (a 4 KiB multiple thrashes). */
static int64_t wino_stride(int64_t n) { return (n + 15) / 32 * 32 + 16; }

/* ---- F(2x2, 3x3) tile transforms ---- */

/* V[xi][c][t] = (B^T d B)[xi] for the tiles of tile rows [r0, r0 + nr) (tw tiles each, nt = nr * tw) of image xn;
 * d is the 4x4 patch at (2*ty - pt, 2*tx - pl), zero outside the image. The 4 input rows of a tile row are first
 * copied into a zero-padded buffer pad (4 rows of 2*tw + 2 floats), so the loop over tiles has no bounds tests and
 * vectorises (stride-2 loads, contiguous stores). */
static void wino2_input(const float *xn, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t tw,
                        int64_t r0, int64_t nr, float *V, float *pad) {
    const int64_t nt = nr * tw, stride = wino_stride(C * nt), pw = 2 * tw + 2;
    /* input columns [ix_lo, ix_hi) land in the buffer at ix + pl */
    const int64_t ix_lo = pl > 0 ? 0 : -pl, ix_hi = W < pw - pl ? W : pw - pl;
    for (int64_t c = 0; c < C; c++) {
        const float *plane = xn + c * H * W;
        for (int64_t r = 0; r < nr; r++) {
            const int64_t iy0 = 2 * (r0 + r) - pt;
            for (int i = 0; i < 4; i++) {
                float *prow = pad + i * pw;
                const int64_t iy = iy0 + i;
                if (iy < 0 || iy >= H || ix_hi <= ix_lo) {
                    memset(prow, 0, (size_t)pw * sizeof(float));
                    continue;
                }
                const int64_t b0 = ix_lo + pl, b1 = ix_hi + pl; /* buffer span holding image columns */
                for (int64_t k = 0; k < b0; k++) prow[k] = 0.0f;
                memcpy(prow + b0, plane + iy * W + ix_lo, (size_t)(b1 - b0) * sizeof(float));
                for (int64_t k = b1; k < pw; k++) prow[k] = 0.0f;
            }
            const float *p0 = pad, *p1 = pad + pw, *p2 = pad + 2 * pw, *p3 = pad + 3 * pw;
            float *v = V + c * nt + r * tw;
            for (int64_t tx = 0; tx < tw; tx++) {
                const int64_t x = 2 * tx;
                /* t = B^T d (rows), then v = t B (columns) */
                float t[4][4];
                for (int j = 0; j < 4; j++) {
                    t[0][j] = p0[x + j] - p2[x + j];
                    t[1][j] = p1[x + j] + p2[x + j];
                    t[2][j] = p2[x + j] - p1[x + j];
                    t[3][j] = p1[x + j] - p3[x + j];
                }
                for (int i = 0; i < 4; i++) {
                    v[(i * 4 + 0) * stride + tx] = t[i][0] - t[i][2];
                    v[(i * 4 + 1) * stride + tx] = t[i][1] + t[i][2];
                    v[(i * 4 + 2) * stride + tx] = t[i][2] - t[i][1];
                    v[(i * 4 + 3) * stride + tx] = t[i][1] - t[i][3];
                }
            }
        }
    }
}

/* y[n][o0 + o] for the tiles of tile rows [r0, r0 + nr): the 2x2 block A^T m A (+ bias), clipped to (Ho, Wo). The two
 * output rows of a tile row are built in out (2 rows of 2*tw floats) and copied clipped. */
static void wino2_output(const float *M, const float *bias, int64_t o0, int64_t on, int64_t Ho, int64_t Wo, int64_t tw,
                         int64_t r0, int64_t nr, float *yn, float *out) {
    const int64_t nt = nr * tw, stride = wino_stride(on * nt), ow = 2 * tw;
    for (int64_t o = 0; o < on; o++) {
        const float bv = bias ? bias[o0 + o] : 0.0f;
        float *plane = yn + (o0 + o) * Ho * Wo;
        for (int64_t r = 0; r < nr; r++) {
            const float *m = M + o * nt + r * tw;
            float *q0 = out, *q1 = out + ow;
            for (int64_t tx = 0; tx < tw; tx++) {
                float s[2][4]; /* s = A^T m */
                for (int j = 0; j < 4; j++) {
                    const float m0 = m[j * stride + tx], m1 = m[(4 + j) * stride + tx], m2 = m[(8 + j) * stride + tx],
                                m3 = m[(12 + j) * stride + tx];
                    s[0][j] = m0 + m1 + m2;
                    s[1][j] = m1 - m2 - m3;
                }
                /* y = s A */
                q0[2 * tx] = bv + s[0][0] + s[0][1] + s[0][2];
                q0[2 * tx + 1] = bv + s[0][1] - s[0][2] - s[0][3];
                q1[2 * tx] = bv + s[1][0] + s[1][1] + s[1][2];
                q1[2 * tx + 1] = bv + s[1][1] - s[1][2] - s[1][3];
            }
            const int64_t oy = 2 * (r0 + r);
            for (int i = 0; i < 2 && oy + i < Ho; i++)
                memcpy(plane + (oy + i) * Wo, out + i * ow, (size_t)Wo * sizeof(float));
        }
    }
}

/* F(2x2) on small feature maps (fewer than WINO_MIN_TILES tiles per image) with U packed: one task per image would
 * stream all of U (16 O C floats, 105 MB at 1280 channels) from memory for a few tiles each (4 at 4x4), and fill
 * a quarter of the 16-column microkernel tile. Instead tasks take a group of g images (g T >= WINO_MIN_TILES tiles
 * side by side) and a block of output channels, so U is read about once per group and the threads split it by
 * rows. Each task transforms its group's images (redone per channel block: a few % of the GEMMs' work) and gathers
 * them into one V (16, C, g T); its M (16, ob, g T) is scattered back per image for the output transform. Every
 * element is the same sum as in the per-image path, so the results are the same bits. */
static svdc_status conv3x3_winograd_grouped(const svdc_ctx *ctx, const float *xd, const svdc_packed_weight *pw,
                                            const float *bd, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                                            int64_t Ho, int64_t Wo, int64_t pt, int64_t pl, float *yd) {
    const int threads = omp_get_max_threads();
    const int64_t th = (Ho + 1) / 2, tw = (Wo + 1) / 2, T = th * tw;
    int64_t g = (WINO_MIN_TILES + T - 1) / T; /* images per group */
    if (g > N) g = N;
    while (g > 1 && 16 * (C + O) * g * T > WINO_BUDGET) g--;
    const int64_t groups = (N + g - 1) / g;
    /* output-channel blocks (whole panels): about two tasks per thread */
    const int64_t want = (2 * threads + groups - 1) / groups;
    int64_t ob = (O + want - 1) / want;
    ob = (ob + SVDC_PACK_MR - 1) / SVDC_PACK_MR * SVDC_PACK_MR;
    if (ob > O) ob = O;
    const int64_t oblocks = (O + ob - 1) / ob, tasks = groups * oblocks, gt = g * T;
    /* per thread: one image's V and M in the transforms' layout, the group's V and M, the GEMM scratch and the
     * transforms' row buffers */
    const int64_t sv1 = wino_stride(C * T), sm1 = wino_stride(ob * T), svg = wino_stride(C * gt),
                  smg = wino_stride(ob * gt), rowbuf = (8 * tw + 8 + 15) / 16 * 16;
    const size_t per_thread = (size_t)(16 * (sv1 + sm1 + svg + smg) + rowbuf) + SVDC_PGEMM_SCRATCH;
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *bufs = svdc_arena_alloc(ctx->arena, per_thread * (size_t)threads * sizeof(float));
    if (!bufs) return SVDC_ERR_MEMORY;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t task = 0; task < tasks; task++) {
        float *V1 = bufs + (size_t)omp_get_thread_num() * per_thread, *M1 = V1 + 16 * sv1, *Vg = M1 + 16 * sm1,
              *Mg = Vg + 16 * svg, *rows = Mg + 16 * smg, *gemm_buf = rows + rowbuf;
        const int64_t n0 = (task / oblocks) * g, gn = N - n0 < g ? N - n0 : g;
        const int64_t o0 = (task % oblocks) * ob, on = O - o0 < ob ? O - o0 : ob, nt = gn * T;
        const int64_t svn = wino_stride(C * nt), smn = wino_stride(on * nt), sm1n = wino_stride(on * T);
        /* Vg[xi][c][j T + t] = V of image n0 + j at (xi, c, t) */
        for (int64_t j = 0; j < gn; j++) {
            wino2_input(xd + (n0 + j) * C * H * W, C, H, W, pt, pl, tw, 0, th, V1, rows);
            for (int xi = 0; xi < 16; xi++)
                for (int64_t c = 0; c < C; c++)
                    memcpy(Vg + xi * svn + c * nt + j * T, V1 + xi * sv1 + c * T, (size_t)T * sizeof(float));
        }
        for (int xi = 0; xi < 16; xi++) /* Mg[xi] (on, nt) = U[xi][o0 : o0+on] (on, C) · Vg[xi] (C, nt) */
            svdc_pgemm_wa(on, nt, C, pw->data + xi * pw->mat_stride + o0 * C, Vg + xi * svn, nt, Mg + xi * smn, nt,
                          NULL, gemm_buf);
        for (int64_t j = 0; j < gn; j++) { /* M1[xi][o][t] = Mg[xi][o][j T + t], then image n0 + j's outputs */
            for (int xi = 0; xi < 16; xi++)
                for (int64_t o = 0; o < on; o++)
                    memcpy(M1 + xi * sm1n + o * T, Mg + xi * smn + o * nt + j * T, (size_t)T * sizeof(float));
            wino2_output(M1, bd, o0, on, Ho, Wo, tw, 0, th, yd + (n0 + j) * O * Ho * Wo, rows);
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

/* ---- F(4x4, 3x3) transforms ----
 * Both tile transforms work on whole rows of tiles with every loop contiguous (so they vectorise): an input row of
 * the 6-row band is split by column phase (x mod 4) into 4 arrays of tw + 1 floats, where the patch column k of tile
 * tx is phase k mod 4 at index tx + k/4; the output rows are built per phase and interleaved when stored. */

/* out_j[i] = sum_k B^T[j][k] in_k[i] for i < n (the 1-D input transform applied elementwise along arrays). */
static void wino4_bt(const float *restrict d0, const float *restrict d1, const float *restrict d2,
                     const float *restrict d3, const float *restrict d4, const float *restrict d5, int64_t n,
                     float *restrict t0, float *restrict t1, float *restrict t2, float *restrict t3,
                     float *restrict t4, float *restrict t5) {
    for (int64_t i = 0; i < n; i++) {
        const float a0 = d0[i], a1 = d1[i], a2 = d2[i], a3 = d3[i], a4 = d4[i], a5 = d5[i];
        t0[i] = a0 - 1.5f * a1 - 2.0f * a2 + 1.5f * a3 + a4;
        t1[i] = -a1 + 0.5f * a2 + 2.5f * a3 + a4;
        t2[i] = a1 - 2.5f * a2 + 0.5f * a3 + a4;
        t3[i] = -2.0f * a1 - a2 + 2.0f * a3 + a4;
        t4[i] = 0.5f * a1 - a2 - 0.5f * a3 + a4;
        t5[i] = a1 - 1.5f * a2 - 2.0f * a3 + 1.5f * a4 + a5;
    }
}

/* out_j[i] = sum_k A^T[j][k] in_k[i] for i < n (the 1-D output transform along arrays). */
static void wino4_at(const float *restrict m0, const float *restrict m1, const float *restrict m2,
                     const float *restrict m3, const float *restrict m4, const float *restrict m5, int64_t n,
                     float *restrict s0, float *restrict s1, float *restrict s2, float *restrict s3) {
    for (int64_t i = 0; i < n; i++) {
        const float a0 = m0[i], a1 = m1[i], a2 = m2[i], a3 = m3[i], a4 = m4[i], a5 = m5[i];
        const float p = a1 + a2, q = a1 - a2;
        s0[i] = a0 + p + a3 + a4;
        s1[i] = q + 0.5f * a3 - 2.0f * a4;
        s2[i] = p + 0.25f * a3 + 4.0f * a4;
        s3[i] = q + 0.125f * a3 - 8.0f * a4 + a5;
    }
}

/* Floats of the per-thread row buffers of one tile row of tw tiles (64-byte multiple): the input's phase-split
 * band and its row transform (2 * 6 * 4 * (tw + 1)), the output's column and row transforms (24 * tw + 16 * tw). */
static int64_t wino4_rowbuf_floats(int64_t tw) { return (48 * (tw + 1) + 40 * tw + 15) / 16 * 16; }

/* V[xi][c][t] = (B^T d B)[xi] (xi = 6*i + j) for the tiles of tile rows [r0, r0 + nr) (tw tiles each) of image xn;
 * d is the 6x6 patch at (4*ty - pt, 4*tx - pl), zero outside the image. */
static void wino4_input(const float *xn, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t tw,
                        int64_t r0, int64_t nr, float *V, float *buf) {
    const int64_t nt = nr * tw, stride = wino_stride(C * nt), L = tw + 1, band = 4 * L;
    float *P = buf;             /* (6 rows, 4 phases, L): padded input column x = 4*t + q at P[row][q][t] */
    float *T = buf + 6 * band;  /* (6, 4, L): B^T applied down the 6 rows */
    for (int64_t c = 0; c < C; c++) {
        const float *plane = xn + c * H * W;
        for (int64_t r = 0; r < nr; r++) {
            const int64_t iy0 = 4 * (r0 + r) - pt;
            for (int i = 0; i < 6; i++) {
                float *prow = P + i * band;
                const int64_t iy = iy0 + i;
                memset(prow, 0, (size_t)band * sizeof(float));
                if (iy < 0 || iy >= H) continue;
                const float *irow = plane + iy * W;
                /* buffer column x holds image column x - pl, for x in [0, 4*tw + 2) */
                for (int q = 0; q < 4; q++) {
                    float *ph = prow + q * L;
                    /* t with 0 <= 4t + q - pl < W and 4t + q < 4*tw + 2 */
                    int64_t t_lo = pl - q > 0 ? (pl - q + 3) / 4 : 0;
                    int64_t t_hi = (W + pl - q + 3) / 4; /* first t with 4t + q - pl >= W */
                    const int64_t t_end = (4 * tw + 2 - q + 3) / 4;
                    if (t_hi > t_end) t_hi = t_end;
                    for (int64_t t = t_lo; t < t_hi; t++) ph[t] = irow[4 * t + q - pl];
                }
            }
            /* column transform of the 6 rows, all phases at once */
            wino4_bt(P, P + band, P + 2 * band, P + 3 * band, P + 4 * band, P + 5 * band, band, T, T + band,
                     T + 2 * band, T + 3 * band, T + 4 * band, T + 5 * band);
            float *v = V + c * nt + r * tw;
            for (int i = 0; i < 6; i++) { /* row transform: patch column k of tile tx at phase k % 4, index tx + k/4 */
                const float *ti = T + i * band;
                float *vi = v + (int64_t)(6 * i) * stride;
                wino4_bt(ti, ti + L, ti + 2 * L, ti + 3 * L, ti + 1, ti + L + 1, tw, vi, vi + stride, vi + 2 * stride,
                         vi + 3 * stride, vi + 4 * stride, vi + 5 * stride);
            }
        }
    }
}

/* y[n][o0 + o] for the tiles of tile rows [r0, r0 + nr): the 4x4 block A^T m A (+ bias), clipped to (Ho, Wo). */
static void wino4_output(const float *M, const float *bias, int64_t o0, int64_t on, int64_t Ho, int64_t Wo,
                         int64_t tw, int64_t r0, int64_t nr, float *yn, float *buf) {
    const int64_t nt = nr * tw, stride = wino_stride(on * nt);
    float *S = buf;            /* (4 rows i, 6 columns j, tw): A^T applied down the columns of m */
    float *Y = buf + 24 * tw;  /* (4 rows i, 4 columns k, tw) */
    const int64_t full = Wo / 4; /* tiles whose 4 columns all lie inside the output */
    for (int64_t o = 0; o < on; o++) {
        const float bv = bias ? bias[o0 + o] : 0.0f;
        float *plane = yn + (o0 + o) * Ho * Wo;
        for (int64_t r = 0; r < nr; r++) {
            const float *m = M + o * nt + r * tw;
            for (int j = 0; j < 6; j++) /* S[i][j] = sum_k A^T[i][k] m[6k + j] */
                wino4_at(m + j * stride, m + (6 + j) * stride, m + (12 + j) * stride, m + (18 + j) * stride,
                         m + (24 + j) * stride, m + (30 + j) * stride, tw, S + j * tw, S + (6 + j) * tw,
                         S + (12 + j) * tw, S + (18 + j) * tw);
            for (int i = 0; i < 4; i++) { /* Y[i][k] = sum_j A^T[k][j] S[i][j] */
                const float *si = S + 6 * i * tw;
                float *yi = Y + 4 * i * tw;
                wino4_at(si, si + tw, si + 2 * tw, si + 3 * tw, si + 4 * tw, si + 5 * tw, tw, yi, yi + tw,
                         yi + 2 * tw, yi + 3 * tw);
            }
            const int64_t oy = 4 * (r0 + r);
            for (int i = 0; i < 4 && oy + i < Ho; i++) {
                const float *yi = Y + 4 * i * tw;
                float *orow = plane + (oy + i) * Wo;
                for (int64_t tx = 0; tx < full; tx++)
                    for (int k = 0; k < 4; k++) orow[4 * tx + k] = bv + yi[k * tw + tx];
                for (int64_t x = 4 * full; x < Wo; x++) orow[x] = bv + yi[(x & 3) * tw + full];
            }
        }
    }
}

/* Panel p (MR rows) of the 36 U[xi] = (G g G^T)[xi] matrices (xi = 6*i + j; mat_stride floats apart, A panels of
 * depth C: packed.h) of the output channels [o0, o0 + on) of a 3x3 weight (O, C, 3, 3); rows past `on` are zero.
 * Computed in double and rounded once, a chunk of input channels at a time with the channel innermost (the
 * arithmetic vectorises across channels). */
static void wino4_pack_panel(const float *w, int64_t C, int64_t o0, int64_t on, int64_t p, size_t mat_stride,
                             float *dst) {
    static const double G[6][3] = {{1, 0, 0},
                                   {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                   {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                   {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                   {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                   {0, 0, 1}};
    enum { CHUNK = 32 };
    double g[9][CHUNK], t[6][3][CHUNK];
    for (int i = 0; i < SVDC_PACK_MR; i++) {
        const int64_t r = p * SVDC_PACK_MR + i;
        for (int64_t c0 = 0; c0 < C; c0 += CHUNK) {
            const int64_t cn = C - c0 < CHUNK ? C - c0 : CHUNK;
            float *d = dst + (size_t)((p * C + c0) * SVDC_PACK_MR + i); /* element c of U[xi] at d[xi*ms + c*MR] */
            if (r >= on) {
                for (int xi = 0; xi < 36; xi++)
                    for (int64_t c = 0; c < cn; c++) d[xi * mat_stride + (size_t)(c * SVDC_PACK_MR)] = 0.0f;
                continue;
            }
            const float *src = w + ((o0 + r) * C + c0) * 9;
            for (int64_t c = 0; c < cn; c++)
                for (int k = 0; k < 9; k++) g[k][c] = src[c * 9 + k];
            for (int a = 0; a < 6; a++) /* t = G g */
                for (int j = 0; j < 3; j++)
                    for (int64_t c = 0; c < cn; c++)
                        t[a][j][c] = G[a][0] * g[j][c] + G[a][1] * g[3 + j][c] + G[a][2] * g[6 + j][c];
            for (int a = 0; a < 6; a++) /* u = t G^T */
                for (int b = 0; b < 6; b++) {
                    float *u = d + (size_t)(6 * a + b) * mat_stride;
                    for (int64_t c = 0; c < cn; c++)
                        u[c * SVDC_PACK_MR] =
                            (float)(t[a][0][c] * G[b][0] + t[a][1][c] * G[b][1] + t[a][2][c] * G[b][2]);
                }
        }
    }
}

/* The output tile size for a call: SVDC_WINOGRAD_TILE "2" or "4" forces one (tests, benchmarks); unset or "auto"
 * takes F(4x4) for images of at least WINO4_MIN_TILES 4x4 tiles. */
static svdc_status wino_tile_size(int64_t Ho, int64_t Wo, int *m) {
    const char *v = getenv("SVDC_WINOGRAD_TILE");
    if (v && !strcmp(v, "2")) *m = 2;
    else if (v && !strcmp(v, "4")) *m = 4;
    else if (!v || !*v || !strcmp(v, "auto")) *m = ((Ho + 3) / 4) * ((Wo + 3) / 4) >= WINO4_MIN_TILES ? 4 : 2;
    else return svdc_fail(SVDC_ERR_ARGUMENT, "SVDC_WINOGRAD_TILE: expected 2, 4 or auto, got '%.40s'", v);
    return SVDC_OK;
}

static svdc_status conv3x3_winograd(const svdc_ctx *ctx, const float *xd, const float *wd, const float *bd,
                                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t Ho, int64_t Wo,
                                    int64_t pt, int64_t pl, float *yd) {
    const int threads = omp_get_max_threads();
    int m;
    svdc_status st = wino_tile_size(Ho, Wo, &m);
    if (st) return st;
    const int npos = (m + 2) * (m + 2); /* transform positions: 16 or 36 */
    const int64_t th = (Ho + m - 1) / m, tw = (Wo + m - 1) / m;
    const svdc_packed_weight *pw = m == 2 ? svdc_packed_find(wd, SVDC_PACKED_WINOGRAD) : NULL;
    if (pw && th * tw < WINO_MIN_TILES)
        return conv3x3_winograd_grouped(ctx, xd, pw, bd, N, C, H, W, O, Ho, Wo, pt, pl, yd);
    /* U packed at load: one block of all output channels. Else U is packed here (for F(2x2) as loading would: the
     * same results) for blocks of output channels whose U (npos * on * C floats) fits the budget; the input
     * transform is redone per block, which costs little next to the GEMMs. Blocks are whole panels (multiples of
     * MR). */
    const int64_t u_budget = m == 2 ? WINO_U_BUDGET : WINO4_U_BUDGET;
    int64_t nblk = (npos * O * C + u_budget - 1) / u_budget;
    if (nblk < 1) nblk = 1;
    int64_t ob = (O + nblk - 1) / nblk;
    if (ob < O) ob = (ob + SVDC_PACK_MR - 1) / SVDC_PACK_MR * SVDC_PACK_MR;
    if (ob > O) ob = O;
    if (npos * ob * C > u_budget && ob > SVDC_PACK_MR) ob = u_budget / (npos * C) / SVDC_PACK_MR * SVDC_PACK_MR;
    if (ob < 1) ob = 1;
    if (pw) ob = O;
    /* Tasks of whole tile rows of one image; per thread V (npos, C, nt) and M (npos, ob, nt) fit the budget. */
    int64_t rows = WINO_SOFT / (npos * (C + ob) * tw);
    const int64_t balanced = (N * th + 2 * threads - 1) / (2 * threads);
    if (rows > balanced) rows = balanced;
    if (rows * tw < WINO_MIN_TILES) rows = (WINO_MIN_TILES + tw - 1) / tw;
    if (rows * npos * (C + ob) * tw > WINO_BUDGET) rows = WINO_BUDGET / (npos * (C + ob) * tw);
    if (rows < 1) rows = 1;
    if (rows > th) rows = th;
    const int64_t per = (th + rows - 1) / rows, tasks = N * per;
    const int nbuf = threads; /* any thread may take a task */
    /* per thread: V, M, the packed-GEMM scratch and the row buffers of the tile transforms */
    const size_t rowbuf = (size_t)(m == 2 ? (8 * tw + 8 + 15) / 16 * 16 : wino4_rowbuf_floats(tw));
    const size_t scratch = (size_t)(wino_stride(C * rows * tw) + wino_stride(ob * rows * tw)) * (size_t)npos +
                           SVDC_PGEMM_SCRATCH + rowbuf;
    /* U of one block: npos packed matrices, u_stride floats apart */
    const size_t u_stride = pw ? pw->mat_stride : (svdc_packed_matrix_floats(ob, C, SVDC_PACK_MR) + 15) / 16 * 16;
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *U = pw ? pw->data : svdc_arena_alloc(ctx->arena, (size_t)npos * u_stride * sizeof(float));
    float *bufs = U ? svdc_arena_alloc(ctx->arena, scratch * (size_t)nbuf * sizeof(float)) : NULL;
    if (!bufs) {
        svdc_arena_release(ctx->arena, mark);
        return SVDC_ERR_MEMORY;
    }
#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        float *V = bufs + (size_t)tid * scratch;
        for (int64_t o0 = 0; o0 < O; o0 += ob) {
            const int64_t on = O - o0 < ob ? O - o0 : ob;
            if (!pw) {
#pragma omp for schedule(static)
                for (int64_t p = 0; p < (on + SVDC_PACK_MR - 1) / SVDC_PACK_MR; p++) {
                    if (m == 2) svdc_winograd_pack_panel(wd, C, o0, on, p, u_stride, U);
                    else wino4_pack_panel(wd, C, o0, on, p, u_stride, U);
                }
                /* (implicit barrier: U complete) */
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t task = 0; task < tasks; task++) {
                const int64_t n = task / per, r0 = (task % per) * rows;
                const int64_t nr = th - r0 < rows ? th - r0 : rows, nt = nr * tw;
                const int64_t sv = wino_stride(C * nt), sm = wino_stride(on * nt);
                float *M = V + npos * sv, *gemm_buf = M + npos * wino_stride(ob * rows * tw);
                float *rbuf = V + scratch - rowbuf;
                const float *xn = xd + n * C * H * W;
                float *yn = yd + n * O * Ho * Wo;
                if (m == 2) wino2_input(xn, C, H, W, pt, pl, tw, r0, nr, V, rbuf);
                else wino4_input(xn, C, H, W, pt, pl, tw, r0, nr, V, rbuf);
                for (int xi = 0; xi < npos; xi++) /* M[xi] (on, nt) = U[xi] (on, C) · V[xi] (C, nt) */
                    svdc_pgemm_wa(on, nt, C, U + xi * u_stride, V + xi * sv, nt, M + xi * sm, nt, NULL, gemm_buf);
                if (m == 2) wino2_output(M, bd, o0, on, Ho, Wo, tw, r0, nr, yn, rbuf);
                else wino4_output(M, bd, o0, on, Ho, Wo, tw, r0, nr, yn, rbuf);
            }
            /* (implicit barrier: U free for the next block) */
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(conv2d)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                            const svdc_conv2d_params *p, svdc_tensor *y) {
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    const int64_t Ho = y->shape[2], Wo = y->shape[3];
    const int64_t sh = p->stride_h, sw = p->stride_w, pt = p->pad_top, pl = p->pad_left;
    const int64_t K = C * kh * kw, P = Ho * Wo;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (N == 0 || O == 0 || P == 0) return SVDC_OK;
    const int threads = omp_get_max_threads();
    /* The weight as one A-panel matrix (O, C*kh*kw), packed at load (not for 3x3 Winograd shapes: see below). */
    const svdc_packed_weight *pw = K ? svdc_packed_find(wd, SVDC_PACKED_CONV) : NULL;

    if (kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && Ho == H && Wo == W) {
        /* 1x1: y[n][:, c0:c1] (O, cols) = w (O, C) · x[n][:, c0:c1] (C, cols), tasks over (image, column block). */
        int64_t chunk = (N * P + 2 * threads - 1) / (2 * threads);
        if (chunk < MIN_TASK_COLS) chunk = MIN_TASK_COLS;
        chunk = (chunk + 15) / 16 * 16;
        const int64_t per = (P + chunk - 1) / chunk;
        const size_t mark = svdc_arena_mark(ctx->arena);
        float *scratch = NULL;
        if (pw && !(scratch = svdc_arena_alloc(ctx->arena, (size_t)threads * SVDC_PGEMM_SCRATCH * sizeof(float))))
            return SVDC_ERR_MEMORY;
        const svdc_pgemm_epilogue with_bias = {.accumulate = 0, .bias = bd};
#pragma omp parallel for schedule(dynamic, 1) if (N * per > 1) num_threads(threads)
        for (int64_t task = 0; task < N * per; task++) {
            const int64_t n = task / per, c0 = (task % per) * chunk, c1 = c0 + chunk < P ? c0 + chunk : P;
            float *yn = yd + n * O * P;
            if (pw) { /* the bias added in the GEMM's store */
                svdc_pgemm_wa(O, c1 - c0, C, pw->data, xd + n * C * P + c0, P, yn + c0, P, &with_bias,
                              scratch + (size_t)omp_get_thread_num() * SVDC_PGEMM_SCRATCH);
                continue;
            }
            init_cols(yn, bd, O, P, c0, c1);
            if (C) svdc_sgemm(0, 0, O, c1 - c0, C, 1.0f, wd, C, xd + n * C * P + c0, P, 1.0f, yn + c0, P);
        }
        svdc_arena_release(ctx->arena, mark);
        return SVDC_OK;
    }

    if (kh == 3 && kw == 3 && sh == 1 && sw == 1 && C >= SVDC_WINOGRAD_MIN_CHANNELS && O >= SVDC_WINOGRAD_MIN_CHANNELS)
        return conv3x3_winograd(ctx, xd, wd, bd, N, C, H, W, O, Ho, Wo, pt, pl, yd);

    /* Tasks of whole output rows of one image, each with its own im2col buffer (at most IM2COL_BUDGET floats). */
    int64_t rows = IM2COL_BUDGET / (K * Wo > 0 ? K * Wo : 1);
    const int64_t balanced = (N * Ho + 2 * threads - 1) / (2 * threads); /* >= 2 tasks per thread when possible */
    if (rows > balanced) rows = balanced;
    if (rows * Wo < MIN_TASK_COLS) rows = (MIN_TASK_COLS + Wo - 1) / Wo;
    if (rows * K * Wo > IM2COL_BUDGET) rows = IM2COL_BUDGET / (K * Wo);
    if (rows < 1) rows = 1;
    if (rows > Ho) rows = Ho;
    const int64_t per = (Ho + rows - 1) / rows, tasks = N * per;
    const int nbuf = tasks < threads ? (int)tasks : threads;
    /* The weight in A panels: packed at load, else packed here when it is not large (the same results either way;
     * a large one, e.g. a stride-2 3x3 conv whose weight loading packed for Winograd, goes to OpenBLAS). */
    const size_t mark = svdc_arena_mark(ctx->arena);
    const float *wpanels = pw ? pw->data : NULL;
    if (!wpanels && K && O * K <= IM2COL_WEIGHT_PACK_MAX) {
        float *packed = svdc_arena_alloc(ctx->arena, svdc_packed_matrix_floats(O, K, SVDC_PACK_MR) * sizeof(float));
        if (!packed) return SVDC_ERR_MEMORY;
        svdc_pack_a_panels(wd, O, K, packed);
        wpanels = packed;
    }
    /* per thread: the im2col buffer, then (with panels) the packed-GEMM scratch */
    const size_t per_thread = (size_t)((K * rows * Wo + 15) / 16 * 16) + (wpanels ? SVDC_PGEMM_SCRATCH : 0);
    float *cols_all = svdc_arena_alloc(ctx->arena, per_thread * (size_t)nbuf * sizeof(float));
    if (!cols_all) {
        svdc_arena_release(ctx->arena, mark);
        return SVDC_ERR_MEMORY;
    }
    const svdc_pgemm_epilogue with_bias = {.accumulate = 0, .bias = bd};
#pragma omp parallel num_threads(nbuf)
    {
        float *col = cols_all + (size_t)omp_get_thread_num() * per_thread;
        float *gemm_buf = col + (K * rows * Wo + 15) / 16 * 16;
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            const int64_t n = task / per, oh0 = (task % per) * rows;
            const int64_t nr = Ho - oh0 < rows ? Ho - oh0 : rows, cols = nr * Wo;
            float *yn = yd + n * O * P;
            im2col_rows(xd + n * C * H * W, C, H, W, kh, kw, sh, sw, pt, pl, Wo, oh0, nr, col);
            /* y[n][:, oh0*Wo : oh0*Wo + cols] = w (O, K) · col (K, cols) + bias */
            if (wpanels) {
                svdc_pgemm_wa(O, cols, K, wpanels, col, cols, yn + oh0 * Wo, P, &with_bias, gemm_buf);
            } else {
                init_cols(yn, bd, O, P, oh0 * Wo, oh0 * Wo + cols);
                svdc_sgemm(0, 0, O, cols, K, 1.0f, wd, K, col, cols, 1.0f, yn + oh0 * Wo, P);
            }
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(conv_temporal)(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                   const svdc_tensor *b, svdc_tensor *y) {
    const int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2] * x->shape[3], O = w->shape[0];
    const int64_t F = num_frames;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    if (N == 0 || O == 0 || S == 0) return SVDC_OK;
    const int threads = omp_get_max_threads();
    /* The three taps packed at load (pgemm.h); else w (O, C, 3) -> wk (3, O, C) so each tap is a plain row-major
     * (O, C) matrix for SGEMM. */
    const svdc_packed_weight *pw = C ? svdc_packed_find(wd, SVDC_PACKED_TEMPORAL) : NULL;
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *wk = NULL, *scratch = NULL;
    if (pw) {
        if (!(scratch = svdc_arena_alloc(ctx->arena, (size_t)threads * SVDC_PGEMM_SCRATCH * sizeof(float))))
            return SVDC_ERR_MEMORY;
    } else {
        if (!(wk = svdc_arena_alloc(ctx->arena, (size_t)(3 * O * C + 1) * sizeof(float)))) return SVDC_ERR_MEMORY;
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t k = 0; k < 3; k++) wk[(k * O + o) * C + c] = wd[(o * C + c) * 3 + k];
    }
    /* Tasks over (row n = b*F + f, column block of the S positions). */
    int64_t chunk = (N * S + 2 * threads - 1) / (2 * threads);
    if (chunk < MIN_TASK_COLS) chunk = MIN_TASK_COLS;
    chunk = (chunk + 15) / 16 * 16;
    const int64_t per = (S + chunk - 1) / chunk;
    const svdc_pgemm_epilogue with_bias = {.accumulate = 0, .bias = bd}, accumulate = {.accumulate = 1, .bias = NULL};
#pragma omp parallel for schedule(dynamic, 1) if (N * per > 1) num_threads(threads)
    for (int64_t task = 0; task < N * per; task++) {
        const int64_t n = task / per, c0 = (task % per) * chunk, c1 = c0 + chunk < S ? c0 + chunk : S;
        const int64_t f = n % F;
        float *yn = yd + n * O * S;
        if (!pw) init_cols(yn, bd, O, S, c0, c1);
        if (!C) continue;
        /* y[b, f][:, c0:c1] = bias + sum of w_k (O, C) · x[b, f + k - 1][:, c0:c1] over the taps whose frame exists
         * (k = 1 always does: packed, the first existing tap's GEMM adds the bias in its store, the others
         * accumulate, in tap order as OpenBLAS's path does). */
        int first = 1;
        for (int64_t k = 0; k < 3; k++) {
            const int64_t src = f + k - 1;
            if (src < 0 || src >= F) continue;
            const float *xk = xd + (n + k - 1) * C * S + c0;
            if (pw)
                svdc_pgemm_wa(O, c1 - c0, C, pw->data + k * pw->mat_stride, xk, S, yn + c0, S,
                              first ? &with_bias : &accumulate,
                              scratch + (size_t)omp_get_thread_num() * SVDC_PGEMM_SCRATCH);
            else
                svdc_sgemm(0, 0, O, c1 - c0, C, 1.0f, wk + k * O * C, C, xk, S, 1.0f, yn + c0, S);
            first = 0;
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}
