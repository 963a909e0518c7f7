/* kernels.h — the CPU kernels behind the backend table, one group per file (gemm.c, conv.c, norm.c, attention.c,
 * elementwise.c, resample.c). Arguments are validated by ops.c; float32 only.
 *
 * The kernel files are compiled twice (setup.py): as the baseline variant (any x86-64; SVDC_CPU_VARIANT=baseline)
 * and, where the build has it, as the avx2 variant (-mavx2 -mfma; SVDC_CPU_VARIANT=avx2), each defining
 * svdc_cpu_<variant>_<name>. backend_cpu.c picks one table when the backend is first used (the CPU's features, or
 * SVDC_CPU_KERNELS) and defines svdc_cpu_<name>, which calls the selected variant (for the emulated device). */
#ifndef SVDC_CPU_KERNELS_H
#define SVDC_CPU_KERNELS_H

#include "backend.h"

#ifndef SVDC_CPU_VARIANT
#define SVDC_CPU_VARIANT baseline
#endif
#define SVDC_CPU_NAME_(variant, name) svdc_cpu_##variant##_##name
#define SVDC_CPU_NAME(variant, name) SVDC_CPU_NAME_(variant, name)
/* The name a kernel file gives its definition of op `name`: svdc_cpu_<this variant>_<name>. */
#define SVDC_CPU_KERNEL(name) SVDC_CPU_NAME(SVDC_CPU_VARIANT, name)

/* One prototype per op of the op list (op_list.h) and variant, defined in gemm.c, conv.c, norm.c, attention.c,
 * elementwise.c or resample.c; and svdc_cpu_<name>, the selected variant's (backend_cpu.c). */
#define SVDC_CPU_PROTOTYPE_(name, params, args)              \
    svdc_status svdc_cpu_baseline_##name params;             \
    svdc_status svdc_cpu_avx2_##name params;                 \
    svdc_status svdc_cpu_##name params;
SVDC_OP_LIST(SVDC_CPU_PROTOTYPE_)
#undef SVDC_CPU_PROTOTYPE_

/* The variant the CPU backend runs ("baseline" or "avx2"), the ones this build contains ("baseline" or
 * "baseline avx2"), and why the selection is not the best the CPU supports ("" when it is). */
const char *svdc_cpu_kernels_selected(void);
const char *svdc_cpu_kernels_built(void);
const char *svdc_cpu_kernels_reason(void);
/* The SIMD features of the running CPU that matter to the kernels, e.g. "sse4.2 avx avx2 fma avx512f". */
const char *svdc_cpu_features(void);

#endif
