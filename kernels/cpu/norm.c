/* norm.c — group norm (per frame or pooled over the frames of a video, optional per-(row, channel) bias added first,
 * optional fused SiLU) and layer norm on the CPU. Statistics accumulate in double around a shift (the group's first
 * element), so the variance keeps its precision even when |mean| >> std; the biased variance is used (divide by
 * count), as torch does. Each group / row is normalised by one thread in a fixed order, so the result does not depend
 * on the thread count. */
#include <math.h>

#include "kernels.h"
#include "vmath.h"

/* Sum and sum of squares of (v[i] - shift) in double, where v[i] = x[i], or with `add` the float32 sum x[i] + add[i / S]
 * (one added value per plane of S): float partial sums over blocks of at most 512 values (64 per SIMD lane) are folded
 * into double, which keeps the loop vectorised and the error far below 1e-6. The grouping of the partial sums does
 * not depend on `add`, so a fused bias gives the same bits as adding it first. */
static inline void shifted_moments(const float *x, int64_t n, const float *add, int64_t S, float shift, double *sum,
                                   double *sumsq) {
    double s = 0.0, q = 0.0;
    int64_t i = 0;
#ifdef SVDC_HAVE_AVX2
    const __m256 sh = _mm256_set1_ps(shift);
    while (i + 8 <= n) {
        const int64_t end = n - i < 512 ? n : i + 512;
        __m256 as = _mm256_setzero_ps(), aq = _mm256_setzero_ps();
        for (; i + 8 <= end; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            if (add) {
                if (i / S == (i + 7) / S) {
                    v = _mm256_add_ps(v, _mm256_set1_ps(add[i / S]));
                } else { /* the 8 values straddle planes */
                    float a8[8];
                    for (int j = 0; j < 8; j++) a8[j] = add[(i + j) / S];
                    v = _mm256_add_ps(v, _mm256_loadu_ps(a8));
                }
            }
            const __m256 d = _mm256_sub_ps(v, sh);
            as = _mm256_add_ps(as, d);
            aq = _mm256_fmadd_ps(d, d, aq);
        }
        float ls[8], lq[8];
        _mm256_storeu_ps(ls, as);
        _mm256_storeu_ps(lq, aq);
        for (int j = 0; j < 8; j++) {
            s += ls[j];
            q += lq[j];
        }
    }
#endif
    for (; i < n; i++) {
        const float v = add ? x[i] + add[i / S] : x[i];
        const double d = (double)v - (double)shift;
        s += d;
        q += d * d;
    }
    *sum += s;
    *sumsq += q;
}

svdc_status SVDC_CPU_KERNEL(group_norm)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias,
                                        int num_groups, int frames, const svdc_tensor *gamma, const svdc_tensor *beta,
                                        float eps, int apply_silu, svdc_tensor *y) {
    (void)ctx;
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t G = num_groups, Cg = C / G, videos = N / frames;
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    const float *add = bias ? bias->data : NULL; /* (N, C): one value per plane */
    float *yd = y->data;
    /* x (videos*frames, C, S): group g of video v spans, for each of its frames, the contiguous block
     * x[v*frames + f, g*Cg : (g+1)*Cg, :] of Cg*S values. */
    const int64_t block = Cg * S, count = block * frames;
    if (count == 0) return SVDC_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t vg = 0; vg < videos * G; vg++) {
        const int64_t v = vg / G, g = vg % G;
        const float *first = xd + (v * frames * C + g * Cg) * S;
        const float shift = add ? first[0] + add[v * frames * C + g * Cg] : first[0];
        double sum = 0.0, sumsq = 0.0;
        for (int64_t f = 0; f < frames; f++) { /* frame f's block of the group: Cg planes of S values */
            const int64_t plane = (v * frames + f) * C + g * Cg;
            shifted_moments(xd + plane * S, block, add ? add + plane : NULL, S, shift, &sum, &sumsq);
        }
        const double mean_shifted = sum / (double)count;
        double var = sumsq / (double)count - mean_shifted * mean_shifted;
        if (var < 0.0) var = 0.0;
        const double mean = (double)shift + mean_shifted;
        const float rstd = (float)(1.0 / sqrt(var + (double)eps));
        /* The mean as hi + lo floats: x - hi is exact when x is near the mean (Sterbenz), so y = ((x - hi) - lo) * a + b
         * keeps full precision even when |mean| >> std (x * a - mean * a would cancel catastrophically). */
        const float mean_hi = (float)mean, mean_lo = (float)(mean - (double)mean_hi);
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                const float a = rstd * (gd ? gd[c] : 1.0f), b = bd ? bd[c] : 0.0f;
                const int64_t plane = (v * frames + f) * C + c, off = plane * S;
                const float *in = xd + off;
                float *out = yd + off;
                if (add) {
                    const float pb = add[plane];
                    for (int64_t i = 0; i < S; i++) out[i] = (((in[i] + pb) - mean_hi) - mean_lo) * a + b;
                } else {
                    for (int64_t i = 0; i < S; i++) out[i] = ((in[i] - mean_hi) - mean_lo) * a + b;
                }
                if (apply_silu) svdc_vsilu(out, out, S);
            }
        }
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(layer_norm)(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                                const svdc_tensor *beta, float eps, svdc_tensor *y) {
    (void)ctx;
    const int64_t D = x->shape[x->ndim - 1], rows = svdc_tensor_numel(x) / D;
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (rows * D > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *in = xd + r * D;
        float *out = yd + r * D;
        double sum = 0.0, sumsq = 0.0;
        shifted_moments(in, D, NULL, 1, in[0], &sum, &sumsq);
        const double ms = sum / (double)D;
        double var = sumsq / (double)D - ms * ms;
        if (var < 0.0) var = 0.0;
        const double mean = (double)in[0] + ms;
        const float mean_hi = (float)mean, mean_lo = (float)(mean - (double)mean_hi); /* see group norm */
        const float rstd = (float)(1.0 / sqrt(var + (double)eps));
        for (int64_t i = 0; i < D; i++)
            out[i] = ((in[i] - mean_hi) - mean_lo) * rstd * (gd ? gd[i] : 1.0f) + (bd ? bd[i] : 0.0f);
    }
    return SVDC_OK;
}
