"""The cost of 16-bit weight storage on the CPU: one UNet forward of a small SVD-shaped config with the same random
weights stored in fp32, fp16 and bf16 (each op widens its weights to fp32 just before it runs), timed interleaved in
one process so the three see the same machine load; medians and the fp16/fp32, bf16/fp32 ratios, plus each model's
weight block.

    python benchmarks/half_precision_cpu.py [--rounds 7] [--frames 4 --size 16] [--op-count]

--op-count adds the op calls per SVD-XT UNet forward on a device backend with fp32 and bf16 weights (the emulated
device's dry run of benchmarks/op_count.py: each 16-bit weight operand adds one convert call).
Writes benchmarks/results/half_precision_cpu.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import svdc  # noqa: E402
from benchmarks import _report  # noqa: E402

# SVD's block layout (3 cross-attention levels + a plain one) at a fifth of its widths.
CONFIG = {
    "in_channels": 8, "out_channels": 4, "block_out_channels": [64, 128, 256, 256],
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
    "layers_per_block": 2, "num_attention_heads": [2, 4, 8, 8], "cross_attention_dim": 256,
    "addition_time_embed_dim": 64, "projection_class_embeddings_input_dim": 192, "transformer_layers_per_block": 1,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--op-count", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    shapes = svdc.UNet.weight_shapes(CONFIG)
    weights = {k: (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]) if len(s) > 1 else 50.0)).astype(np.float32)
               for k, s in shapes.items()}
    models = {dt: svdc.UNet.from_config(CONFIG, weights, device="cpu", dtype=dt) for dt in ("fp32", "fp16", "bf16")}
    sample = rng.standard_normal((1, args.frames, 8, args.size, args.size)).astype(np.float32)
    inputs = (sample, np.float32(0.5), rng.standard_normal((1, 1, 256)).astype(np.float32),
              np.array([[6.0, 127.0, 0.02]], np.float32))
    outputs = {dt: m(*inputs) for dt, m in models.items()}  # warm-up (arena sizing)
    times = {dt: [] for dt in models}
    cpu = {dt: [] for dt in models}  # process CPU time: robust to other processes on a shared machine
    for _ in range(args.rounds):
        for dt, m in models.items():
            t0, c0 = time.perf_counter(), time.process_time()
            m(*inputs)
            times[dt].append(time.perf_counter() - t0)
            cpu[dt].append(time.process_time() - c0)
    med = {dt: statistics.median(t) for dt, t in times.items()}
    best = {dt: min(t) for dt, t in times.items()}
    cpu_med = {dt: statistics.median(t) for dt, t in cpu.items()}
    scale = float(np.abs(outputs["fp32"]).max())
    rows = []
    for dt, m in models.items():
        err = float(np.abs(outputs[dt] - outputs["fp32"]).max()) / scale
        rows.append(f"| {dt} | {m._native.weight_bytes / 2**20:.1f} | {med[dt]:.3f} | {med[dt] / med['fp32']:.3f} "
                    f"| {best[dt]:.3f} | {best[dt] / best['fp32']:.3f} | {cpu_med[dt]:.3f} | "
                    f"{cpu_med[dt] / cpu_med['fp32']:.3f} | {err:.1e} |")
        print(rows[-1])
    params = sum(int(np.prod(s)) for s in shapes.values())
    op_lines = []
    if args.op_count:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import op_count

        calls = {dt: op_count.count(25, 576, 1024, dtype=dt)["op_calls"] for dt in ("fp32", "bf16")}
        op_lines = [f"Op calls per SVD-XT UNet forward on a device backend (B=2, 25 frames, 72x128 latents; "
                    f"benchmarks/op_count.py's dry run on the emulated device): fp32 weights {calls['fp32']:,}, "
                    f"bf16 weights {calls['bf16']:,} (one convert per 16-bit weight operand; target < 3,000).", ""]
    text = "\n".join([
        "# UNet forward on the CPU with 16-bit weight storage",
        "",
        f"- machine: {_report.machine()}; date {datetime.date.today()}; commit {_report.commit()}",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; threads: OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}",
        f"- model: SVD's block layout at widths {CONFIG['block_out_channels']}, {params / 1e6:.1f} M parameters; "
        f"input 1 video x {args.frames} frames x {args.size}x{args.size} latents",
        f"- reference: the same model and weights stored in fp32; {args.rounds} interleaved rounds, medians",
        f"- command: `python benchmarks/half_precision_cpu.py --rounds {args.rounds} --frames {args.frames} "
        f"--size {args.size}`",
        "",
        "| weights | weight block (MiB) | forward (s, median) | median / fp32 | forward (s, min) | min / fp32 "
        "| CPU time (s, median) | CPU time / fp32 | max abs diff / max abs fp32 output |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *op_lines,
        "Each op widens its 16-bit weights into the arena just before it runs (csrc/core/ops.c, widen_weights), so "
        "the time ratio is the cost of that conversion; the weight block is what stays in RAM.",
        "",
    ])
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "half_precision_cpu.md")
    with open(out, "w") as fh:
        fh.write(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
