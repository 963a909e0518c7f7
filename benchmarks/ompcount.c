/* ompcount.c — an LD_PRELOAD shim for GNU libgomp that counts the OpenMP parallel regions a process opens and where
 * their threads spend the time, for benchmarks/parallel_regions.py (never linked into svdc).
 *
 * It wraps GOMP_parallel (every `#pragma omp parallel [for]` that gcc compiles enters libgomp there) and the two
 * in-region barriers svdc's kernels reach (GOMP_barrier, GOMP_loop_end: the end of a dynamically scheduled loop).
 * Per outlined function (its object file and offset by dladdr; the benchmark names it from the object's symbol table,
 * e.g. svdc_cpu_avx2_layer_norm._omp_fn.0) it adds up: calls, calls that ran on more than one thread, the opening
 * thread's wall time and CPU time from fork to join, and over all threads of the team the CPU time inside the
 * function minus the CPU time in those barriers ("busy"). CPU times are per-thread clocks, so a thread descheduled
 * by other jobs on a shared machine counts nothing while it waits for a core. The table is updated by the thread that opens the
 * region; svdc opens regions from one thread at a time (the model's mutex), which is what the benchmark runs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define SLOTS 512

typedef struct entry {
    void (*fn)(void *);
    long long calls, team_calls;
    long long wall_ns, master_cpu_ns;
    _Atomic long long busy_ns;
} entry;

static entry table[SLOTS];
static int used;
static _Thread_local long long barrier_ns; /* barrier time of this thread inside the current region */

static long long clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static long long now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static long long cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static entry *lookup(void (*fn)(void *)) {
    for (int i = 0; i < used; i++)
        if (table[i].fn == fn) return &table[i];
    if (used == SLOTS) return &table[SLOTS - 1]; /* overflow: lumped into the last slot */
    table[used].fn = fn;
    return &table[used++];
}

typedef struct call {
    void (*fn)(void *);
    void *data;
    entry *e;
    int team;
} call;

static void trampoline(void *p) {
    call *c = p;
    if (omp_get_thread_num() == 0) c->team = omp_get_num_threads();
    barrier_ns = 0;
    const long long t0 = cpu_ns();
    c->fn(c->data);
    atomic_fetch_add(&c->e->busy_ns, cpu_ns() - t0 - barrier_ns);
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
    static void (*real)(void (*)(void *), void *, unsigned, unsigned);
    if (!real) real = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_NEXT, "GOMP_parallel");
    call c = {fn, data, lookup(fn), 1};
    const long long t0 = now_ns(), c0 = cpu_ns();
    real(trampoline, &c, num_threads, flags);
    c.e->master_cpu_ns += cpu_ns() - c0;
    c.e->wall_ns += now_ns() - t0;
    c.e->calls++;
    if (c.team > 1) c.e->team_calls++;
}

void GOMP_barrier(void) {
    static void (*real)(void);
    if (!real) real = (void (*)(void))dlsym(RTLD_NEXT, "GOMP_barrier");
    const long long t0 = cpu_ns();
    real();
    barrier_ns += cpu_ns() - t0;
}

void GOMP_loop_end(void) {
    static void (*real)(void);
    if (!real) real = (void (*)(void))dlsym(RTLD_NEXT, "GOMP_loop_end");
    const long long t0 = cpu_ns();
    real();
    barrier_ns += cpu_ns() - t0;
}

/* The reading side (ctypes). */
void ompcount_reset(void) {
    for (int i = 0; i < used; i++) {
        table[i].calls = table[i].team_calls = table[i].wall_ns = table[i].master_cpu_ns = 0;
        atomic_store(&table[i].busy_ns, 0);
    }
}
int ompcount_entries(void) { return used; }
/* Entry i: the path of the object holding its function into path, and the function's offset in that object /
 * calls / team calls / opening thread's wall ns / its CPU ns / busy CPU ns into out[6]. */
void ompcount_entry(int i, char *path, int len, long long *out) {
    Dl_info info;
    const int found = dladdr((void *)(uintptr_t)table[i].fn, &info) && info.dli_fname;
    strncpy(path, found ? info.dli_fname : "?", (size_t)len - 1);
    path[len - 1] = 0;
    out[0] = found ? (long long)((uintptr_t)table[i].fn - (uintptr_t)info.dli_fbase) : 0;
    out[1] = table[i].calls;
    out[2] = table[i].team_calls;
    out[3] = table[i].wall_ns;
    out[4] = table[i].master_cpu_ns;
    out[5] = atomic_load(&table[i].busy_ns);
}
