"""Memory of the exact temporal decode (every frame in one window, no chunk boundaries), svdc vs diffusers:
- the plan: svdc's measuring pass (nothing computed) gives the decoder's arena peak for F frames at HxW; the planned
  process peak adds the weights, the latents and the output frames;
- measured: an exact decode of each F in --frames in its own child process (random SVD-config weights): wall and CPU
  time, peak RSS (VmHWM), svdc's arena high-water mark, and diffusers' decode of the same latents in another child
  (--diffusers; at 576x1024 a full window of 8 frames needs tens of GB there), with the largest difference.
Usage: OMP_NUM_THREADS=2 python benchmarks/vae_decode_memory.py [--size 576x1024] [--plan-frames 4 8 14 25]
       [--frames 4 8] [--diffusers] [--out benchmarks/results/vae_decode_memory.md]"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

GB = 1e9


def _peak_bytes() -> int:
    """VmHWM: this process's own high-water mark."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _latents(frames, h, w):
    import numpy as np

    return np.random.default_rng(0).standard_normal((frames, 4, h // 8, w // 8)).astype(np.float32)


def worker(args):
    """One framework, one decode of `frames` frames in one window."""
    import numpy as np

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    h, w = args.size
    z = _latents(args.frames, h, w)
    if args.framework == "svdc":
        import svdc

        svdc._C.set_num_threads(threads)
        vae = svdc.VAE.from_pretrained(args.weights, device="cpu")
        run = lambda: vae.decode(z, num_frames=args.frames)  # noqa: E731
    else:
        import torch
        from diffusers import AutoencoderKLTemporalDecoder

        torch.set_num_threads(threads)
        model = AutoencoderKLTemporalDecoder.from_pretrained(args.weights).eval()
        zt = torch.from_numpy(z)

        def run():
            with torch.no_grad():
                return model.decode(zt, num_frames=args.frames).sample.numpy()

    c0, t0 = time.process_time(), time.perf_counter()
    out = run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {"framework": args.framework, "frames": args.frames, "seconds": seconds, "cpu_seconds": cpu,
              "peak_rss": _peak_bytes(), "threads": threads}
    if args.framework == "svdc":
        result["arena_peak"] = vae.last_peak_bytes
    np.save(os.path.join(args.weights, f"out_{args.framework}_{args.frames}.npy"), out)
    print(json.dumps(result))


def _child(framework, frames, size, weights):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--framework", framework, "--weights", weights,
           "--child-frames", str(frames), "--size", "%dx%d" % size]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"framework": framework, "frames": frames, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan(weights, size, frames_list):
    """{frames: (arena bytes, planned process bytes)} from svdc's measuring pass: nothing is computed."""
    import svdc

    vae = svdc.VAE.from_pretrained(weights, device="cpu")
    h, w = size
    out = {}
    for f in frames_list:
        z = _latents(f, h, w)
        arena = vae.planned_decode_bytes(z, f)
        frames_bytes = f * 3 * h * w * 4
        out[f] = (arena, arena + vae._native.weight_bytes + z.nbytes + frames_bytes)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--framework", choices=["svdc", "diffusers"], help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--child-frames", type=int, dest="child_frames", help=argparse.SUPPRESS)
    p.add_argument("--size", default="576x1024", help="HxW of the frames (pixels)")
    p.add_argument("--plan-frames", type=int, nargs="+", default=[4, 8, 14, 25])
    p.add_argument("--frames", type=int, nargs="*", default=[4, 8], help="frame counts decoded for real")
    p.add_argument("--diffusers", action="store_true", help="also decode with diffusers (same latents, same run)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "vae_decode_memory.md"))
    p.add_argument("--note", default="")
    args = p.parse_args()
    args.size = tuple(int(v) for v in args.size.split("x"))
    if args.worker:
        args.frames = args.child_frames
        return worker(args)

    import numpy as np
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    import _report
    from svdc.configs import vae as vae_configs

    with tempfile.TemporaryDirectory(prefix="svdc-vae-mem-") as tmp:
        torch.manual_seed(0)
        cfg = {k: v for k, v in vae_configs.preset("svd").items() if k != "_class_name"}
        AutoencoderKLTemporalDecoder(**cfg).save_pretrained(tmp)  # random weights, the real sizes
        plans = plan(tmp, args.size, sorted(set(args.plan_frames) | set(args.frames)))
        for f, (arena, total) in plans.items():
            print(f"plan {f} frames {args.size}: arena {arena / GB:.2f} GB, process {total / GB:.2f} GB", flush=True)
        runs = []
        for f in args.frames:
            res = {"svdc": _child("svdc", f, args.size, tmp)}
            if args.diffusers:
                res["diffusers"] = _child("diffusers", f, args.size, tmp)
            rel = None
            if all("error" not in r for r in res.values()) and "diffusers" in res:
                a = np.load(os.path.join(tmp, f"out_svdc_{f}.npy"))
                b = np.load(os.path.join(tmp, f"out_diffusers_{f}.npy"))
                rel = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
            runs.append((f, res, rel))
            print(f, json.dumps(res), rel, flush=True)

    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    lines = [
        "# Exact temporal decode: memory (svdc plan and measurement, diffusers in the same run)",
        "",
        f"- date: {datetime.date.today().isoformat()}, commit {_report.commit()}",
        f"- machine: {_report.machine()}; " + ", ".join(f"{k}={v}" for k, v in env.items()),
        f"- reference: diffusers {_report.version('diffusers')} AutoencoderKLTemporalDecoder.decode, torch "
        f"{_report.version('torch')}, fp32, every frame in one window (num_frames = F)",
        "- weights: random, the SVD VAE config; each decode in its own process; peak RSS = VmHWM of that process "
        "(weights, activations, libraries, the output)",
        "- plan: svdc's measuring pass (`VAE.planned_decode_bytes(z, F)`, nothing computed) = the decoder's "
        "arena peak without the CPU kernels' scratch (a few tiles per thread); planned process = plan + weights "
        "(encoder included) + latents + output frames",
    ]
    if args.note:
        lines.append(f"- note: {args.note}")
    h, w = args.size
    lines += ["", f"## Plan at {h}x{w}", "", "| frames | arena plan GB | planned process GB |", "|---|---|---|"]
    for f, (arena, total) in plans.items():
        lines.append(f"| {f} | {arena / GB:.2f} | {total / GB:.2f} |")
    if runs:
        lines += ["", f"## Measured at {h}x{w}", "",
                  "| frames | framework | wall s | CPU s | peak RSS GB | svdc arena peak GB | svdc plan GB | "
                  "max rel diff |", "|---|---|---|---|---|---|---|---|"]
        for f, res, rel in runs:
            for name, r in res.items():
                if "error" in r:
                    lines.append(f"| {f} | {name} | failed: {' '.join(r['error'])[:120]} | | | | | |")
                    continue
                arena = f"{r['arena_peak'] / GB:.2f}" if "arena_peak" in r else ""
                planned = f"{plans[f][0] / GB:.2f}" if name == "svdc" and f in plans else ""
                diff = f"{rel:.1e}" if rel is not None else ""
                lines.append(f"| {f} | {name} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                             f"{r['peak_rss'] / GB:.2f} | {arena} | {planned} | {diff} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
