/* backend_emu.c — the emulated device ("emu"): the CPU kernels behind device semantics, so CI exercises the device
 * path without a GPU. Device memory is a separate allocation whose address the host cannot read (a PROT_NONE
 * reservation; the bytes live elsewhere and only this file translates), so host code that reads device memory
 * without a copy crashes here instead of passing silently. Tensors of float16/bfloat16 storage are computed in
 * float32 (converted into host scratch, rounded once when stored), as the CUDA kernels do. Tests can inject an
 * allocation failure and a sticky device error (emu.h). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "emu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "tensor.h"
#include "try.h"
#include "../cpu/kernels.h"
#include "../cpu/packed.h"

typedef struct emu_block {
    char *device; /* the address handed out: reserved, never readable */
    char *host;   /* where the bytes live (NULL in a dry run) */
    size_t bytes;
} emu_block;

static pthread_mutex_t emu_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_block *blocks;
static int num_blocks, cap_blocks;
static svdc_emu_stats stats;
static long long fail_countdown = -1;
static int sticky;
static char sticky_text[256];
static int dry_run;

/* ---- controls (emu.h) ---- */

void svdc_emu_get_stats(svdc_emu_stats *out) {
    pthread_mutex_lock(&emu_lock);
    *out = stats;
    pthread_mutex_unlock(&emu_lock);
}

void svdc_emu_reset_counters(void) {
    pthread_mutex_lock(&emu_lock);
    stats.allocs = stats.frees = stats.op_calls = stats.bytes_to_device = stats.bytes_to_host = 0;
    pthread_mutex_unlock(&emu_lock);
}

void svdc_emu_fail_allocation(long long nth) {
    pthread_mutex_lock(&emu_lock);
    fail_countdown = nth;
    pthread_mutex_unlock(&emu_lock);
}

void svdc_emu_set_sticky(const char *reason) {
    pthread_mutex_lock(&emu_lock);
    sticky = reason != NULL;
    snprintf(sticky_text, sizeof sticky_text, "%s", reason ? reason : "");
    pthread_mutex_unlock(&emu_lock);
}

void svdc_emu_set_dry_run(int on) {
    pthread_mutex_lock(&emu_lock);
    dry_run = on != 0;
    pthread_mutex_unlock(&emu_lock);
}

static svdc_status refuse_sticky(int device) {
    return svdc_fail(SVDC_ERR_DEVICE,
                     "emu: device %d is unusable after an earlier error (%s); its work and memory are lost, restart "
                     "the process to use it again",
                     device, sticky_text);
}

static svdc_status check_usable(int device) {
    pthread_mutex_lock(&emu_lock);
    svdc_status s = sticky ? refuse_sticky(device) : SVDC_OK;
    pthread_mutex_unlock(&emu_lock);
    return s;
}

/* ---- memory ---- */

static void *emu_alloc(int device, size_t bytes) {
    if (bytes == 0) bytes = 1;
    pthread_mutex_lock(&emu_lock);
    void *result = NULL;
    if (sticky) {
        refuse_sticky(device);
        goto done;
    }
    if (fail_countdown == 0) {
        svdc_fail(SVDC_ERR_MEMORY, "emu: injected allocation failure");
        goto done;
    }
    if (fail_countdown > 0) fail_countdown--;
    if (num_blocks == cap_blocks) {
        int cap = cap_blocks ? 2 * cap_blocks : 64;
        emu_block *grown = realloc(blocks, (size_t)cap * sizeof *grown);
        if (!grown) goto done;
        blocks = grown;
        cap_blocks = cap;
    }
    void *dev = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dev == MAP_FAILED) {
        svdc_fail(SVDC_ERR_MEMORY, "emu: cannot reserve %zu bytes of address space", bytes);
        goto done;
    }
    void *host = NULL;
    if (!dry_run && posix_memalign(&host, 64, (bytes + 63) & ~(size_t)63) != 0) {
        munmap(dev, bytes);
        svdc_fail(SVDC_ERR_MEMORY, "emu: the host has no %zu bytes for the device block", bytes);
        goto done;
    }
    blocks[num_blocks++] = (emu_block){dev, host, bytes};
    stats.allocs++;
    stats.live_count++;
    stats.live_bytes += (long long)bytes;
    result = dev;
done:
    pthread_mutex_unlock(&emu_lock);
    return result;
}

static void emu_free(int device, void *ptr) {
    (void)device;
    if (!ptr) return;
    pthread_mutex_lock(&emu_lock);
    for (int i = 0; i < num_blocks; i++) {
        if (blocks[i].device != ptr) continue;
        munmap(blocks[i].device, blocks[i].bytes);
        free(blocks[i].host);
        stats.frees++;
        stats.live_count--;
        stats.live_bytes -= (long long)blocks[i].bytes;
        blocks[i] = blocks[--num_blocks];
        break;
    }
    pthread_mutex_unlock(&emu_lock);
}

static svdc_status emu_health(int device) { return check_usable(device); }

/* The host address behind device range [ptr, ptr + bytes); SVDC_ERR_INTERNAL when the range is not inside one
 * device block (a host pointer passed as device memory, or an out-of-bounds view). In a dry run: NULL, OK. */
static svdc_status translate(const void *ptr, size_t bytes, const char *what, void **host) {
    *host = NULL;
    const char *p = ptr;
    pthread_mutex_lock(&emu_lock);
    svdc_status s = SVDC_OK;
    int found = 0;
    for (int i = 0; i < num_blocks && !found; i++) {
        const emu_block *b = &blocks[i];
        if (p >= b->device && p < b->device + b->bytes) {
            found = 1;
            if ((size_t)(p - b->device) + bytes > b->bytes)
                s = svdc_fail(SVDC_ERR_INTERNAL, "emu: %s [%p, +%zu bytes) runs past the end of its device block "
                              "of %zu bytes", what, ptr, bytes, b->bytes);
            else if (b->host)
                *host = b->host + (p - b->device);
        }
    }
    if (!found)
        s = svdc_fail(SVDC_ERR_INTERNAL, "emu: %s at %p (%zu bytes) is not emu device memory (a host pointer given "
                      "to a device op, or memory already freed)", what, ptr, bytes);
    pthread_mutex_unlock(&emu_lock);
    return s;
}

static svdc_status emu_copy_to_device(int device, void *dst, const void *src, size_t bytes) {
    svdc_status s = check_usable(device);
    void *host = NULL;
    if (!s && bytes) s = translate(dst, bytes, "copy_to_device destination", &host);
    if (s) return s;
    if (host) memcpy(host, src, bytes);
    pthread_mutex_lock(&emu_lock);
    stats.bytes_to_device += (long long)bytes;
    pthread_mutex_unlock(&emu_lock);
    return SVDC_OK;
}

static svdc_status emu_copy_to_host(int device, void *dst, const void *src, size_t bytes) {
    svdc_status s = check_usable(device);
    void *host = NULL;
    if (!s && bytes) s = translate(src, bytes, "copy_to_host source", &host);
    if (s) return s;
    if (bytes) {
        if (host) memcpy(dst, host, bytes);
        else memset(dst, 0, bytes); /* dry run: nothing was computed */
    }
    pthread_mutex_lock(&emu_lock);
    stats.bytes_to_host += (long long)bytes;
    pthread_mutex_unlock(&emu_lock);
    return SVDC_OK;
}

static svdc_status emu_synchronize(int device) { return check_usable(device); }

static int emu_device_count(char *why, size_t why_len) {
    (void)why;
    (void)why_len;
    return 1;
}

/* ---- ops: translate every tensor, compute 16-bit storage in float32 host scratch, run the CPU kernel ---- */

/* Host scratch for the CPU kernels and the float32 copies of 16-bit tensors: one arena per thread, kept. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_destroy(void *arena) { svdc_arena_free(arena); }
static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_destroy); }

typedef struct emu_frame {
    svdc_ctx host;   /* the CPU backend with this thread's scratch arena */
    size_t mark;
    int skip;        /* dry run: count the op, compute nothing */
    int has_store;             /* the output is 16-bit: store_f32 is rounded into store_dst at the end */
    svdc_tensor store_f32, store_dst;
} emu_frame;

static svdc_status frame_begin(const svdc_ctx *ctx, emu_frame *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_lock(&emu_lock);
    svdc_status s = sticky ? refuse_sticky(ctx->device) : SVDC_OK;
    stats.op_calls++;
    f->skip = dry_run;
    pthread_mutex_unlock(&emu_lock);
    if (s || f->skip) return s;
    pthread_once(&scratch_once, scratch_key_init);
    svdc_arena *arena = pthread_getspecific(scratch_key);
    if (!arena) {
        if ((s = svdc_arena_init(&arena, svdc_backend_cpu(), SVDC_DEVICE_CPU))) return s;
        pthread_setspecific(scratch_key, arena);
    }
    f->host = (svdc_ctx){svdc_backend_cpu(), arena, SVDC_DEVICE_CPU};
    f->mark = svdc_arena_mark(arena);
    return SVDC_OK;
}

/* The host view of device tensor t (NULL stays NULL); `as_f32`: a float32 copy when t is stored in 16 bits. */
static svdc_status frame_input(emu_frame *f, const svdc_tensor *t, const char *what, int as_f32, svdc_tensor *out) {
    if (!t) return SVDC_OK;
    void *host;
    SVDC_TRY(translate(t->data, svdc_tensor_bytes(t), what, &host));
    svdc_tensor v = *t;
    v.data = host;
    v.device = SVDC_DEVICE_CPU;
    if (as_f32 && v.dtype != SVDC_DTYPE_F32) {
        svdc_tensor w;
        SVDC_TRY(svdc_arena_tensor(f->host.arena, SVDC_DTYPE_F32, v.ndim, v.shape, &w));
        SVDC_TRY(svdc_cpu_convert(&f->host, &v, &w));
        v = w;
    }
    *out = v;
    return SVDC_OK;
}

/* The host view of output y: float32 scratch when y is 16-bit (rounded into y by frame_end). In-place ops read
 * their input through frame_input, which made its own float32 copy, so the scratch need not start as y. */
static svdc_status frame_output(emu_frame *f, svdc_tensor *y, const char *what, svdc_tensor *out) {
    void *host;
    SVDC_TRY(translate(y->data, svdc_tensor_bytes(y), what, &host));
    svdc_tensor v = *y;
    v.data = host;
    v.device = SVDC_DEVICE_CPU;
    if (v.dtype != SVDC_DTYPE_F32) {
        svdc_tensor w;
        SVDC_TRY(svdc_arena_tensor(f->host.arena, SVDC_DTYPE_F32, v.ndim, v.shape, &w));
        f->has_store = 1;
        f->store_f32 = w;
        f->store_dst = v;
        v = w;
    }
    *out = v;
    return SVDC_OK;
}

static svdc_status frame_end(emu_frame *f, svdc_status s) {
    if (f->skip) return s;
    if (!s && f->has_store) s = svdc_cpu_convert(&f->host, &f->store_f32, &f->store_dst);
    svdc_arena_release(f->host.arena, f->mark);
    return s;
}

/* Ops whose tensors share one dtype: inputs to float32, output through frame_output. */
#define EMU_BEGIN()                        \
    emu_frame f;                           \
    svdc_status s = frame_begin(ctx, &f);  \
    if (s || f.skip) return s
#define EMU_IN(t, v) svdc_tensor v##_h, *v = NULL; \
    if (!s && (t)) { s = frame_input(&f, (t), #t, 1, &v##_h); v = &v##_h; }
#define EMU_OUT(t, v) svdc_tensor v##_h, *v = &v##_h; \
    if (!s) s = frame_output(&f, (t), #t, &v##_h);
#define EMU_END(call) return frame_end(&f, s ? s : (call))

static svdc_status emu_linear(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                              svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(w, wh) EMU_IN(b, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_linear(&f.host, xh, wh, bh, yh));
}

static svdc_status emu_conv2d(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *w, const svdc_tensor *b,
                              const svdc_conv2d_params *p, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(w, wh) EMU_IN(b, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_conv2d(&f.host, xh, wh, bh, p, yh));
}

static svdc_status emu_conv_temporal(const svdc_ctx *ctx, const svdc_tensor *x, int num_frames, const svdc_tensor *w,
                                     const svdc_tensor *b, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(w, wh) EMU_IN(b, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_conv_temporal(&f.host, xh, num_frames, wh, bh, yh));
}

static svdc_status emu_group_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *bias, int num_groups,
                                  int frames, const svdc_tensor *gamma, const svdc_tensor *beta, float eps,
                                  int apply_silu, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(bias, ah) EMU_IN(gamma, gh) EMU_IN(beta, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_group_norm(&f.host, xh, ah, num_groups, frames, gh, bh, eps, apply_silu, yh));
}

static svdc_status emu_group_norm_moments(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                          svdc_tensor *moments) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_OUT(moments, mh)
    EMU_END(svdc_cpu_group_norm_moments(&f.host, xh, num_groups, frames, mh));
}

static svdc_status emu_group_norm_apply(const svdc_ctx *ctx, const svdc_tensor *x, int num_groups, int frames,
                                        const svdc_tensor *stats, const svdc_tensor *gamma, const svdc_tensor *beta,
                                        int apply_silu, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(stats, sh) EMU_IN(gamma, gh) EMU_IN(beta, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_group_norm_apply(&f.host, xh, num_groups, frames, sh, gh, bh, apply_silu, yh));
}

static svdc_status emu_layer_norm(const svdc_ctx *ctx, const svdc_tensor *x, const svdc_tensor *gamma,
                                  const svdc_tensor *beta, float eps, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(gamma, gh) EMU_IN(beta, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_layer_norm(&f.host, xh, gh, bh, eps, yh));
}

static svdc_status emu_attention(const svdc_ctx *ctx, const svdc_tensor *q, const svdc_tensor *k,
                                 const svdc_tensor *v, int num_heads, float scale, int causal, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(q, qh) EMU_IN(k, kh) EMU_IN(v, vh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_attention(&f.host, qh, kh, vh, num_heads, scale, causal, yh));
}

#define EMU_UNARY(name)                                                                  \
    static svdc_status emu_##name(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) { \
        EMU_BEGIN();                                                                     \
        EMU_IN(x, xh) EMU_OUT(y, yh)                                                     \
        EMU_END(svdc_cpu_##name(&f.host, xh, yh));                                       \
    }
EMU_UNARY(gelu)
EMU_UNARY(silu)
EMU_UNARY(geglu)
EMU_UNARY(upsample_nearest2x)
EMU_UNARY(permute_0213)

static svdc_status emu_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *a, float beta,
                             const svdc_tensor *b, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(a, ah) EMU_IN(b, bh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_axpby(&f.host, alpha, ah, beta, bh, yh));
}

static svdc_status emu_permute_0213_axpby(const svdc_ctx *ctx, float alpha, const svdc_tensor *x, float beta,
                                          const svdc_tensor *r, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(x, xh) EMU_IN(r, rh) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_permute_0213_axpby(&f.host, alpha, xh, beta, rh, yh));
}

#define EMU_BINARY(name, A, B)                                                                                  \
    static svdc_status emu_##name(const svdc_ctx *ctx, const svdc_tensor *A, const svdc_tensor *B, svdc_tensor *y) { \
        EMU_BEGIN();                                                                                            \
        EMU_IN(A, ah) EMU_IN(B, bh) EMU_OUT(y, yh)                                                              \
        EMU_END(svdc_cpu_##name(&f.host, ah, bh, yh));                                                          \
    }
EMU_BINARY(mul, a, b)
EMU_BINARY(add_channel_bias, x, bias)
EMU_BINARY(add_token_bias, x, v)
EMU_BINARY(concat_channels, a, b)

static svdc_status emu_timestep_embedding(const svdc_ctx *ctx, const svdc_tensor *t, int dim, svdc_tensor *y) {
    EMU_BEGIN();
    EMU_IN(t, th) EMU_OUT(y, yh)
    EMU_END(svdc_cpu_timestep_embedding(&f.host, th, dim, yh));
}

/* convert and copy move raw storage: no float32 detour. */
static svdc_status emu_convert(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    EMU_BEGIN();
    svdc_tensor xh, yh;
    if (!s) s = frame_input(&f, x, "x", 0, &xh);
    if (!s) s = frame_input(&f, y, "y", 0, &yh);
    EMU_END(svdc_cpu_convert(&f.host, &xh, &yh));
}

static svdc_status emu_copy(const svdc_ctx *ctx, const svdc_tensor *x, svdc_tensor *y) {
    EMU_BEGIN();
    svdc_tensor xh, yh;
    if (!s) s = frame_input(&f, x, "x", 0, &xh);
    if (!s) s = frame_input(&f, y, "y", 0, &yh);
    EMU_END(svdc_cpu_copy(&f.host, &xh, &yh));
}

static svdc_status emu_fill(const svdc_ctx *ctx, svdc_tensor *y, float value) {
    EMU_BEGIN();
    EMU_OUT(y, yh)
    EMU_END(svdc_cpu_fill(&f.host, yh, value));
}

static svdc_status emu_check_finite(const svdc_ctx *ctx, const svdc_tensor *x, int *all_finite) {
    *all_finite = 1; /* a dry run computes nothing, so nothing is non-finite */
    EMU_BEGIN();
    EMU_IN(x, xh)
    EMU_END(svdc_cpu_check_finite(&f.host, xh, all_finite));
}

/* The weights' host bytes, which the CPU kernels read (a dry run has none: nothing is packed). */
static svdc_status emu_host_view(const void *dev, size_t bytes, const void **host) {
    void *h = NULL;
    SVDC_TRY(translate(dev, bytes, "weight", &h));
    *host = h;
    return SVDC_OK;
}

/* The CPU kernels' packed weights (kernels/cpu/packed.h), keyed by the weights' host bytes as the kernels see them. */
static svdc_status emu_prepare_params(const svdc_params *params, void **prepared, size_t *bytes) {
    svdc_packed_set *set = NULL;
    SVDC_TRY(svdc_cpu_prepack_params(params, emu_host_view, &set));
    *prepared = set;
    *bytes = svdc_packed_set_bytes(set);
    return SVDC_OK;
}

static void emu_release_prepared(void *prepared) { svdc_packed_set_free(prepared); }

#define EMU_OP_ENTRY_(name, params, args) .name = emu_##name,
static svdc_backend emu_backend = { /* not const: svdc_emu_set_chunk_budget */
    .abi_version = SVDC_BACKEND_ABI_VERSION,
    .op_signature = SVDC_OP_SIGNATURE,
    .name = "emu",
    .build_info = "the CPU kernels behind device semantics (tests)",
    .chunk_budget = 0, /* behaves as a GPU: one op per layer */
    .device_count = emu_device_count,
    .alloc = emu_alloc,
    .health = emu_health,
    .free = emu_free,
    .copy_to_device = emu_copy_to_device,
    .copy_to_host = emu_copy_to_host,
    .synchronize = emu_synchronize,
    .prepare_params = emu_prepare_params,
    .release_prepared = emu_release_prepared,
    SVDC_OP_LIST(EMU_OP_ENTRY_)
};

const svdc_backend *svdc_backend_emu(void) { return &emu_backend; }

void svdc_emu_set_chunk_budget(size_t bytes) { emu_backend.chunk_budget = bytes; }
