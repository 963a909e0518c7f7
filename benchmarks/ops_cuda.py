"""Device time of single CUDA ops at SVD-XT shapes (576x1024 -> latent 72x128, 320-channel level), fp16 or bf16
storage, through the _ops test surface: the op runs once to warm up, then `repeat` more times between two
synchronisations (inputs stay on the device; host copies are not timed), beside the same op in torch on the same
GPU and dtype when torch has CUDA (the baseline). Prints a markdown table (ms, achieved TFLOP/s or GB/s, torch ms,
ratio); with $OUT set also writes $OUT/ops_cuda_<dtype>.md. Shapes are cut to one or two frames so inputs stay
small on the host.

    python benchmarks/ops_cuda.py [--dtype fp16] [--repeat 10]
"""
import argparse
import os
import sys

import numpy as np

from svdc import runtime
from svdc._native import testing_ops as load_testing_ops

_ops = load_testing_ops()


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
    try:
        import torch
        F = torch.nn.functional
        tdt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None

    def torch_ms(ref, arrays):
        """ms per run of ref(*tensors) in torch on the same GPU and dtype (None without torch)."""
        if torch is None or ref is None:
            return None
        ts = [torch.from_numpy(a).cuda().to(tdt) for a in arrays]
        with torch.no_grad():
            ref(*ts)
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.repeat):
                ref(*ts)
            end.record()
            torch.cuda.synchronize()
        return start.elapsed_time(end) / args.repeat

    def bench(name, fn, arrays, flops=0.0, bytes_moved=0.0, ref=None, **kw):
        fn(*arrays, device="cuda", dtype=args.dtype, repeat=args.repeat, **kw)
        ms = _ops.last_op_ms()
        rate = f"{flops / ms / 1e9:.1f} TFLOP/s" if flops else f"{bytes_moved / ms / 1e6:.0f} GB/s"
        tms = torch_ms(ref, arrays)
        rows.append((name, ms, rate, tms))
        print(f"{name:60s} {ms:9.3f} ms  {rate}  torch {tms if tms is None else f'{tms:.3f} ms'}", flush=True)

    def sdpa(heads, d):  # torch attention on the (B, L, H*D) layout
        def run(q, k, v):
            b, lq, lk = q.shape[0], q.shape[1], k.shape[1]
            sh = lambda t, n: t.view(b, n, heads, d).transpose(1, 2)  # noqa: E731
            return F.scaled_dot_product_attention(sh(q, lq), sh(k, lk), sh(v, lk))
        return run

    q, k, v = (rand(rng, 2, L, 5 * D) for _ in range(3))
    bench("attention spatial B=2 L=9216 H=5 D=64", lambda q, k, v, **kw: _ops.attention(q, k, v, 5, D**-0.5, **kw),
          [q, k, v], flops=4.0 * 2 * 5 * L * L * D, ref=torch and sdpa(5, D))
    qt = rand(rng, 2048, 25, 5 * D)
    bench("attention temporal B=2048 L=25 H=5 D=64", lambda q, **kw: _ops.attention(q, q, q, 5, D**-0.5, **kw),
          [qt], flops=4.0 * 2048 * 5 * 25 * 25 * D, ref=torch and (lambda q: sdpa(5, D)(q, q, q)))
    x = rand(rng, 2, C, 72, 128)
    w = rand(rng, C, C, 3, 3) * 0.05
    bench("conv2d 3x3 N=2 C=O=320 72x128", _ops.conv2d, [x, w, rand(rng, C)], flops=2.0 * 2 * C * C * 9 * L,
          padding=(1, 1, 1, 1), ref=torch and (lambda x, w, b: F.conv2d(x, w, b, padding=1)))
    bench("conv2d 1x1 N=2 C=O=320 72x128", _ops.conv2d, [x, rand(rng, C, C, 1, 1)], flops=2.0 * 2 * C * C * L,
          ref=torch and F.conv2d)
    xt = rand(rng, 14, C, 72, 128)
    bench("conv_temporal F=14 C=O=320 72x128",
          lambda x, w, **kw: _ops.conv_temporal(x, 14, w, **kw), [xt, rand(rng, C, C, 3) * 0.05],
          flops=3 * 2.0 * 14 * C * C * L)
    t = rand(rng, 2 * L, C)
    bench("linear (18432, 320) x (2560, 320)^T", _ops.linear, [t, rand(rng, 8 * C, C) * 0.05],
          flops=2.0 * 2 * L * C * 8 * C, ref=torch and F.linear)
    bench("group_norm+silu (2, 320, 72, 128) G=32", lambda x, **kw: _ops.group_norm(x, 32, silu=True, **kw), [x],
          bytes_moved=2.0 * x.size * es, ref=torch and (lambda x: F.silu(F.group_norm(x, 32))))
    bench("group_norm pooled F=14 (14, 320, 72, 128) G=32",
          lambda x, **kw: _ops.group_norm(x, 32, frames=14, **kw), [xt], bytes_moved=2.0 * xt.size * es)
    bench("layer_norm (18432, 320)", _ops.layer_norm, [t], bytes_moved=2.0 * t.size * es,
          ref=torch and (lambda t: F.layer_norm(t, (C,))))
    g = rand(rng, 2 * L, 16 * C // 2)
    bench("geglu (18432, 2560) -> (18432, 1280)", _ops.geglu, [g], bytes_moved=1.5 * g.size * es)
    bench("add (2, 320, 72, 128)", _ops.add, [x, x], bytes_moved=3.0 * x.size * es)
    bench("permute_0213 (14, 320, 9216, 1)", _ops.permute_0213, [xt.reshape(14, C, L, 1)],
          bytes_moved=2.0 * xt.size * es)

    head = (f"# CUDA ops on {_C_cuda.device_name(0)}, {args.dtype}, {args.repeat} timed runs after one warm-up; "
            f"baseline: torch {torch.__version__ if torch else '(not available)'} on the same GPU\n\n")
    table = "| op | svdc ms | rate | torch ms | svdc / torch |\n|---|---:|---|---:|---:|\n" + "".join(
        f"| {n} | {ms:.3f} | {r} | {'-' if t is None else f'{t:.3f}'} | {'-' if t is None else f'{ms / t:.2f}'} |\n"
        for n, ms, r, t in rows)
    print("\n" + head + table)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], f"ops_cuda_{args.dtype}.md"), "w") as f:
            f.write(head + table)


if __name__ == "__main__":
    main()
