"""Times svdc's CPU ops against torch CPU at SVD shapes, same thread count, same process, and writes a markdown table
(times and svdc/torch ratios) to benchmarks/results/ops_cpu.md with the machine, date and commit.

    OMP_NUM_THREADS=2 python benchmarks/ops_cpu.py [--quick] [--only conv,attention]
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place), not another one on the path

from benchmarks._report import commit, machine  # noqa: E402


def openblas_core() -> str:
    """The kernel family OpenBLAS picked at load time (DYNAMIC_ARCH), e.g. Haswell or SkylakeX."""
    import ctypes

    import scipy_openblas32

    try:
        lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), f"lib{scipy_openblas32.get_library()}.so"))
        lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
        return lib.scipy_openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def best_times(ours, ref, reps: int, budget_s: float = 30.0):
    """Minimum wall times of svdc and torch over up to `reps` alternating runs after one warm-up each. Alternating
    keeps both under the same background load (the machine may be shared); the minimum is the least disturbed run."""
    t0 = time.perf_counter()
    ours()
    ref()
    first = time.perf_counter() - t0
    reps = max(1, min(reps, int(budget_s / max(first, 1e-6))))
    t_ours, t_ref = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref()
        t_ref.append(time.perf_counter() - t0)
    return min(t_ours), min(t_ref)


def cases(torch, quick: bool):
    """(group, name, svdc thunk, torch thunk) at SVD shapes; arrays are made once per case."""
    from svdc._native import testing_ops

    _ops = testing_ops()

    F = torch.nn.functional
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    t = torch.from_numpy

    # GEMM: transformer projections (tokens x width -> width) and the GEGLU feed-forward at 72x128 / 36x64 latents.
    for M, K, N in [(9216, 320, 320), (9216, 320, 2560), (2304, 640, 5120), (576, 1280, 1280)]:
        x, w = r(M, K), r(N, K) * 0.05
        xt, wt = t(x), t(w)
        yield "GEMM", f"linear {M}x{K} -> {N}", (lambda x=x, w=w: _ops.linear(x, w, None)), (
            lambda xt=xt, wt=wt: torch.matmul(xt, wt.T))

    # conv2d 3x3, stride 1, pad 1 at the three UNet resolutions (frames as batch rows), plus the VAE downsampler.
    convs = [(2, 320, 72, 128, 320), (2, 640, 36, 64, 640), (2, 1280, 18, 32, 1280), (4, 320, 36, 64, 320)]
    if quick:
        convs = convs[1:2]
    for N, C, H, W, O in convs:
        x, w, b = r(N, C, H, W), r(O, C, 3, 3) * 0.02, r(O)
        xt, wt, bt = t(x), t(w), t(b)
        yield "conv2d", f"3x3 {N}x{C}x{H}x{W} -> {O}", (
            lambda x=x, w=w, b=b: _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))), (
            lambda xt=xt, wt=wt, bt=bt: F.conv2d(xt, wt, bt, padding=1))
    x, w, b = r(1, 128, 288, 512), r(128, 128, 3, 3) * 0.02, r(128)
    xt, wt, bt = t(x), t(w), t(b)
    yield "conv2d", "3x3 s2 pad(0,1,0,1) 1x128x288x512", (
        lambda: _ops.conv2d(x, w, b, (2, 2), (0, 1, 0, 1))), (
        lambda: F.conv2d(F.pad(xt, (0, 1, 0, 1)), wt, bt, stride=2))
    x, w, b = r(2, 640, 36, 64), r(320, 640, 1, 1) * 0.02, r(320)
    xt, wt, bt = t(x), t(w), t(b)
    yield "conv2d", "1x1 2x640x36x64 -> 320", (lambda: _ops.conv2d(x, w, b)), (lambda: F.conv2d(xt, wt, bt))

    # Temporal conv (3,1,1) over 14 frames at 36x64 (Conv3d in torch).
    B, Fr, C, H, W = 1, 14, 320, 36, 64
    x, w, b = r(B * Fr, C, H, W), r(C, C, 3) * 0.02, r(C)
    x5 = t(x).reshape(B, Fr, C, H, W).permute(0, 2, 1, 3, 4).contiguous()
    w5, bt = t(w)[:, :, :, None, None].contiguous(), t(b)
    yield "conv_temporal", f"k3 {B}x{Fr}x{C}x{H}x{W}", (lambda: _ops.conv_temporal(x, Fr, w, b)), (
        lambda: F.conv3d(x5, w5, bt, padding=(1, 0, 0)))

    # Group norm, 32 groups: per frame with fused SiLU, and pooled over 14 frames (torch: 5-D input).
    for N, C, H, W in [(2, 320, 72, 128), (14, 640, 36, 64)]:
        x, g, b = r(N, C, H, W), r(C), r(C)
        xt, gt, bt = t(x), t(g), t(b)
        yield "group_norm", f"+silu {N}x{C}x{H}x{W}", (
            lambda x=x, g=g, b=b: _ops.group_norm(x, 32, 1, g, b, 1e-5, True)), (
            lambda xt=xt, gt=gt, bt=bt: F.silu(F.group_norm(xt, 32, gt, bt, 1e-5)))
    x, g, b = r(14, 320, 36, 64), r(320), r(320)
    x5 = t(x).reshape(1, 14, 320, 36, 64).permute(0, 2, 1, 3, 4).contiguous()
    gt, bt = t(g), t(b)
    yield "group_norm", "pooled 14 frames 1x14x320x36x64", (lambda: _ops.group_norm(x, 32, 14, g, b, 1e-6)), (
        lambda: F.group_norm(x5, 32, gt, bt, 1e-6))

    # Attention: 9216-token spatial self-attention (72x128 latent, 64-dim heads), 2304 tokens (36x64), temporal
    # attention over 14 frames for every spatial position, and 1-token cross-attention.
    def sdpa(q, k, v, heads):
        B, Lq, E = q.shape
        D = E // heads
        # b l (h d) -> b h l d and back, as the transformer blocks do around SDPA
        sp = lambda a: t(a).reshape(a.shape[0], a.shape[1], heads, D).transpose(1, 2)  # noqa: E731
        qs, ks, vs = sp(q), sp(k), sp(v)
        return lambda: F.scaled_dot_product_attention(qs, ks, vs).transpose(1, 2).reshape(B, Lq, E)

    atts = [(1, 9216, 9216, 5, 64), (2, 2304, 2304, 10, 64), (2304, 14, 14, 10, 64), (2, 9216, 1, 5, 64)]
    if quick:
        atts = [(1, 2304, 2304, 5, 64), (2304, 14, 14, 10, 64)]
    for B, Lq, Lk, H, D in atts:
        q, k, v = r(B, Lq, H * D), r(B, Lk, H * D), r(B, Lk, H * D)
        yield "attention", f"B={B} Lq={Lq} Lk={Lk} heads={H}x{D}", (
            lambda q=q, k=k, v=v, H=H, D=D: _ops.attention(q, k, v, H, D**-0.5)), sdpa(q, k, v, H)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few small cases (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated groups, e.g. conv2d,attention")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ops_cpu.md"))
    ap.add_argument("--openblas-coretype", default="",
                    help="set OPENBLAS_CORETYPE (e.g. SkylakeX) before svdc loads OpenBLAS")
    args = ap.parse_args(argv)
    if args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype

    import torch

    import svdc

    print(f"svdc from {svdc.__file__}")
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    svdc._C.set_num_threads(threads)
    only = {s for s in args.only.split(",") if s}
    rows = []
    for group, name, ours, ref in cases(torch, args.quick):
        if only and group not in only:
            continue
        with torch.no_grad():
            t_ours, t_ref = best_times(ours, ref, args.reps)
        rows.append((group, name, t_ours, t_ref))
        print(f"{group:14s} {name:40s} svdc {t_ours * 1e3:9.1f} ms  torch {t_ref * 1e3:9.1f} ms  "
              f"ratio {t_ours / t_ref:5.2f}", flush=True)

    info = svdc.info()
    lines = [
        "# svdc CPU ops vs torch CPU",
        "",
        f"- machine: {machine()}",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- threads: {threads} (OMP_NUM_THREADS; torch.set_num_threads and svdc set_num_threads alike)",
        f"- svdc BLAS: {info.get('blas_config', info.get('blas'))}, kernel core {openblas_core()}"
        + (f" (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']})" if os.environ.get("OPENBLAS_CORETYPE") else ""),
        f"- torch {torch.__version__} ({'MKL' if torch.backends.mkl.is_available() else 'no MKL'}, "
        f"{torch.backends.cpu.get_cpu_capability()})",
        f"- best of up to {args.reps} alternating runs after a warm-up; ratio = svdc / torch (below 1: svdc is faster)",
        "",
        "| op | shape | svdc ms | torch ms | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {g} | {n} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.2f} |" for g, n, a, b in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
