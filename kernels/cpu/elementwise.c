/* elementwise.c — pointwise CPU kernels: GELU/GEGLU (exact erf), SiLU, axpby, mul, broadcast bias adds, fill, copy,
 * finiteness checks, dtype conversion f32 <-> f16 <-> bf16 (round-to-nearest-even) and the sinusoidal embedding. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "vmath.h"

/* Below this many elements a loop runs on one thread (thread start-up costs more than the work). */
#define PARALLEL_MIN 32768

/* y = fn(x) elementwise over blocks of 4096, the blocks spread over threads for large tensors. */
static void map_blocks(void (*fn)(const float *, float *, int64_t), const svdc_tensor *x, svdc_tensor *y) {
    const int64_t n = svdc_tensor_numel(x), block = 4096;
    const int64_t nblocks = (n + block - 1) / block;
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        const int64_t i0 = bi * block, len = n - i0 < block ? n - i0 : block;
        fn(xd + i0, yd + i0, len);
    }
}

svdc_status SVDC_CPU_KERNEL(gelu)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    map_blocks(svdc_vgelu, x, y);
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(silu)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    map_blocks(svdc_vsilu, x, y);
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(geglu)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    const int64_t two_n = x->shape[x->ndim - 1], n = two_n / 2;
    const int64_t rows = n ? svdc_tensor_numel(y) / n : 0;
    const float *xd = x->data;
    float *yd = y->data;
    /* x row = [a (n) | gate (n)] -> y row = a * gelu(gate) */
#pragma omp parallel for schedule(static) if (rows * n > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = xd + r * two_n;
        svdc_vgeglu(a, a + n, yd + r * n, n);
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(axpby)(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta, const svdc_tensor *b,
                           svdc_tensor *y) {
    (void)ctx;
    const int64_t n = svdc_tensor_numel(a);
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    if (beta == 0.0f) { /* scale: b is not read, so Inf/NaN in b cannot leak in as 0 * Inf */
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) yd[i] = alpha * ad[i];
    } else if (alpha == 1.0f && beta == 1.0f) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
    } else {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) yd[i] = alpha * ad[i] + beta * bd[i];
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(mul)(const svdc_ctx *ctx, const svdc_tensor *a, const svdc_tensor *b, svdc_tensor *y) {
    (void)ctx;
    const int64_t n = svdc_tensor_numel(a);
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = ad[i] * bd[i];
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(add_channel_bias)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                      svdc_tensor *y) {
    (void)ctx;
    const int64_t NC = x->shape[0] * x->shape[1];
    const int64_t S = NC ? svdc_tensor_numel(x) / NC : 0;
    const float *xd = x->data, *bd = bias->data;
    float *yd = y->data;
    /* x (N, C, S) viewed as (N*C) rows of S; bias (N, C) gives one value per row. */
#pragma omp parallel for schedule(static) if (NC * S > PARALLEL_MIN)
    for (int64_t r = 0; r < NC; r++) {
        const float v = bd[r];
        const float *in = xd + r * S;
        float *out = yd + r * S;
        for (int64_t i = 0; i < S; i++) out[i] = in[i] + v;
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(add_token_bias)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *v, svdc_tensor *y) {
    (void)ctx;
    const int64_t N = x->shape[0], L = x->shape[1], C = x->shape[2];
    const float *xd = x->data, *vd = v->data;
    float *yd = y->data;
    /* x (N, L, C) viewed as (N*L) tokens of C; token t of row n gets v[n]. */
#pragma omp parallel for schedule(static) if (N * L * C > PARALLEL_MIN)
    for (int64_t t = 0; t < N * L; t++) {
        const float *vr = vd + (t / (L ? L : 1)) * C, *in = xd + t * C;
        float *out = yd + t * C;
        for (int64_t c = 0; c < C; c++) out[c] = in[c] + vr[c];
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(fill)(const svdc_ctx *ctx, svdc_tensor *y, float value) {
    (void)ctx;
    const int64_t n = svdc_tensor_numel(y);
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = value;
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(copy)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    const size_t bytes = svdc_tensor_bytes(x);
    if (bytes) memcpy(y->data, x->data, bytes);
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(check_finite)(const svdc_ctx *ctx, const svdc_tensor *x, int *all_finite) {
    (void)ctx;
    const int64_t n = svdc_tensor_numel(x);
    const float *xd = x->data;
    int bad = 0;
    /* x - x is 0 for finite x and NaN for NaN/Inf; OR-ing a flag keeps the loop branch-free and vectorisable. */
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) bad |= (xd[i] - xd[i]) != 0.0f || xd[i] != xd[i];
    *all_finite = !bad;
    return SVDC_OK;
}

/* ---- dtype conversion (bit-exact, round-to-nearest-even; NaN stays NaN (quiet), Inf stays Inf) ---- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: m * 2^-24 is exact in float32 */
        float v = (float)m * 5.9604644775390625e-8f;
        return bits_f32(sign | f32_bits(v));
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13)); /* Inf / NaN (payload kept) */
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

static inline uint16_t f32_to_f16(float f) {
    const uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf, or NaN made quiet with its top payload bits */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds (ties-to-even) to Inf */
    if (ax < 0x38800000u) {
        /* Result is subnormal or zero: adding 0.5 puts the f16 subnormal unit (2^-24) at float32's last mantissa
         * bit, so the FPU's own round-to-nearest-even does the rounding. */
        const float v = bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (f32_bits(v) - 0x3f000000u));
    }
    /* Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even. */
    const uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd;
    return (uint16_t)(sign | (ax >> 13));
}

static inline float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static inline float load_as_f32(const void *p, svdc_dtype dt, int64_t i) {
    switch (dt) {
    case SVDC_DTYPE_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    case SVDC_DTYPE_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

svdc_status SVDC_CPU_KERNEL(convert)(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    (void)ctx;
    const int64_t n = svdc_tensor_numel(x);
    const svdc_dtype from = x->dtype, to = y->dtype;
    if (from == to) {
        if (x->data != y->data && n) memcpy(y->data, x->data, svdc_tensor_bytes(x));
        return SVDC_OK;
    }
    /* f16 -> f32 is exact, so f16 <-> bf16 through f32 rounds once. */
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float v = load_as_f32(x->data, from, i);
        switch (to) {
        case SVDC_DTYPE_F16: ((uint16_t *)y->data)[i] = f32_to_f16(v); break;
        case SVDC_DTYPE_BF16: ((uint16_t *)y->data)[i] = f32_to_bf16(v); break;
        default: ((float *)y->data)[i] = v; break;
        }
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(timestep_embedding)(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y) {
    (void)ctx;
    const int64_t N = t->shape[0];
    const int half = dim / 2;
    const float *td = t->data;
    float *yd = y->data;
    /* As diffusers' get_timestep_embedding computes it in float32: exponent = (-ln(10000) * arange(half)) / half,
     * freq = exp(exponent), arg = t * freq; then [cos(arg), sin(arg)] (flip_sin_to_cos) and a zero pad column for
     * an odd dim. exp/sin/cos are evaluated in double and rounded once (correctly rounded up to rare ties). */
    const float neg_log_period = (float)(-log(10000.0));
    for (int64_t i = 0; i < N; i++) {
        float *row = yd + i * dim;
        for (int k = 0; k < half; k++) {
            const float exponent = (neg_log_period * (float)k) / (float)half;
            const float freq = (float)exp((double)exponent);
            const float arg = td[i] * freq;
            row[k] = (float)cos((double)arg);
            row[half + k] = (float)sin((double)arg);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
    return SVDC_OK;
}
