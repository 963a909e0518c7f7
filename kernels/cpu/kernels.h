/* kernels.h — the CPU kernels behind the backend table, one group per file (gemm.c, conv.c, norm.c, attention.c,
 * elementwise.c, resample.c). Arguments are validated by ops.c; float32 only. */
#ifndef SVDC_CPU_KERNELS_H
#define SVDC_CPU_KERNELS_H

#include "backend.h"

/* One prototype per op of the op list (op_list.h): svdc_cpu_<name>, defined in gemm.c, conv.c, norm.c,
 * attention.c, elementwise.c or resample.c. */
#define SVDC_CPU_PROTOTYPE_(name, params, args) svdc_status svdc_cpu_##name params;
SVDC_OP_LIST(SVDC_CPU_PROTOTYPE_)
#undef SVDC_CPU_PROTOTYPE_

#endif
