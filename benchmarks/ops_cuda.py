"""Device time of single CUDA ops at SVD-XT shapes (576x1024 -> latent 72x128, 320-channel level), fp16 storage,
through the _ops test surface: the op runs once to warm up, then `repeat` more times between two synchronisations
(inputs stay on the device; host copies are not timed). Prints a markdown table (ms, achieved TFLOP/s or GB/s);
with $OUT set also writes $OUT/ops_cuda.md. Shapes are cut to one or two frames so inputs stay small on the host.

    python benchmarks/ops_cuda.py [--dtype fp16] [--repeat 10]
"""
import argparse
import os
import sys

import numpy as np

from svdc import runtime
from svdc._C import _ops


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="fp16", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    count, reason = runtime._cuda_status()
    if not count:
        sys.exit(f"no CUDA device: {reason}")
    from svdc import _C_cuda

    rng = np.random.default_rng(0)
    es = 4 if args.dtype == "fp32" else 2
    L, C, D = 72 * 128, 320, 64
    rows = []

    def bench(name, fn, arrays, flops=0.0, bytes_moved=0.0, **kw):
        fn(*arrays, device="cuda", dtype=args.dtype, repeat=args.repeat, **kw)
        ms = _ops.last_op_ms()
        rate = f"{flops / ms / 1e9:.1f} TFLOP/s" if flops else f"{bytes_moved / ms / 1e6:.0f} GB/s"
        rows.append((name, ms, rate))
        print(f"{name:60s} {ms:9.3f} ms  {rate}", flush=True)

    q, k, v = (rand(rng, 2, L, 5 * D) for _ in range(3))
    bench("attention spatial B=2 L=9216 H=5 D=64", lambda q, k, v, **kw: _ops.attention(q, k, v, 5, D**-0.5, **kw),
          [q, k, v], flops=4.0 * 2 * 5 * L * L * D)
    qt = rand(rng, 2048, 25, 5 * D)
    bench("attention temporal B=2048 L=25 H=5 D=64", lambda q, **kw: _ops.attention(q, q, q, 5, D**-0.5, **kw),
          [qt], flops=4.0 * 2048 * 5 * 25 * 25 * D)
    x = rand(rng, 2, C, 72, 128)
    w = rand(rng, C, C, 3, 3) * 0.05
    bench("conv2d 3x3 N=2 C=O=320 72x128", _ops.conv2d, [x, w, rand(rng, C)], flops=2.0 * 2 * C * C * 9 * L,
          padding=(1, 1, 1, 1))
    bench("conv2d 1x1 N=2 C=O=320 72x128", _ops.conv2d, [x, rand(rng, C, C, 1, 1)], flops=2.0 * 2 * C * C * L)
    xt = rand(rng, 14, C, 72, 128)
    bench("conv_temporal F=14 C=O=320 72x128",
          lambda x, w, **kw: _ops.conv_temporal(x, 14, w, **kw), [xt, rand(rng, C, C, 3) * 0.05],
          flops=3 * 2.0 * 14 * C * C * L)
    t = rand(rng, 2 * L, C)
    bench("linear (18432, 320) x (2560, 320)^T", _ops.linear, [t, rand(rng, 8 * C, C) * 0.05],
          flops=2.0 * 2 * L * C * 8 * C)
    bench("group_norm+silu (2, 320, 72, 128) G=32", lambda x, **kw: _ops.group_norm(x, 32, silu=True, **kw), [x],
          bytes_moved=2.0 * x.size * es)
    bench("group_norm pooled F=14 (14, 320, 72, 128) G=32",
          lambda x, **kw: _ops.group_norm(x, 32, frames=14, **kw), [xt], bytes_moved=2.0 * xt.size * es)
    bench("layer_norm (18432, 320)", _ops.layer_norm, [t], bytes_moved=2.0 * t.size * es)
    g = rand(rng, 2 * L, 16 * C // 2)
    bench("geglu (18432, 2560) -> (18432, 1280)", _ops.geglu, [g], bytes_moved=1.5 * g.size * es)
    bench("add (2, 320, 72, 128)", _ops.add, [x, x], bytes_moved=3.0 * x.size * es)
    bench("permute_0213 (14, 320, 9216, 1)", _ops.permute_0213, [xt.reshape(14, C, L, 1)],
          bytes_moved=2.0 * xt.size * es)

    head = f"# CUDA ops on {_C_cuda.device_name(0)}, {args.dtype}, {args.repeat} timed runs after one warm-up\n\n"
    table = "| op | ms | rate |\n|---|---:|---|\n" + "".join(f"| {n} | {ms:.3f} | {r} |\n" for n, ms, r in rows)
    print("\n" + head + table)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "ops_cuda.md"), "w") as f:
            f.write(head + table)


if __name__ == "__main__":
    main()
