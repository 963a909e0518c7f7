"""One forward of the full SVD UNet config (random weights) on the CPU: svdc vs diffusers, same threads, same run.

Each side runs in its own subprocess (so one's memory cannot hide in the other's numbers) and reports the weight
footprint, the wall time of the forward and the peak RSS during it (VmHWM reset just before the forward). The svdc
side never imports torch: it gets the weight names and shapes from a JSON file the parent writes.

    python benchmarks/unet_cpu.py [--threads 2] [--batch 2 --frames 4 --size 32 | --size 40 72] [--openblas both]
Writes benchmarks/results/unet_cpu.md. `--openblas both` (the default) runs both sides twice: with
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as this shell sets them, and with both unset (as on a user's machine); `asis` or
`unset` runs one of them. The table names the GEMM kernel svdc ran and its SVDC_PREPACK mode (from the environment:
unset = the default).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
        fh.write("5")


def _inputs(args):
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = args.size if len(args.size) == 2 else args.size * 2
    sample = rng.standard_normal((args.batch, args.frames, 8, h, w)).astype(np.float32)
    t = np.full((args.batch,), 0.25 * np.log(7.0), np.float32)
    ctx = rng.standard_normal((args.batch, 1, 1024)).astype(np.float32)
    ids = np.tile(np.array([[6.0, 127.0, 0.02]], np.float32), (args.batch, 1))
    return sample, t, ctx, ids


def _measure(fn, repeats: int):
    """Times every forward; the peak RSS covers all of them from a reset just before the first (cold) one, so memory
    kept by caches between calls (svdc's arena chunks, torch's allocator) is counted for both sides."""
    times = []
    _reset_peak_rss()
    before = _status_kb("VmRSS")
    cpu = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"times_s": times, "cpu_s": cpu, "rss_before_forward_mb": before / 1024,
            "peak_rss_forward_mb": _status_kb("VmHWM") / 1024}


def child_svdc(args):
    import gc

    import numpy as np

    import svdc

    with open(args.shapes) as fh:
        shapes = json.load(fh)
    rng = np.random.default_rng(0)
    weights = {}
    for name, shape in shapes.items():
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= 0.02 if len(shape) > 1 else 0.1
        weights[name] = w
    unet = svdc.UNet.from_config({}, weights, device="cpu")  # {} = the diffusers defaults = the SVD config
    del weights
    gc.collect()
    sample, t, ctx, ids = _inputs(args)
    res = _measure(lambda: unet(sample, t, ctx, ids), args.repeats)
    res["arena_peak_mb"] = unet.last_peak_bytes / 2**20
    res["num_parameters"] = unet.num_parameters
    res["packed_mb"] = unet._native.packed_weight_bytes / 2**20
    info = svdc._C.build_info()
    res["kernels"] = info["cpu_kernels"]
    res["gemm"] = GEMM_KERNELS.get(info["cpu_kernels"], "?")
    res["blas_config"] = info["blas_config"]
    print(json.dumps(res))


def child_diffusers(args):
    import gc

    import torch
    from diffusers import UNetSpatioTemporalConditionModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNetSpatioTemporalConditionModel().eval()
    gc.collect()
    sample, t, ctx, ids = (torch.from_numpy(a) for a in _inputs(args))

    def run():
        with torch.no_grad():
            model(sample, t, ctx, ids)

    res = _measure(run, args.repeats)
    res["num_parameters"] = sum(p.numel() for p in model.parameters())
    res["torch"] = torch.__version__
    import diffusers

    res["diffusers"] = diffusers.__version__
    print(json.dumps(res))


OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The packed-weight GEMM of each CPU kernel variant (kernels/cpu/pgemm.c svdc_pgemm_kernel_name).
GEMM_KERNELS = {"avx2": "svdc avx2-fma 6x16", "baseline": "svdc vec4 6x16"}


def _openblas_label(setting: str) -> str:
    if setting == "unset":
        return "unset"
    return ", ".join(f"{k}={os.environ[k]}" for k in OPENBLAS_VARS if k in os.environ) or "as set (none set)"


def _run_child(kind: str, args, shapes_path: str, openblas: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT)
    if openblas == "unset":
        for k in OPENBLAS_VARS:
            env.pop(k, None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--shapes", shapes_path,
           "--threads", str(args.threads), "--batch", str(args.batch), "--frames", str(args.frames),
           "--size", *map(str, args.size), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, nargs="+", default=[32], help="latent height = width, or height width")
    ap.add_argument("--openblas", choices=["both", "asis", "unset"], default="both",
                    help="OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set, unset, or both runs (default)")
    ap.add_argument("--repeats", type=int, default=3, help="forwards per side (time: the fastest)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "unet_cpu.md"))
    ap.add_argument("--child", choices=["svdc", "diffusers"])
    ap.add_argument("--shapes")
    args = ap.parse_args()
    if len(args.size) not in (1, 2):
        ap.error(f"--size: expected 1 or 2 values (height [width]), got {len(args.size)}")
    if args.child == "svdc":
        return child_svdc(args)
    if args.child == "diffusers":
        return child_diffusers(args)

    import torch
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        shapes = {k: list(v.shape) for k, v in UNetSpatioTemporalConditionModel().state_dict().items()}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(shapes, fh)
        shapes_path = fh.name
    settings = ["asis", "unset"] if args.openblas == "both" else [args.openblas]
    try:
        runs = {st: {kind: _run_child(kind, args, shapes_path, st) for kind in ("svdc", "diffusers")}
                for st in settings}
    finally:
        os.unlink(shapes_path)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    first = next(iter(runs.values()))
    s0, d0 = first["svdc"], first["diffusers"]
    h, w = args.size if len(args.size) == 2 else args.size * 2
    lines = [
        "# UNet forward on the CPU: svdc vs diffusers",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit}",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs visible, {args.threads} threads for both sides",
        f"- reference: diffusers {d0['diffusers']} UNetSpatioTemporalConditionModel, torch {d0['torch']} (CPU, fp32, "
        "no_grad), same run, each side in its own process",
        f"- svdc: CPU kernels {s0['kernels']}, weight GEMMs on {s0['gemm']} (kernels/cpu/pgemm.c) where packed, "
        f"SVDC_PREPACK={os.environ.get('SVDC_PREPACK', '') or 'unset (default)'} ({s0['packed_mb']:.0f} MB packed), "
        f"OpenBLAS for the rest: {s0['blas_config']}",
        f"- workload: full SVD config ({s0['num_parameters']:,} parameters, random weights), sample "
        f"({args.batch}, {args.frames}, 8, {h}, {w}), context length 1; "
        f"{args.repeats} forwards per side; time = the fastest (on a shared machine the slower ones show load "
        "from other jobs), CPU = process CPU time of that forward (all threads), memory = the peak over all of them",
        f"- command: `python benchmarks/unet_cpu.py --threads {args.threads} --batch {args.batch} --frames "
        f"{args.frames} --size {' '.join(map(str, args.size))} --repeats {args.repeats} --openblas {args.openblas}`",
        "",
        "| OpenBLAS variables | | fastest forward (s) | CPU of it (s) | all forwards (s) | RSS before the first forward "
        "(MB) | peak RSS over the forwards (MB) | activation peak (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for st, res in runs.items():
        s, d = res["svdc"], res["diffusers"]
        i_s, i_d = s["times_s"].index(min(s["times_s"])), d["times_s"].index(min(d["times_s"]))
        label = _openblas_label(st)
        lines += [
            f"| {label} | svdc | {s['times_s'][i_s]:.2f} | {s['cpu_s'][i_s]:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in s['times_s'])} | {s['rss_before_forward_mb']:.0f} | "
            f"{s['peak_rss_forward_mb']:.0f} | {s['arena_peak_mb']:.0f} (arena) |",
            f"| {label} | diffusers | {d['times_s'][i_d]:.2f} | {d['cpu_s'][i_d]:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in d['times_s'])} | {d['rss_before_forward_mb']:.0f} | "
            f"{d['peak_rss_forward_mb']:.0f} | {d['peak_rss_forward_mb'] - d['rss_before_forward_mb']:.0f} "
            "(RSS growth) |",
        ]
        ratios.append(f"{label}: {s['times_s'][i_s] / d['times_s'][i_d]:.2f}")
    lines += ["", "Time ratio svdc / diffusers (fastest forwards): " + "; ".join(ratios) + ".", ""]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
