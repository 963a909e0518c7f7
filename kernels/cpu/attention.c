/* attention.c — multi-head attention on the CPU with a streaming (online) softmax: memory is O(block), never
 * O(Lq x Lk). Long key sequences go through SGEMM tiles (query block x key block per head); short ones (Lk <= 64:
 * temporal attention over frames, one-token cross-attention) through a direct per-query loop.
 * Layout: q (B, Lq, H*D), k/v (B, Lk, H*D), head h occupies columns [h*D, (h+1)*D) of every token. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "arena.h"
#include "blas.h"
#include "kernels.h"
#include "vmath.h"

#define DIRECT_MAX_LK 64 /* at or below: direct path */
#define BLOCK_Q 128 /* query rows per task */
#define BLOCK_K 512 /* keys per online-softmax step: S is 128 x 512 floats = 256 KiB, L2-resident */

/* One query row against all (or, causal, the first `nk`) keys of one head: scores, softmax, weighted sum. */
static void attend_row(const float *qr, const float *kh, const float *vh, int64_t E, int64_t D, int64_t nk,
                       float scale, float *scores, float *out) {
    for (int64_t j = 0; j < nk; j++) scores[j] = scale * svdc_dot(qr, kh + j * E, D);
    const float sum = svdc_vexp_shift_sum(scores, nk, svdc_vmax(scores, nk));
    for (int64_t d = 0; d < D; d++) out[d] = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
        const float pj = scores[j];
        const float *vr = vh + j * E;
        for (int64_t d = 0; d < D; d++) out[d] += pj * vr[d];
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < D; d++) out[d] *= inv;
}

static void attention_direct(const float *q, const float *k, const float *v, float *y, int64_t B, int64_t Lq,
                             int64_t Lk, int64_t H, int64_t D, float scale, int causal) {
    const int64_t E = H * D;
#pragma omp parallel for schedule(static) if (B * Lq * H * Lk * D > 65536)
    for (int64_t row = 0; row < B * Lq; row++) {
        float scores[DIRECT_MAX_LK];
        const int64_t b = row / Lq, i = row % Lq;
        const int64_t nk = causal ? i + 1 : Lk;
        for (int64_t h = 0; h < H; h++)
            attend_row(q + row * E + h * D, k + b * Lk * E + h * D, v + b * Lk * E + h * D, E, D, nk, scale,
                       scores, y + row * E + h * D);
    }
}

/* Scratch of one thread for one query block: S (bq x BLOCK_K) scores/probabilities, O (bq x D) the unnormalised
 * output, m/l the running row max and row sum. */
typedef struct tile_scratch {
    float *S, *O, *m, *l;
} tile_scratch;

/* Online softmax over key blocks for rows [q0, q0+bq) of head h of batch b. */
static void attention_block(const float *q, const float *k, const float *v, float *y, int64_t Lq, int64_t Lk,
                            int64_t E, int64_t D, float scale, int causal, int64_t b, int64_t h, int64_t q0,
                            int64_t bq, const tile_scratch *t) {
    const float *Q = q + (b * Lq + q0) * E + h * D;
    const int64_t kend = causal ? q0 + bq : Lk; /* causal: keys after the block's last query are all masked */
    for (int64_t i = 0; i < bq; i++) {
        t->m[i] = -INFINITY;
        t->l[i] = 0.0f;
    }
    memset(t->O, 0, (size_t)(bq * D) * sizeof(float));
    for (int64_t k0 = 0; k0 < kend; k0 += BLOCK_K) {
        const int64_t bk = kend - k0 < BLOCK_K ? kend - k0 : BLOCK_K;
        const float *Kb = k + (b * Lk + k0) * E + h * D, *Vb = v + (b * Lk + k0) * E + h * D;
        /* S (bq, bk) = scale * Q (bq, D) · Kbᵀ (D, bk) */
        svdc_sgemm(0, 1, bq, bk, D, scale, Q, E, Kb, E, 0.0f, t->S, bk);
        for (int64_t i = 0; i < bq; i++) {
            float *s = t->S + i * bk;
            if (causal) /* mask key k0+j > query q0+i */
                for (int64_t j = q0 + i + 1 - k0 > 0 ? q0 + i + 1 - k0 : 0; j < bk; j++) s[j] = -INFINITY;
            const float bmx = svdc_vmax(s, bk), mx = bmx > t->m[i] ? bmx : t->m[i];
            /* A row whose keys in this block are all masked keeps its state (mx stays -inf only if it was). */
            if (mx == -INFINITY) {
                for (int64_t j = 0; j < bk; j++) s[j] = 0.0f;
                continue;
            }
            const float sum = svdc_vexp_shift_sum(s, bk, mx);
            const float corr = t->m[i] == -INFINITY ? 0.0f : expf(t->m[i] - mx);
            t->l[i] = t->l[i] * corr + sum;
            t->m[i] = mx;
            if (corr != 1.0f) {
                float *o = t->O + i * D;
                for (int64_t d = 0; d < D; d++) o[d] *= corr;
            }
        }
        /* O (bq, D) += P (bq, bk) · Vb (bk, D) */
        svdc_sgemm(0, 0, bq, D, bk, 1.0f, t->S, bk, Vb, E, 1.0f, t->O, D);
    }
    for (int64_t i = 0; i < bq; i++) {
        const float inv = 1.0f / t->l[i];
        const float *o = t->O + i * D;
        float *out = y + (b * Lq + q0 + i) * E + h * D;
        for (int64_t d = 0; d < D; d++) out[d] = o[d] * inv;
    }
}

svdc_status SVDC_CPU_KERNEL(attention)(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k, const svdc_tensor *v,
                               int num_heads, float scale, int causal, svdc_tensor *y) {
    const int64_t B = q->shape[0], Lq = q->shape[1], E = q->shape[2], Lk = k->shape[1];
    const int64_t H = num_heads, D = E / H;
    const float *qd = q->data, *kd = k->data, *vd = v->data;
    float *yd = y->data;
    if (B == 0 || Lq == 0) return SVDC_OK;
    if (Lk <= DIRECT_MAX_LK) {
        attention_direct(qd, kd, vd, yd, B, Lq, Lk, H, D, scale, causal);
        return SVDC_OK;
    }
    const int64_t nqb = (Lq + BLOCK_Q - 1) / BLOCK_Q, tasks = B * H * nqb;
    const int threads = omp_get_max_threads();
    const int64_t per_thread = BLOCK_Q * BLOCK_K + BLOCK_Q * D + 2 * BLOCK_Q;
    const size_t mark = svdc_arena_mark(ctx->arena);
    float *scratch = svdc_arena_alloc(ctx->arena, (size_t)(per_thread * threads) * sizeof(float));
    if (!scratch) return SVDC_ERR_MEMORY;
    /* Threads split the (batch, head, query block) tasks; svdc_sgemm runs each tile GEMM on the calling thread. */
#pragma omp parallel if (tasks > 1)
    {
        float *base = scratch + per_thread * omp_get_thread_num();
        const tile_scratch t = {base, base + BLOCK_Q * BLOCK_K, base + BLOCK_Q * BLOCK_K + BLOCK_Q * D,
                                base + BLOCK_Q * BLOCK_K + BLOCK_Q * D + BLOCK_Q};
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            const int64_t b = task / (H * nqb), h = (task / nqb) % H, qb = task % nqb;
            const int64_t q0 = qb * BLOCK_Q, bq = Lq - q0 < BLOCK_Q ? Lq - q0 : BLOCK_Q;
            attention_block(qd, kd, vd, yd, Lq, Lk, E, D, scale, causal, b, h, q0, bq, &t);
        }
    }
    svdc_arena_release(ctx->arena, mark);
    return SVDC_OK;
}
