"""VAE on the CPU, svdc vs diffusers in the same run: wall time and peak RSS of encode (1 frame) and temporal decode
(F frames), each measured in its own child process with the same thread count and the same random SVD-config
weights. Usage: OMP_NUM_THREADS=2 python benchmarks/vae_cpu.py [--encode 576x1024] [--decode 14x320x576]
[--repeats 1] [--out benchmarks/results/vae_cpu.md]"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's over fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args):
    """One framework, one task: load, warm nothing up (first-call time is what a user sees), time `repeats` calls."""
    import numpy as np

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    weights_dir = args.weights
    rng = np.random.default_rng(0)
    if args.task == "encode":
        h, w = args.size
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
    else:
        f, h, w = args.size
        x = rng.standard_normal((f, 4, h // 8, w // 8)).astype(np.float32)
    if args.framework == "svdc":
        sys.path.insert(0, ROOT)
        import svdc

        svdc._C.set_num_threads(threads)
        model = svdc.VAE.from_pretrained(weights_dir, device="cpu")
        rss_loaded = _rss_mb()
        run = (lambda: model.encode(x)) if args.task == "encode" else (lambda: model.decode(x, num_frames=x.shape[0]))
    else:
        import torch
        from diffusers import AutoencoderKLTemporalDecoder

        torch.set_num_threads(threads)
        model = AutoencoderKLTemporalDecoder.from_pretrained(weights_dir).eval()
        rss_loaded = _rss_mb()
        xt = torch.from_numpy(x)

        def run():
            with torch.no_grad():
                if args.task == "encode":
                    return model.encode(xt).latent_dist.mode().numpy()
                return model.decode(xt, num_frames=xt.shape[0]).sample.numpy()

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    result = {
        "framework": args.framework, "task": args.task, "seconds": min(times), "all_seconds": times,
        "peak_rss_mb": _peak_mb(), "rss_after_load_mb": rss_loaded, "threads": threads,
        "out_shape": list(out.shape), "out_checksum": float(np.abs(out).mean()),
    }
    if args.framework == "svdc":
        result["arena_peak_mb"] = model.last_peak_bytes / 2**20
    np.save(os.path.join(weights_dir, f"out_{args.framework}_{args.task}.npy"), out)
    print(json.dumps(result))


def _child(framework, task, size, weights, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--framework", framework, "--task", task,
           "--weights", weights, "--repeats", str(repeats), "--size", *map(str, size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"{framework} {task} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--framework", choices=["svdc", "diffusers"])
    p.add_argument("--task", choices=["encode", "decode"])
    p.add_argument("--weights")
    p.add_argument("--size", type=int, nargs="+")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--encode", default="576x1024", help="HxW of the 1-frame encode")
    p.add_argument("--decode", default="14x320x576", help="FxHxW of the decode (pixels)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "vae_cpu.md"))
    p.add_argument("--note", default="")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import numpy as np
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    sys.path.insert(0, ROOT)
    from svdc.configs import vae as vae_configs

    enc = tuple(int(v) for v in args.encode.split("x"))
    dec = tuple(int(v) for v in args.decode.split("x"))
    with tempfile.TemporaryDirectory(prefix="svdc-vae-bench-") as tmp:
        torch.manual_seed(0)
        cfg = {k: v for k, v in vae_configs.preset("svd").items() if k != "_class_name"}
        AutoencoderKLTemporalDecoder(**cfg).save_pretrained(tmp)  # random weights, the real sizes
        rows = []
        for task, size in (("encode", enc), ("decode", dec)):
            res = {fw: _child(fw, task, size, tmp, args.repeats) for fw in ("diffusers", "svdc")}
            a = np.load(os.path.join(tmp, f"out_svdc_{task}.npy"))
            b = np.load(os.path.join(tmp, f"out_diffusers_{task}.npy"))
            rel = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
            rows.append((task, size, res, rel))
            print(task, size, json.dumps(res), f"max|svdc-ref|/max|ref| = {rel:.2e}", flush=True)

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import diffusers

    lines = [
        "# VAE on the CPU: svdc vs diffusers",
        "",
        f"- date: {datetime.date.today().isoformat()}, commit {commit}",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs visible, threads = {rows[0][2]['svdc']['threads']} "
        f"for both (OMP_NUM_THREADS; torch.set_num_threads); shared with other jobs, so times are indicative",
        f"- reference: diffusers {diffusers.__version__} AutoencoderKLTemporalDecoder, torch {torch.__version__}, fp32",
        "- weights: random, SVD VAE config (97.7 M parameters); each measurement in its own process; time of the "
        f"first call (best of {args.repeats}); peak RSS = the process's VmHWM (weights + activations + libraries)",
    ]
    if args.note:
        lines.append(f"- note: {args.note}")
    lines += ["", "| task | size | diffusers s | svdc s | time ratio svdc/diffusers | diffusers peak RSS MB | "
              "svdc peak RSS MB | svdc arena peak MB | max rel diff |", "|---|---|---|---|---|---|---|---|---|"]
    for task, size, res, rel in rows:
        d, s = res["diffusers"], res["svdc"]
        label = "1 frame %dx%d" % size if task == "encode" else "%d frames %dx%d" % size
        lines.append(f"| {task} | {label} | {d['seconds']:.2f} | {s['seconds']:.2f} | "
                     f"{s['seconds'] / d['seconds']:.2f} | {d['peak_rss_mb']:.0f} | {s['peak_rss_mb']:.0f} | "
                     f"{s['arena_peak_mb']:.0f} | {rel:.1e} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
