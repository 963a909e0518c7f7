"""VAE on the CPU, svdc vs diffusers in the same run: wall time, CPU time and peak RSS of encode (1 frame) and
temporal decode (F frames, every frame in one window on both sides: exact, no chunking), each measured in its own
child process with the same thread count and the same random SVD-config weights. With --openblas both, every
measurement runs twice: with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set in the environment and with both unset (one
run when they are unset already). The kernels that ran are named (svdc's CPU variant, its GEMM microkernel, the
Winograd tile rule; torch's BLAS/ISA). Usage:
  OMP_NUM_THREADS=2 python benchmarks/vae_cpu.py [--tasks encode decode] [--encode 576x1024] [--decode 14x320x576]
      [--openblas as-set|both] [--repeats 1] [--out benchmarks/results/vae_cpu.md]"""
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

    times, cpu_times = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = run()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    result = {
        "framework": args.framework, "task": args.task, "seconds": min(times), "all_seconds": times,
        "cpu_seconds": min(cpu_times),
        "peak_rss_mb": _peak_mb(), "rss_after_load_mb": rss_loaded, "threads": threads,
        "out_shape": list(out.shape), "out_checksum": float(np.abs(out).mean()),
    }
    if args.framework == "svdc":
        result["arena_peak_mb"] = model.last_peak_bytes / 2**20
        info = svdc._C.build_info()
        tiles = os.environ.get("SVDC_WINOGRAD_TILE") or "F(4x4) for images of >= 512 4x4 tiles, else F(2x2)"
        result["kernels"] = f"svdc {info['cpu_kernels']} kernels (6x16 packed GEMM), Winograd {tiles}"
    else:
        result["kernels"] = f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}"
    np.save(os.path.join(weights_dir, f"out_{args.framework}_{args.task}.npy"), out)
    print(json.dumps(result))


OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _openblas_label(env):
    return ", ".join(f"{k}={env.get(k, 'unset')}" for k in OPENBLAS_VARS)


def _child(framework, task, size, weights, repeats, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--framework", framework, "--task", task,
           "--weights", weights, "--repeats", str(repeats), "--size", *map(str, size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
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
    p.add_argument("--tasks", nargs="+", choices=["encode", "decode"], default=["encode", "decode"])
    p.add_argument("--openblas", choices=["as-set", "both"], default="both",
                   help="run with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set only, or also with both unset")
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
    if len(enc) != 2 or len(dec) != 3 or min(enc + dec) < 1 or any(v % 8 for v in enc + dec[1:]):
        p.error(f"--encode HxW and --decode FxHxW with H, W multiples of 8, got {args.encode!r}, {args.decode!r}")
    envs = [os.environ.copy()]
    if args.openblas == "both" and any(k in os.environ for k in OPENBLAS_VARS):
        envs.append({k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS})
    with tempfile.TemporaryDirectory(prefix="svdc-vae-bench-") as tmp:
        torch.manual_seed(0)
        cfg = {k: v for k, v in vae_configs.preset("svd").items() if k != "_class_name"}
        AutoencoderKLTemporalDecoder(**cfg).save_pretrained(tmp)  # random weights, the real sizes
        rows = []
        for task, size in (("encode", enc), ("decode", dec)):
            if task not in args.tasks:
                continue
            for env in envs:
                res = {fw: _child(fw, task, size, tmp, args.repeats, env) for fw in ("diffusers", "svdc")}
                a = np.load(os.path.join(tmp, f"out_svdc_{task}.npy"))
                b = np.load(os.path.join(tmp, f"out_diffusers_{task}.npy"))
                rel = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                rows.append((task, size, res, rel, _openblas_label(env)))
                print(task, size, _openblas_label(env), json.dumps(res), f"max|svdc-ref|/max|ref| = {rel:.2e}",
                      flush=True)

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
        "- decode: every frame in one window on both sides (diffusers' decode(z, num_frames=F), i.e. "
        "decode_chunk_size = F; svdc's streamed exact decode)",
        f"- kernels: {rows[0][2]['svdc']['kernels']}; {rows[0][2]['diffusers']['kernels']}",
    ]
    if args.note:
        lines.append(f"- note: {args.note}")
    lines += ["", "| task | size | OpenBLAS | diffusers s | svdc s | time ratio svdc/diffusers | diffusers CPU s | "
              "svdc CPU s | diffusers peak RSS MB | svdc peak RSS MB | svdc arena peak MB | max rel diff |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for task, size, res, rel, blas in rows:
        d, s = res["diffusers"], res["svdc"]
        label = "1 frame %dx%d" % size if task == "encode" else "%d frames %dx%d" % size
        lines.append(f"| {task} | {label} | {blas} | {d['seconds']:.2f} | {s['seconds']:.2f} | "
                     f"{s['seconds'] / d['seconds']:.2f} | {d['cpu_seconds']:.1f} | {s['cpu_seconds']:.1f} | "
                     f"{d['peak_rss_mb']:.0f} | {s['peak_rss_mb']:.0f} | {s['arena_peak_mb']:.0f} | {rel:.1e} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
