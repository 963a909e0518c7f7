/* prepack.c — packing weights into the GEMM panel layouts of packed.h at load, the registry the CPU kernels find
 * them in, and the per-model set of packed weights a backend's prepare_params builds (compiled once: the layouts
 * are the same for every kernel variant). */
#include "packed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "try.h"

/* ---- layouts ---- */

size_t svdc_packed_matrix_floats(int64_t rows, int64_t depth, int panel) {
    return (size_t)((rows + panel - 1) / panel * panel) * (size_t)depth;
}

/* dst (panels of `panel` rows over depth K) from a source whose element (r, k) is at src[r * rs + k * ks]. */
static void pack_panels(const float *src, int64_t rows, int64_t K, int64_t rs, int64_t ks, int panel, float *dst) {
    const int64_t panels = (rows + panel - 1) / panel;
#pragma omp parallel for schedule(static) if (rows * K > ((int64_t)1 << 18))
    for (int64_t p = 0; p < panels; p++) {
        float *d = dst + p * K * panel;
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < panel; i++) {
                const int64_t r = p * panel + i;
                d[k * panel + i] = r < rows ? src[r * rs + k * ks] : 0.0f;
            }
    }
}

void svdc_winograd_kernel(const float *g, float u[16]) {
    float t[4][3]; /* t = G g (4x3), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1] */
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) { /* u = t Gᵀ (4x4) */
        u[i * 4 + 0] = t[i][0];
        u[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[i * 4 + 3] = t[i][2];
    }
}

void svdc_pack_a_panels(const float *w, int64_t rows, int64_t K, float *dst) {
    pack_panels(w, rows, K, K, 1, SVDC_PACK_MR, dst);
}

void svdc_winograd_pack_panel(const float *w, int64_t C, int64_t o0, int64_t on, int64_t p, size_t mat_stride,
                              float *dst) {
    /* Input channels in chunks: the chunk's transforms go to buf (16, chunk, MR), then each xi's part is one
     * contiguous copy (few memory streams at a time, instead of 16 writes and MR reads far apart per kernel). */
    enum { CHUNK = 64 };
    float buf[16][CHUNK * SVDC_PACK_MR];
    for (int64_t c0 = 0; c0 < C; c0 += CHUNK) {
        const int64_t cn = C - c0 < CHUNK ? C - c0 : CHUNK;
        for (int i = 0; i < SVDC_PACK_MR; i++) {
            const int64_t r = p * SVDC_PACK_MR + i; /* row within the block */
            for (int64_t c = 0; c < cn; c++) {
                float u[16] = {0};
                if (r < on) svdc_winograd_kernel(w + ((o0 + r) * C + c0 + c) * 9, u);
                for (int xi = 0; xi < 16; xi++) buf[xi][c * SVDC_PACK_MR + i] = u[xi];
            }
        }
        for (int xi = 0; xi < 16; xi++)
            memcpy(dst + xi * mat_stride + (size_t)((p * C + c0) * SVDC_PACK_MR), buf[xi],
                   (size_t)(cn * SVDC_PACK_MR) * sizeof(float));
    }
}

/* The 16 U[xi] (O, C) matrices of a 3x3 weight (O, C, 3, 3), each in A panels. */
static void pack_winograd(const float *w, int64_t O, int64_t C, size_t mat_stride, float *dst) {
    const int64_t panels = (O + SVDC_PACK_MR - 1) / SVDC_PACK_MR;
#pragma omp parallel for schedule(static) if (O * C > 4096)
    for (int64_t p = 0; p < panels; p++) svdc_winograd_pack_panel(w, C, 0, O, p, mat_stride, dst);
}

svdc_status svdc_packed_mode(svdc_prepack_mode *mode) {
    const char *v = getenv("SVDC_PREPACK");
    if (!v || !*v || !strcmp(v, "1")) *mode = SVDC_PREPACK_DEFAULT;
    else if (!strcmp(v, "0")) *mode = SVDC_PREPACK_NONE;
    else if (!strcmp(v, "all")) *mode = SVDC_PREPACK_ALL;
    else
        return svdc_fail(SVDC_ERR_ARGUMENT, "SVDC_PREPACK: expected 0, 1 or all, got '%.40s'", v);
    return SVDC_OK;
}

/* Whether loading in `mode` packs a weight of this shape: the default packs where the packed path measured faster
 * than OpenBLAS (benchmarks/results/gemm_cpu.md): Winograd U and im2col convs (kernels larger than 1x1). */
static int packs_in_mode(svdc_prepack_mode mode, int ndim, const int64_t *shape) {
    if (mode == SVDC_PREPACK_ALL) return 1;
    return mode == SVDC_PREPACK_DEFAULT && ndim == 4 && shape[2] * shape[3] > 1;
}

svdc_status svdc_packed_create(const void *w, int ndim, const int64_t *shape, svdc_packed_weight **out) {
    *out = NULL;
    svdc_packed_weight pw = {.key = w, .mats = 1};
    int panel = SVDC_PACK_MR;
    if (ndim == 2) {
        pw.kind = SVDC_PACKED_LINEAR;
        pw.rows = shape[0];
        pw.depth = shape[1];
        panel = SVDC_PACK_NR;
    } else if (ndim == 4 && shape[2] == 3 && shape[3] == 3 && shape[0] >= SVDC_WINOGRAD_MIN_CHANNELS &&
               shape[1] >= SVDC_WINOGRAD_MIN_CHANNELS) {
        pw.kind = SVDC_PACKED_WINOGRAD;
        pw.rows = shape[0];
        pw.depth = shape[1];
        pw.mats = 16;
    } else if (ndim == 4) {
        pw.kind = SVDC_PACKED_CONV;
        pw.rows = shape[0];
        pw.depth = shape[1] * shape[2] * shape[3];
    } else if ((ndim == 5 && shape[2] == 3 && shape[3] == 1 && shape[4] == 1) || (ndim == 3 && shape[2] == 3)) {
        pw.kind = SVDC_PACKED_TEMPORAL;
        pw.rows = shape[0];
        pw.depth = shape[1];
        pw.mats = 3;
    } else {
        return SVDC_OK;
    }
    if (pw.rows <= 0 || pw.depth <= 0) return SVDC_OK;
    /* Matrices 64-byte aligned apart. */
    pw.mat_stride = (svdc_packed_matrix_floats(pw.rows, pw.depth, panel) + 15) / 16 * 16;
    const size_t bytes = pw.mat_stride * (size_t)pw.mats * sizeof(float);
    svdc_packed_weight *res = malloc(sizeof *res);
    void *data = NULL;
    if (!res || posix_memalign(&data, 64, bytes)) {
        free(res);
        return svdc_fail(SVDC_ERR_MEMORY, "prepack: cannot allocate %zu bytes for a packed weight (set SVDC_PREPACK=0 "
                         "to run without packed weights)", bytes);
    }
    pw.data = data;
    const float *src = w;
    switch (pw.kind) {
    case SVDC_PACKED_LINEAR: /* B panel column j = row of w: element (n, k) at w[n*K + k] */
    case SVDC_PACKED_CONV:   /* A panel row i = output channel: element (o, k) at w[o*K + k] */
        pack_panels(src, pw.rows, pw.depth, pw.depth, 1, panel, pw.data);
        break;
    case SVDC_PACKED_WINOGRAD:
        pack_winograd(src, pw.rows, pw.depth, pw.mat_stride, pw.data);
        break;
    case SVDC_PACKED_TEMPORAL: /* tap k: element (o, c) at w[(o*C + c)*3 + k] */
        for (int k = 0; k < 3; k++)
            pack_panels(src + k, pw.rows, pw.depth, pw.depth * 3, 3, panel, pw.data + (size_t)k * pw.mat_stride);
        break;
    }
    *res = pw;
    *out = res;
    return SVDC_OK;
}

void svdc_packed_free(svdc_packed_weight *pw) {
    if (!pw) return;
    free(pw->data);
    free(pw);
}

/* ---- the registry: packed weights sorted by key, read under a shared lock ---- */

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static const svdc_packed_weight **registry;
static size_t registry_count, registry_capacity;
static unsigned long long hits;

/* Index of the first entry whose key is >= key. */
static size_t registry_lower(const void *key) {
    size_t lo = 0, hi = registry_count;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if ((uintptr_t)registry[mid]->key < (uintptr_t)key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const svdc_packed_weight *svdc_packed_find(const void *key, svdc_packed_kind kind) {
    const svdc_packed_weight *found = NULL;
    pthread_rwlock_rdlock(&registry_lock);
    const size_t i = registry_lower(key);
    if (i < registry_count && registry[i]->key == key && registry[i]->kind == kind) found = registry[i];
    pthread_rwlock_unlock(&registry_lock);
    if (found) __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
    return found;
}

unsigned long long svdc_packed_hits(void) { return __atomic_load_n(&hits, __ATOMIC_RELAXED); }

svdc_status svdc_packed_register(svdc_packed_weight *pw) {
    svdc_status s = SVDC_OK;
    pthread_rwlock_wrlock(&registry_lock);
    const size_t i = registry_lower(pw->key);
    if (i < registry_count && registry[i]->key == pw->key) {
        s = svdc_fail(SVDC_ERR_INTERNAL, "prepack: a weight at %p is already packed", pw->key);
    } else {
        if (registry_count == registry_capacity) {
            const size_t cap = registry_capacity ? 2 * registry_capacity : 256;
            const svdc_packed_weight **grown = realloc(registry, cap * sizeof *grown);
            if (!grown) s = svdc_fail(SVDC_ERR_MEMORY, "prepack: cannot grow the registry to %zu entries", cap);
            else {
                registry = grown;
                registry_capacity = cap;
            }
        }
        if (!s) {
            memmove(registry + i + 1, registry + i, (registry_count - i) * sizeof *registry);
            registry[i] = pw;
            registry_count++;
        }
    }
    pthread_rwlock_unlock(&registry_lock);
    return s;
}

void svdc_packed_unregister(const svdc_packed_weight *pw) {
    pthread_rwlock_wrlock(&registry_lock);
    const size_t i = registry_lower(pw->key);
    if (i < registry_count && registry[i] == pw) {
        memmove(registry + i, registry + i + 1, (registry_count - i - 1) * sizeof *registry);
        registry_count--;
    }
    pthread_rwlock_unlock(&registry_lock);
}

/* ---- a model's packed weights ---- */

struct svdc_packed_set {
    svdc_packed_weight **items;
    int count;
    size_t bytes;
};

void svdc_packed_set_free(svdc_packed_set *set) {
    if (!set) return;
    for (int i = 0; i < set->count; i++) {
        svdc_packed_unregister(set->items[i]);
        svdc_packed_free(set->items[i]);
    }
    free(set->items);
    free(set);
}

size_t svdc_packed_set_bytes(const svdc_packed_set *set) { return set ? set->bytes : 0; }

/* Embedding tables are 2-D but read by row (gathers, position adds), never multiplied: not packed. */
static int is_embedding_table(const char *name) {
    const size_t n = strlen(name);
    static const char *const suffixes[] = {"embedding.weight", "embeddings.weight"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        const size_t m = strlen(suffixes[i]);
        if (n >= m && !strcmp(name + n - m, suffixes[i])) return 1;
    }
    return 0;
}

svdc_status svdc_cpu_prepack_params(const svdc_params *p, svdc_host_view_fn host_view, svdc_packed_set **out) {
    *out = NULL;
    svdc_prepack_mode mode;
    SVDC_TRY(svdc_packed_mode(&mode));
    if (p->dtype != SVDC_DTYPE_F32 || mode == SVDC_PREPACK_NONE) return SVDC_OK; /* 16-bit: widened per op instead */
    svdc_packed_set *set = calloc(1, sizeof *set);
    if (!set || !(set->items = calloc((size_t)p->count + 1, sizeof *set->items))) {
        free(set);
        return svdc_fail(SVDC_ERR_MEMORY, "prepack: out of host memory");
    }
    for (int i = 0; i < p->count; i++) {
        const svdc_param *it = &p->items[i];
        /* (a 3-D (O, C, 3) temporal weight as the op sees it is declared 5-D: no 3-D table is packed) */
        if (it->ndim < 2 || it->ndim == 3 || (it->ndim == 2 && is_embedding_table(it->name))) continue;
        if (!packs_in_mode(mode, it->ndim, it->shape)) continue;
        int64_t numel = 1;
        for (int d = 0; d < it->ndim; d++) numel *= it->shape[d];
        const void *host = NULL;
        svdc_status s = host_view(it->slot->data, (size_t)numel * sizeof(float), &host);
        svdc_packed_weight *pw = NULL;
        if (!s && !host) continue; /* a measuring pass: no bytes to pack */
        if (!s) s = svdc_packed_create(host, it->ndim, it->shape, &pw);
        if (!s && pw && (s = svdc_packed_register(pw))) svdc_packed_free(pw);
        if (s) {
            svdc_packed_set_free(set);
            return s;
        }
        if (!pw) continue;
        set->items[set->count++] = pw;
        set->bytes += pw->mat_stride * (size_t)pw->mats * sizeof(float);
    }
    *out = set;
    return SVDC_OK;
}
