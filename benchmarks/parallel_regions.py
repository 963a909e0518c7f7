"""OpenMP parallel regions and where the CPU time goes in one spatio-temporal UNet forward on the CPU backend,
optionally beside another checkout's build (the A/B of a change), at 1 and 2 threads.

Counts come from benchmarks/ompcount.c, an LD_PRELOAD shim over GNU libgomp (compiled here with cc): every parallel
region svdc opens, per outlined kernel function, with the opening thread's fork-to-join CPU time and the team's CPU
time inside the function minus in-region barriers ("busy"). Per forward, all in CPU time (per-thread clocks, so time
a thread spends descheduled by other jobs counts nowhere):
    CPU time      process CPU time of the forward (all threads, spinning included)
    busy          CPU time inside region bodies, barriers excluded (kernel work)
    serial        the calling thread's CPU time outside every region (validation, dispatch, Python, serial code)
    waiting       CPU time - busy - serial: threads at barriers, forking/joining, spinning between regions
Op calls per forward are counted on the emulated device in dry-run mode with the CPU backend's chunk budget (the
same calls ops.c dispatches on the CPU). CPU times without the shim come from interleaved A/B runs (A, B, A, B, ...),
each a fresh process with one warm-up forward; medians are quoted.

    python benchmarks/parallel_regions.py [--compare /path/to/other/checkout] [--repeats 5] [--size 32 --frames 4]
        [--channels 128 256 512 512] [--out benchmarks/results/parallel_regions.md]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _report import commit, machine  # noqa: E402


def unet_config(channels: list[int]) -> dict:
    """The SVD UNet's diffusers config with narrower levels (64 channels per attention head, as SVD has)."""
    return {"block_out_channels": channels, "num_attention_heads": [c // 64 for c in channels]}


def _symbols(path: str) -> dict[int, str]:
    out = subprocess.run(["nm", path], capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[int(parts[0], 16)] = parts[2]
    return table


def child(args) -> None:
    import ctypes

    import numpy as np

    import svdc
    from svdc._native import _C, testing_ops
    from svdc.configs import unet as unet_configs

    cfg = unet_configs.from_diffusers(unet_config(args.channels))
    shapes = _C.UNet.weight_shapes(unet_configs.to_native(cfg))
    rng = np.random.default_rng(0)
    weights = {k: (rng.standard_normal(s, dtype=np.float32) * (0.02 if len(s) > 1 else 0.1)) for k, s in shapes.items()}
    b, f, h = args.batch, args.frames, args.size
    sample = rng.standard_normal((b, f, 8, h, h)).astype(np.float32)
    t = np.full((b,), 0.7, np.float32)
    ctx = rng.standard_normal((b, 1, 1024)).astype(np.float32)
    ids = np.tile(np.array([[6.0, 127.0, 0.02]], np.float32), (b, 1))
    res = {"threads": args.threads, "svdc": svdc.__file__}

    if args.mode == "count":  # op calls on the emulated device with the CPU's chunk budget (dry run: nothing computed)
        ops = testing_ops()
        budget = {x["name"]: x["chunk_budget"] for x in _C.backends()}["cpu"]
        ops.emu_set_dry_run(True)
        ops.emu_set_chunk_budget(budget)
        try:
            emu = svdc.UNet.from_config(cfg, weights, device="emu")
            emu(sample, t, ctx, ids)
            ops.emu_reset_counters()
            emu(sample, t, ctx, ids)
            res["op_calls"] = ops.emu_stats()["op_calls"]
        finally:
            ops.emu_set_dry_run(False)
            ops.emu_set_chunk_budget(0)
        del emu

    unet = svdc.UNet.from_config(cfg, weights, device="cpu")
    unet(sample, t, ctx, ids)  # warm-up: sizes the arena
    shim = ctypes.CDLL(os.environ["OMPCOUNT"]) if args.mode == "count" else None
    if shim:
        shim.ompcount_reset()
    walls, cpus, mains = [], [], []
    for _ in range(args.forwards):
        c0, w0, m0 = time.process_time(), time.perf_counter(), time.thread_time()
        unet(sample, t, ctx, ids)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        mains.append(time.thread_time() - m0)
    res["wall_s"], res["cpu_s"], res["main_cpu_s"] = walls, cpus, mains
    if shim:
        path = ctypes.create_string_buffer(4096)
        vals = (ctypes.c_longlong * 6)()
        per_fn, syms = {}, {}
        for i in range(shim.ompcount_entries()):
            shim.ompcount_entry(i, path, 4096, vals)
            p = path.value.decode()
            if p not in syms:
                syms[p] = _symbols(p) if os.path.exists(p) else {}
            name = syms[p].get(vals[0], f"{os.path.basename(p)}+{vals[0]:#x}")
            e = per_fn.setdefault(name, [0, 0, 0, 0, 0])
            for j in range(5):
                e[j] += vals[j + 1]
        n = args.forwards  # per forward: calls, team calls, wall s, opening thread's CPU s, busy CPU s
        res["per_fn"] = {k: [v[0] / n, v[1] / n] + [x / n * 1e-9 for x in v[2:]] for k, v in per_fn.items()}
    print(json.dumps(res))


def build_shim(tmp: Path) -> Path:
    lib = tmp / "libompcount.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-fopenmp", str(HERE / "ompcount.c"), "-o", str(lib), "-ldl"],
                   check=True)
    return lib


def run_child(tree: Path, mode: str, threads: int, args, shim: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(tree))
    env.pop("SVDC_CPU_KERNELS", None)
    if mode == "count":
        env["LD_PRELOAD"] = str(shim)
        env["OMPCOUNT"] = str(shim)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--threads", str(threads),
           "--forwards", str(1 if mode == "count" else args.forwards), "--batch", str(args.batch), "--frames",
           str(args.frames), "--size", str(args.size), "--channels", *map(str, args.channels)]
    out = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"child ({tree}, {mode}, {threads} threads) failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(r["svdc"]).resolve().parent.parent != tree.resolve():
        raise RuntimeError(f"the child imported svdc from {r['svdc']}, not from {tree}")
    return r


def summary(r: dict) -> dict:
    per = r["per_fn"]
    regions = sum(v[1] for v in per.values())
    serial_regions = sum(v[0] - v[1] for v in per.values())
    busy = sum(v[4] for v in per.values())
    main_in_regions = sum(v[3] for v in per.values())
    wall, cpu = r["wall_s"][0], r["cpu_s"][0]
    serial = r["main_cpu_s"][0] - main_in_regions
    return {"regions": regions, "serial_regions": serial_regions, "op_calls": r.get("op_calls"), "wall": wall,
            "cpu": cpu, "busy": busy, "serial": serial, "waiting": cpu - busy - serial}


def top_functions(r: dict, k: int = 12) -> list[str]:
    rows = sorted(r["per_fn"].items(), key=lambda kv: -kv[1][1])[:k]
    return [f"| `{name}` | {v[1]:,.0f} | {v[0] - v[1]:,.0f} | {v[3] * 1e3:.0f} | {v[4] * 1e3:.0f} |" for name, v in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", type=Path, help="another checkout (built in place) to run beside this one")
    ap.add_argument("--repeats", type=int, default=5, help="timing processes per tree and thread count")
    ap.add_argument("--forwards", type=int, default=2, help="timed forwards per timing process")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=32, help="latent height = width")
    ap.add_argument("--channels", type=int, nargs="+", default=[128, 256, 512, 512])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", choices=["count", "time"])
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.mode = args.child
        return child(args)

    trees = [("this checkout", ROOT)] + ([("compared", args.compare.resolve())] if args.compare else [])
    with tempfile.TemporaryDirectory() as tmp:
        shim = build_shim(Path(tmp))
        counts = {(name, th): run_child(tree, "count", th, args, shim) for name, tree in trees for th in args.threads}
        times = {(name, th): [] for name, _ in trees for th in args.threads}
        for _ in range(args.repeats):  # interleaved: A, B, A, B, ... so load from other jobs hits both alike
            for th in args.threads:
                for name, tree in trees:
                    r = run_child(tree, "time", th, args, shim)
                    times[(name, th)] += r["cpu_s"]

    commits = {"this checkout": commit()}
    if args.compare:
        commits["compared"] = subprocess.run(["git", "-C", str(args.compare), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip() or "(not a git checkout)"
    lines = [
        "# OpenMP parallel regions and CPU time of one UNet forward (CPU backend)",
        "",
        f"- machine: {machine()} (shared with other jobs: CPU times are process CPU time, medians of interleaved runs)",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "- trees: " + "; ".join(f"{n}: {t} at {commits[n]}" for n, t in trees),
        f"- workload: the SVD spatio-temporal UNet config with block_out_channels {args.channels} (64 channels per "
        f"head, cross_attention_dim 1024), random weights, sample ({args.batch}, {args.frames}, 8, {args.size}, "
        f"{args.size}), fp32",
        "- command: `python benchmarks/parallel_regions.py " + " ".join(sys.argv[1:]) + "`",
        "- OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)") + ", OPENBLAS_L2_SIZE="
        + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "- how: regions counted by benchmarks/ompcount.c (LD_PRELOAD over libgomp) on one forward after a warm-up; "
        "all CPU times: busy = inside region bodies minus in-region barriers, serial = the calling thread "
        "outside regions, waiting = CPU time - busy - serial (barriers, fork/join, spinning between regions). CPU time median over "
        f"{args.repeats} processes x {args.forwards} forwards without the shim.",
        "",
        "| tree | threads | op calls | parallel regions (team > 1) | single-thread regions | wall s (counted run) "
        "| CPU s (counted run) | busy s | serial s | waiting s | waiting share | median CPU s (no shim) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, _ in trees:
        for th in args.threads:
            s = summary(counts[(name, th)])
            med = statistics.median(times[(name, th)])
            lines.append(f"| {name} | {th} | {s['op_calls']:,} | {s['regions']:,.0f} | {s['serial_regions']:,.0f} | "
                         f"{s['wall']:.2f} | {s['cpu']:.2f} | {s['busy']:.2f} | {s['serial']:.2f} | {s['waiting']:.2f} | "
                         f"{s['waiting'] / s['cpu']:.0%} | {med:.2f} |")
    if args.compare:
        lines += ["", "Median CPU time, this checkout / compared: " + ", ".join(
            f"{th} thread{'s' if th > 1 else ''} {statistics.median(times[('this checkout', th)]) / statistics.median(times[('compared', th)]):.3f}"
            for th in args.threads) + "."]
    for name, _ in trees:
        th = max(args.threads)
        lines += ["", f"Regions by kernel function, {name}, {th} threads (most regions first):", "",
                  "| function | regions (team > 1) | single-thread | opening thread CPU ms | busy CPU ms (team) |", "|---|---|---|---|---|"]
        lines += top_functions(counts[(name, th)])
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
