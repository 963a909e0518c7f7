"""One call per op family on the CUDA device against the CPU backend, printed as one line each (family, dtype, max
relative error, PASS/FAIL): the first step of benchmarks/gpu_check.sh, so the summary has a per-family answer even
when a later step hangs or the device faults. Exit status 1 when any family fails. Not a pytest module.

    python tests/cuda/smoke.py
"""
import sys

import numpy as np

from svdc import runtime
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()
rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# family -> (inputs, call); bounds: fp32 1e-5, fp16 1e-3, bf16 8e-3 of max|ref| (tests/cuda/test_cuda_ops.py).
FAMILIES = {
    "gemm (linear)": ([r(37, 70), r(45, 70), r(45)], lambda a, **t: ops.linear(*a, **t)),
    "conv2d 3x3": ([r(2, 8, 13, 11), r(12, 8, 3, 3), r(12)],
                   lambda a, **t: ops.conv2d(*a, padding=(1, 1, 1, 1), **t)),
    "conv_temporal": ([r(6, 8, 5, 4), r(8, 8, 3), r(8)], lambda a, **t: ops.conv_temporal(a[0], 3, a[1], a[2], **t)),
    "group_norm (frames)": ([r(6, 16, 7, 5), r(16), r(16)],
                            lambda a, **t: ops.group_norm(a[0], 4, 3, a[1], a[2], silu=True, **t)),
    "layer_norm": ([r(9, 320), r(320), r(320)], lambda a, **t: ops.layer_norm(*a, **t)),
    "attention tiled (Lk > 64)": ([r(2, 100, 128), r(2, 130, 128), r(2, 130, 128)],
                                  lambda a, **t: ops.attention(*a, 2, 0.125, **t)),
    "attention rows (Lk <= 64)": ([r(4, 25, 64), r(4, 25, 64), r(4, 25, 64)],
                                  lambda a, **t: ops.attention(*a, 1, 0.125, **t)),
    "attention wide D=512 (VAE)": ([r(1, 70, 512), r(1, 70, 512), r(1, 70, 512)],
                              lambda a, **t: ops.attention(*a, 1, 512 ** -0.5, **t)),
    "elementwise (geglu)": ([r(5, 64)], lambda a, **t: ops.geglu(*a, **t)),
    "resample (upsample)": ([r(2, 3, 5, 7)], lambda a, **t: ops.upsample_nearest2x(*a, **t)),
    "layout (permute)": ([r(2, 3, 5, 4)], lambda a, **t: ops.permute_0213(*a, **t)),
}
BOUND = {"fp32": 1e-5, "fp16": 1e-3, "bf16": 8e-3}


def rounded(a, dtype):
    if dtype == "fp32":
        return a
    return ops.convert(ops.convert(a, "f16" if dtype == "fp16" else "bf16"), "f32")


def main():
    count, reason = runtime._cuda_status()
    if not count:
        print(f"no CUDA device: {reason}")
        return 1
    failed = 0
    for family, (inputs, call) in FAMILIES.items():
        for dtype in ("fp32", "fp16", "bf16"):
            try:
                ref = call([rounded(a, dtype) for a in inputs])
                got = call(inputs, device="cuda", dtype=dtype)
                err = float(np.max(np.abs(got.astype(np.float64) - ref))) / max(float(np.max(np.abs(ref))), 1e-30)
                ok = np.isfinite(got).all() and err <= BOUND[dtype]
                line = f"{family:28s} {dtype}: max rel err {err:.2e} {'PASS' if ok else 'FAIL'}"
            except Exception as exc:  # a fault: report and carry on (a sticky one fails every later family too)
                ok, line = False, f"{family:28s} {dtype}: ERROR {type(exc).__name__}: {exc}"
            failed += not ok
            print(line, flush=True)
    print(f"smoke: {'PASS' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
