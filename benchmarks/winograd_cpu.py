"""Winograd F(2x2,3x3) (U packed once, as a model packs it in its first call) vs F(4x4,3x3) (U per call) on the CPU: process
CPU time of one conv2d op at the SVD VAE's and UNet's 3x3 shapes, the variants interleaved, medians of `--repeats`.
CPU time rather than wall time, so a busy machine disturbs it less. Usage:
OMP_NUM_THREADS=1 python benchmarks/winograd_cpu.py [--repeats 3] [--threads 1 2] [--out FILE.md]"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (label, images, channels in = out, height, width): VAE levels at 576x1024 cut to a few tile rows' worth of the
# same width where the full image would take long; UNet levels near the F(4x4) threshold.
SHAPES = [
    ("VAE 576x1024 level (128 ch), 64 rows", 1, 128, 64, 1024),
    ("VAE 288x512 level (256 ch), 64 rows", 1, 256, 64, 512),
    ("VAE 144x256 level (512 ch)", 1, 512, 144, 256),
    ("VAE/UNet 72x128 latent level (512 ch)", 1, 512, 72, 128),
    ("UNet 72x128 latent level (320 ch)", 2, 320, 72, 128),
    ("UNet 40x72 (320 ch)", 4, 320, 40, 72),
    ("UNet 32x32 (320 ch)", 8, 320, 32, 32),
]


def cpu_seconds(fn):
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--out", default="")
    args = p.parse_args()
    import numpy as np

    from svdc._native import _C
    from svdc._native import testing_ops

    T = testing_ops()
    rng = np.random.default_rng(0)
    lines = ["| shape | threads | F(2x2) U packed, CPU s | F(4x4) U per call, CPU s | ratio F4/F2 | "
             "GFLOP/CPU-s (direct-conv FLOPs) F2 / F4 |", "|---|---|---|---|---|---|"]
    for label, N, C, H, W in SHAPES:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((C, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        flops = 2.0 * N * C * C * 9 * H * W
        handle = T.prepack(w)  # F(2x2)'s U as loading packs it
        for threads in args.threads:
            _C.set_num_threads(threads)
            times = {"2": [], "4": []}
            for _ in range(args.repeats):
                for tile in ("2", "4"):
                    os.environ["SVDC_WINOGRAD_TILE"] = tile
                    times[tile].append(cpu_seconds(lambda: T.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))))
            t2, t4 = statistics.median(times["2"]), statistics.median(times["4"])
            row = (f"| {label}: {N}x{C}x{H}x{W} | {threads} | {t2:.3f} | {t4:.3f} | {t4 / t2:.2f} | "
                   f"{flops / t2 / 1e9:.0f} / {flops / t4 / 1e9:.0f} |")
            print(row, flush=True)
            lines.append(row)
        del handle
    os.environ.pop("SVDC_WINOGRAD_TILE", None)
    if args.out:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        info = _C.build_info()
        cpu = platform.processor() or "x86-64"
        try:
            with open("/proc/cpuinfo") as fh:
                cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        head = [
            "# Winograd F(2x2,3x3) vs F(4x4,3x3) on the CPU (one conv2d op)",
            "",
            f"- date: {datetime.date.today().isoformat()}, commit {commit}, machine: {cpu}"
            f", {os.cpu_count()} CPUs (shared with other jobs: CPU time, medians of {args.repeats} interleaved runs)",
            f"- kernels: svdc {info['cpu_kernels']} (its 6x16 packed GEMM for both tile sizes); "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
            f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', 'unset')} (neither GEMM here is OpenBLAS's)",
            "",
        ]
        with open(args.out, "w") as fh:
            fh.write("\n".join(head + lines) + "\n")


if __name__ == "__main__":
    main()
