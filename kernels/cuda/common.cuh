// common.cuh — what every CUDA kernel file shares: the status/error bridge and the checked-call macro.
#ifndef SVDC_CUDA_COMMON_CUH
#define SVDC_CUDA_COMMON_CUH

#include <cuda_runtime.h>

extern "C" {
#include "svdc.h"
}

// Turns a CUDA runtime error into an svdc status with the CUDA error text and where it happened.
#define SVDC_CUDA_CHECK(call)                                                                                   \
    do {                                                                                                        \
        cudaError_t svdc_err_ = (call);                                                                         \
        if (svdc_err_ != cudaSuccess)                                                                           \
            return svdc_fail(SVDC_ERR_DEVICE, "cuda: %s failed: %s (%s:%d)", #call, cudaGetErrorString(svdc_err_), \
                             __FILE__, __LINE__);                                                               \
    } while (0)

#endif
