/* norm_chunked.c — the two halves of a group norm on the CPU (ops.h: group_norm_moments, group_norm_apply), for
 * statistics gathered over chunks of a tensor. Moments accumulate in double around a shift (the group's first
 * value) from float partials over short blocks, as norm.c does, so m2 keeps its precision when |mean| >> std. */
#include <math.h>

#include "kernels.h"
#include "vmath.h"

/* Sum and sum of squares of (x[i] - shift) in double, from 8-lane float partials over blocks of 512 values (the
 * lanes are independent, so the compiler vectorises the inner loop without reassociating). */
static void shifted_sums(const float *x, int64_t n, float shift, double *sum, double *sumsq) {
    double s = 0.0, q = 0.0;
    int64_t i = 0;
    while (i + 8 <= n) {
        const int64_t end = n - i < 512 ? n : i + 512;
        float ls[8] = {0}, lq[8] = {0};
        for (; i + 8 <= end; i += 8)
            for (int j = 0; j < 8; j++) {
                const float d = x[i + j] - shift;
                ls[j] += d;
                lq[j] += d * d;
            }
        for (int j = 0; j < 8; j++) {
            s += ls[j];
            q += lq[j];
        }
    }
    for (; i < n; i++) {
        const double d = (double)x[i] - (double)shift;
        s += d;
        q += d * d;
    }
    *sum += s;
    *sumsq += q;
}

svdc_status SVDC_CPU_KERNEL(group_norm_moments)(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups,
                                                int frames, svdc_tensor *moments) {
    (void)ctx;
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t G = num_groups, Cg = C / G, videos = N / frames, block = Cg * S, count = block * frames;
    const float *xd = x->data;
    float *md = moments->data;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t vg = 0; vg < videos * G; vg++) {
        const int64_t v = vg / G, g = vg % G;
        /* group g of video v: for each frame f the contiguous block x[v*frames + f, g*Cg : (g+1)*Cg, :] */
        const float *first = xd + (v * frames * C + g * Cg) * S;
        const float shift = count ? first[0] : 0.0f;
        double sum = 0.0, sumsq = 0.0;
        for (int64_t f = 0; f < frames; f++) shifted_sums(first + f * C * S, block, shift, &sum, &sumsq);
        const double ms = count ? sum / (double)count : 0.0;
        double m2 = sumsq - ms * sum;
        if (m2 < 0.0) m2 = 0.0;
        const double mean = (double)shift + ms;
        const float hi = (float)mean;
        md[vg * 3 + 0] = hi;
        md[vg * 3 + 1] = (float)(mean - (double)hi);
        md[vg * 3 + 2] = (float)m2;
    }
    return SVDC_OK;
}

svdc_status SVDC_CPU_KERNEL(group_norm_apply)(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                              const svdc_tensor *stats, const svdc_tensor *gamma,
                                              const svdc_tensor *beta, int apply_silu, svdc_tensor *y) {
    (void)ctx;
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = (N && C) ? svdc_tensor_numel(x) / (N * C) : 0;
    const int64_t Cg = C / num_groups;
    const float *xd = x->data, *st = stats->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *yd = y->data;
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
    for (int64_t plane = 0; plane < N * C; plane++) {
        const int64_t n = plane / C, c = plane % C;
        const float *s = st + ((n / frames) * num_groups + c / Cg) * 3;
        /* ((x - hi) - lo): x - hi is exact near the mean (see norm.c) */
        const float hi = s[0], lo = s[1], a = s[2] * (gd ? gd[c] : 1.0f), b = bd ? bd[c] : 0.0f;
        const float *in = xd + plane * S;
        float *out = yd + plane * S;
        for (int64_t i = 0; i < S; i++) out[i] = ((in[i] - hi) - lo) * a + b;
        if (apply_silu) svdc_vsilu(out, out, S);
    }
    return SVDC_OK;
}
