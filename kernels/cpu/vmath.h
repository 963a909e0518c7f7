/* vmath.h — vectorised exp for the CPU kernels (AVX2 + FMA when the build enables them, a scalar loop otherwise):
 * Cephes-style range reduction + degree-5 polynomial, about 2 ulp over the float range; inputs below -87.3 give 0
 * (so -INFINITY masks work), above 88.7 give +Inf. Used by softmax, SiLU and the fused norm+SiLU. */
#ifndef SVDC_CPU_VMATH_H
#define SVDC_CPU_VMATH_H

#include <math.h>
#include <stdint.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SVDC_HAVE_AVX2 1

static inline __m256 svdc_exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    const __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    /* x = n ln2 + r, |r| <= ln2/2; ln2 split in two parts so n*ln2 is exact enough. */
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n through the exponent bits; n = -127 gives 0 (the clamp keeps n >= -127). */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), overflow);
    return _mm256_blendv_ps(y, _mm256_set1_ps(NAN), nan);
}
#endif

/* y[i] = exp(x[i]) for i < n (x == y allowed). */
static inline void svdc_vexp(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef SVDC_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, svdc_exp256(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = expf(x[i]);
}

/* y[i] = x[i] * sigmoid(x[i]) = x / (1 + exp(-x)) (x == y allowed). */
static inline void svdc_vsilu(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef SVDC_HAVE_AVX2
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 d = _mm256_add_ps(one, svdc_exp256(_mm256_xor_ps(v, sign)));
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, d));
    }
#endif
    for (; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}


/* sum_i a[i] * b[i] in float (8 lanes, then a horizontal sum). */
static inline float svdc_dot(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#ifdef SVDC_HAVE_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
/* max_i x[i] (-INFINITY for n = 0; NaN-free input assumed, as scores are). */
static inline float svdc_vmax(const float *x, int64_t n) {
    int64_t i = 0;
    float m = -INFINITY;
#ifdef SVDC_HAVE_AVX2
    if (n >= 8) {
        __m256 acc = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + i));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        m = _mm_cvtss_f32(h);
    }
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[i] = exp(x[i] - shift) in place; returns the sum of the new values (the softmax denominator). */
static inline float svdc_vexp_shift_sum(float *x, int64_t n, float shift) {
    int64_t i = 0;
    float s = 0.0f;
#ifdef SVDC_HAVE_AVX2
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 e = svdc_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    for (; i < n; i++) {
        x[i] = expf(x[i] - shift);
        s += x[i];
    }
    return s;
}

#ifdef SVDC_HAVE_AVX2
/* Exact-erf GELU, 0.5 x (1 + erf(x / sqrt 2)), through erfc(|z|) (Numerical Recipes' erfcc: relative error below
 * 1.2e-7 for every z >= 0): 1 + erf(z) = erfc(|z|) for z < 0 (no cancellation for negative x) and 2 - erfc(z) else. */
static inline __m256 svdc_gelu256(__m256 x) {
    const __m256 az = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), az, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    p = _mm256_fnmadd_ps(az, az, p); /* -z^2 - 1.26551223 + t * (...) */
    const __m256 erfc = _mm256_mul_ps(t, svdc_exp256(p));
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 one_plus_erf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc), erfc, neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), one_plus_erf);
}
#endif

static inline float svdc_gelu1(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

/* y[i] = gelu(x[i]) (x == y allowed). */
static inline void svdc_vgelu(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef SVDC_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, svdc_gelu256(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = svdc_gelu1(x[i]);
}

/* y[i] = a[i] * gelu(g[i]) (GEGLU). */
static inline void svdc_vgeglu(const float *a, const float *g, float *y, int64_t n) {
    int64_t i = 0;
#ifdef SVDC_HAVE_AVX2
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), svdc_gelu256(_mm256_loadu_ps(g + i))));
#endif
    for (; i < n; i++) y[i] = a[i] * svdc_gelu1(g[i]);
}

#endif
