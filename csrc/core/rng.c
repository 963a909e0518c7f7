/* rng.c — torch-compatible mt19937 and float32 normal sampling (see rng.h for the two layouts).
 * Every float operation below is its own statement or an explicit fmaf, and contraction is off, so the rounding is
 * exactly that of torch's compiled vector code (verified bit for bit against torch 2.13's CPU build). */
#include "rng.h"

#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UMASK 0x80000000u
#define MT_LMASK 0x7fffffffu

void svdc_generator_seed(svdc_generator *g, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu); /* torch: init_with_uint32 keeps the low 32 bits */
    for (int j = 1; j < SVDC_MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + (uint32_t)j;
    g->left = 1;
    g->next = 0;
    g->has_cached_normal = 0;
}

static uint32_t twist(uint32_t u, uint32_t v) {
    uint32_t mixed = (u & MT_UMASK) | (v & MT_LMASK);
    return (mixed >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void next_state(svdc_generator *g) {
    uint32_t *p = g->state;
    g->left = SVDC_MT_N;
    g->next = 0;
    for (int j = 0; j < SVDC_MT_N - MT_M; j++) p[j] = p[j + MT_M] ^ twist(p[j], p[j + 1]);
    for (int j = SVDC_MT_N - MT_M; j < SVDC_MT_N - 1; j++) p[j] = p[j + MT_M - SVDC_MT_N] ^ twist(p[j], p[j + 1]);
    p[SVDC_MT_N - 1] = p[MT_M - 1] ^ twist(p[SVDC_MT_N - 1], p[0]);
}

uint32_t svdc_generator_random(svdc_generator *g) {
    if (--g->left == 0) next_state(g);
    uint32_t y = g->state[g->next++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

uint64_t svdc_generator_random64(svdc_generator *g) {
    uint32_t hi = svdc_generator_random(g);
    uint32_t lo = svdc_generator_random(g);
    return ((uint64_t)hi << 32) | lo;
}

/* at::uniform_real_distribution<float>(0, 1): 24 random bits scaled by 2^-24. */
static float uniform_f32(svdc_generator *g) {
    uint32_t v = svdc_generator_random(g) & ((1u << 24) - 1u);
    return (float)v * (1.0f / 16777216.0f);
}

/* at::uniform_real_distribution<double>(0, 1): 53 random bits of random64 scaled by 2^-53. */
static double uniform_f64(svdc_generator *g) {
    uint64_t v = svdc_generator_random64(g) & ((UINT64_C(1) << 53) - 1u);
    return (double)v * (1.0 / 9007199254740992.0);
}

static uint32_t f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* log256_ps of avx_mathfun.h (Cephes logf), one lane; x > 0. torch's build lets the compiler fuse each vector
 * multiply whose only use is an add into an FMA; the fmaf calls below reproduce exactly those fusions. */
static float mathfun_log(float x) {
    const float one = 1.0f;
    if (x < u2f(0x00800000u)) x = u2f(0x00800000u); /* max(x, min_norm_pos) */
    int32_t imm0 = (int32_t)(f2u(x) >> 23);
    x = u2f((f2u(x) & ~0x7f800000u) | f2u(0.5f)); /* keep the mantissa, exponent of 0.5 */
    imm0 = imm0 - 0x7f;
    float e = (float)imm0;
    e = e + one;
    int mask = x < (float)0.707106781186547524;
    float tmp = mask ? x : 0.0f;
    x = x - one;
    e = e - (mask ? one : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = fmaf((float)7.0376836292E-2, x, (float)-1.1514610310E-1);
    y = fmaf(y, x, (float)1.1676998740E-1);
    y = fmaf(y, x, (float)-1.2420140846E-1);
    y = fmaf(y, x, (float)1.4249322787E-1);
    y = fmaf(y, x, (float)-1.6668057665E-1);
    y = fmaf(y, x, (float)2.0000714765E-1);
    y = fmaf(y, x, (float)-2.4999993993E-1);
    y = fmaf(y, x, (float)3.3333331174E-1);
    y = y * x;
    tmp = e * (float)-2.12194440e-4;
    y = fmaf(y, z, tmp);          /* y*z + e*q1 */
    y = fmaf(-z, 0.5f, y);        /* y - z*0.5 */
    x = x + y;
    x = fmaf(e, (float)0.693359375, x); /* x + e*q2 */
    return x;
}

/* sincos256_ps of avx_mathfun.h (Cephes sinf/cosf), one lane, with the same FMA fusions as torch's build. */
static void mathfun_sincos(float x, float *s, float *c) {
    uint32_t sign_bit_sin = f2u(x) & 0x80000000u;
    x = u2f(f2u(x) & 0x7fffffffu);
    float y = x * (float)1.27323954473516;
    int32_t imm2 = (int32_t)y; /* cvttps: truncation */
    imm2 = imm2 + 1;
    imm2 = imm2 & ~1;
    y = (float)imm2;
    int32_t imm4 = imm2;
    uint32_t swap_sign_bit_sin = ((uint32_t)imm2 & 4u) << 29;
    int poly_mask = (imm2 & 2) == 0;
    /* extended precision modular arithmetic: x = ((x - y*DP1) - y*DP2) - y*DP3 */
    x = fmaf(y, (float)-0.78515625, x);
    x = fmaf(y, (float)-2.4187564849853515625e-4, x);
    x = fmaf(y, (float)-3.77489497744594108e-8, x);
    imm4 = imm4 - 2;
    uint32_t sign_bit_cos = ((uint32_t)(~imm4) & 4u) << 29;
    sign_bit_sin ^= swap_sign_bit_sin;
    float z = x * x;
    y = fmaf((float)2.443315711809948E-005, z, (float)-1.388731625493765E-003);
    y = fmaf(y, z, (float)4.166664568298827E-002);
    y = y * z;
    float tmp = z * 0.5f;
    y = fmaf(y, z, -tmp); /* y*z - z*0.5 */
    y = y + 1.0f;
    float y2 = fmaf((float)-1.9515295891E-4, z, (float)8.3321608736E-3);
    y2 = fmaf(y2, z, (float)-1.6666654611E-1);
    y2 = y2 * z;
    y2 = fmaf(y2, x, x);
    float ysin2 = poly_mask ? y2 : 0.0f;
    float ysin1 = poly_mask ? 0.0f : y;
    y2 = y2 - ysin2;
    y = y - ysin1;
    float xmm1 = ysin1 + ysin2;
    float xmm2 = y + y2;
    *s = u2f(f2u(xmm1) ^ sign_bit_sin);
    *c = u2f(f2u(xmm2) ^ sign_bit_cos);
}

/* NormalFill16<float> of torch's AVX2 build (mean 0, std 1) on 16 uniforms in place: element j pairs with j + 8. */
static void normal_fill_16(float *data) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j]; /* [0, 1) -> (0, 1] for the log */
        float u2 = data[j + 8];
        float lg = mathfun_log(u1);
        float m2lg = -2.0f * lg;
        float radius = sqrtf(m2lg);
        float theta = two_pi * u2;
        float s, c;
        mathfun_sincos(theta, &s, &c);
        float n1 = radius * c;
        float n2 = radius * s;
        data[j] = fmaf(n1, 1.0f, 0.0f); /* _mm256_fmadd_ps(n, std, mean) */
        data[j + 8] = fmaf(n2, 1.0f, 0.0f);
    }
}

/* at::normal_distribution<double>(0, 1) with the generator's cached second sample. */
static double normal_f64(svdc_generator *g) {
    if (g->has_cached_normal) {
        g->has_cached_normal = 0;
        double r = g->cached_normal;
        double scaled = r * 1.0;
        return scaled + 0.0;
    }
    double u1 = uniform_f64(g);
    double u2 = uniform_f64(g);
    double lg = log1p(-u2);
    double m2lg = -2.0 * lg;
    double r = sqrt(m2lg);
    double theta = 2.0 * 3.14159265358979323846 * u1;
    double sample = r * sin(theta);
    g->cached_normal = sample;
    g->has_cached_normal = 1;
    double ret = r * cos(theta);
    double scaled = ret * 1.0;
    return scaled + 0.0;
}

svdc_status svdc_generator_randn(svdc_generator *g, float *out, int64_t n) {
    if (!g) return svdc_fail(SVDC_ERR_ARGUMENT, "randn: generator is NULL");
    if (n < 0) return svdc_fail(SVDC_ERR_ARGUMENT, "randn: element count must be >= 0, got %lld", (long long)n);
    if (n > 0 && !out) return svdc_fail(SVDC_ERR_ARGUMENT, "randn: output is NULL");
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)normal_f64(g);
        return SVDC_OK;
    }
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f32(g);
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
    if (n % 16 != 0) {
        /* torch redraws the last 16 values (overlapping the last full chunk) */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(g);
        normal_fill_16(tail);
    }
    return SVDC_OK;
}
