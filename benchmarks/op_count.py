"""Op calls per UNet forward on a device backend: the real SVD-XT UNet (B=2 for classifier-free guidance, 25
frames, 576x1024 -> 72x128 latents) built on the emulated device in dry-run mode, where every op is counted and
none is computed (device memory is address space only, weights are never read). The count is what a GPU backend
would launch through ops.c per forward (one backend call per op; a CUDA op may launch a few kernels).

    python benchmarks/op_count.py [--frames 25] [--height 576] [--width 1024] [--out benchmarks/results/op_count.md]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import commit, machine  # noqa: E402

import svdc  # noqa: E402
from svdc._native import _C, testing_ops  # noqa: E402
from svdc.configs import unet as unet_configs  # noqa: E402


class ZeroWeights(Mapping):
    """name -> zeros of the declared shape, made on access (the dry run never reads them)."""

    def __init__(self, shapes):
        self._shapes = shapes

    def __getitem__(self, name):
        return np.zeros(self._shapes[name], np.float32)

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self):
        return len(self._shapes)


def count(frames: int, height: int, width: int, preset: str = "svd_xt", chunk_budget: int = 0) -> dict:
    cfg = unet_configs.preset(preset)
    native = unet_configs.to_native(cfg)
    shapes = _C.UNet.weight_shapes(native)
    ops = testing_ops()
    ops.emu_set_dry_run(True)
    ops.emu_set_chunk_budget(chunk_budget)
    try:
        unet = svdc.UNet.from_config(cfg, ZeroWeights(shapes), device="emu")
        b, h, w = 2, height // 8, width // 8
        sample = np.zeros((b, frames, 8, h, w), np.float32)
        context = np.zeros((b, 1, native["cross_attention_dim"]), np.float32)
        ids = np.zeros((b, 3), np.float32)
        unet(sample, np.float32(1.0), context, ids)  # sizes the arena
        ops.emu_reset_counters()
        t0 = time.perf_counter()
        unet(sample, np.float32(1.0), context, ids)
        seconds = time.perf_counter() - t0
        stats = ops.emu_stats()
    finally:
        ops.emu_set_dry_run(False)
        ops.emu_set_chunk_budget(0)
    return {"op_calls": stats["op_calls"], "allocs": stats["allocs"], "frees": stats["frees"],
            "host_seconds": seconds, "params": sum(int(np.prod(s)) for s in shapes.values())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--height", type=int, default=576)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    r = count(a.frames, a.height, a.width)
    budget = {b["name"]: b["chunk_budget"] for b in _C.backends()}
    # The CPU-sized chunking, counted the same way (the emulated device asked for the CPU's budget).
    r["cpu_budget_op_calls"] = count(a.frames, a.height, a.width, chunk_budget=budget["cpu"])["op_calls"]
    lines = [
        "# Op calls per SVD-XT UNet forward on a device backend",
        "",
        f"- machine: {machine()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- commit: {commit()}",
        f"- command: `python benchmarks/op_count.py --frames {a.frames} --height {a.height} --width {a.width}`",
        "- how: the real svd_xt UNet config built on the emulated device (`emu`, chunk budget "
        "0 = one op per layer, as the CUDA backend asks) in dry-run mode: every op call through "
        "ops.c is counted by the backend, none is computed. B = 2 (classifier-free guidance), "
        f"{a.frames} frames, latents {a.height // 8}x{a.width // 8}.",
        f"- reference: the same count with the CPU's chunk budget ({budget['cpu'] >> 20} MiB), in the same run: "
        f"{r['cpu_budget_op_calls']:,} op calls; target on a device backend: < 3,000.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| op calls per forward | {r['op_calls']:,} |",
        f"| device allocations / frees during the (second) forward | {r['allocs']} / {r['frees']} |",
        f"| parameters | {r['params']:,} |",
        f"| host time of the dry-run forward (validation + dispatch only) | {r['host_seconds'] * 1e3:.1f} ms |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
