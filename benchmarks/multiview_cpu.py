"""SV3D multi-view end to end on the CPU, svdc.MultiView vs a reference loop in torch in the same run: the tiny
random-weight SV3D-like model (svdc.tiny), with the reference written from Stability's simple_video_sample.py on
diffusers' UNetSpatioTemporalConditionModel blocks, diffusers' AutoencoderKL and transformers' CLIP
(tests/e2e/test_multiview.py sgm_reference; diffusers has no SV3D pipeline). Each side runs in its own process, so
peak RSS is its own; each pair runs twice, with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set and with both unset.
Writes benchmarks/results/multiview_cpu.md (machine, date, commit).

    OMP_NUM_THREADS=2 python benchmarks/multiview_cpu.py [--steps 4 --repeat 2]   (~2 min)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place) and its tests' reference loop

from benchmarks._report import commit, machine, version as _version  # noqa: E402

KIND = "sv3d_p"
SEED = 23


def child(side: str, steps: int, repeat: int) -> dict:
    """Runs in its own process: load, one warm-up call, `repeat` timed calls; prints a JSON line."""
    import numpy as np

    from svdc import orbits, tiny

    t0 = time.perf_counter()
    image = tiny.test_object()
    if side == "svdc":
        pipe = tiny.tiny_multiview(KIND, device="cpu")
        run = lambda: pipe(image, num_inference_steps=steps, seed=SEED, progress=False).frames  # noqa: E731
    else:
        import torch

        from svdc.image import sv3d_preprocess
        from tests.e2e import test_multiview as ref

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        models = ref.models.__wrapped__(type("Request", (), {"param": KIND}))[2]  # the torch modules only
        elev, azim = orbits.static_orbit()

        def run():
            rgb, _ = sv3d_preprocess(image, tiny.TINY_SV3D_SIZE)
            return ref.sgm_reference(torch, models, KIND, rgb, elev, azim, steps, SEED)

    load_s = time.perf_counter() - t0
    first = time.perf_counter()
    out = np.asarray(run())
    first_s = time.perf_counter() - first
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return dict(load_s=load_s, first_s=first_s, call_s=float(np.median(times)), rss_mb=rss_mb, frames=out.tolist())


def run_pair(steps: int, repeat: int, env: dict) -> dict:
    res = {}
    for side in ("svdc", "reference"):
        cmd = [sys.executable, __file__, "--child", side, "--steps", str(steps), "--repeat", str(repeat)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
        res[side] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", choices=["svdc", "reference"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "multiview_cpu.md"))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.steps, a.repeat)))
        return
    import numpy as np

    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    unset = {k: v for k, v in os.environ.items() if k not in blas}
    envs = [(f"OPENBLAS_* as set ({blas or 'none set'})", dict(os.environ)), ("OPENBLAS_* unset", unset)]
    lines = [
        "# SV3D multi-view on the CPU: svdc.MultiView vs a torch reference loop (tiny random-weight sv3d_p)", "",
        f"- machine: {machine()}, {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP threads",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- reference: the sgm loop of tests/e2e/test_multiview.py (Stability's simple_video_sample.py written out) "
        f"on diffusers {_version('diffusers')} UNetSpatioTemporalConditionModel blocks / AutoencoderKL and "
        f"transformers {_version('transformers')} CLIP, torch {_version('torch')}, fp32 CPU, same weights and seed",
        f"- workload: svdc.tiny SV3D-like model, 21 views of 64x64, {a.steps} Euler-EDM steps with triangle CFG; "
        f"times are medians of {a.repeat} calls after a warm-up; each side in its own process (RSS includes its "
        f"imports: numpy vs torch)",
        "- NOT run: a real-config (full-size SV3D UNet) comparison; see the report of issue 12", "",
    ]
    for label, env in envs:
        res = run_pair(a.steps, a.repeat, env)
        s, r = res["svdc"], res["reference"]
        diff = np.abs(np.array(s["frames"], np.int64) - np.array(r["frames"], np.int64))
        lines += [f"## {label}", "",
                  f"outputs: {np.mean(diff <= 1):.4%} of pixels within 1 level (max diff {int(diff.max())})", "",
                  "| | svdc | reference | svdc / reference |", "|---|---:|---:|---:|"]
        for name, key in (("load (s)", "load_s"), ("first call (s)", "first_s"), ("call, median (s)", "call_s"),
                          ("peak RSS (MiB)", "rss_mb")):
            lines.append(f"| {name} | {s[key]:.3f} | {r[key]:.3f} | {s[key] / r[key]:.2f} |")
        lines.append("")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
