"""The CPU GEMM paths op by op on the real SVD UNet/VAE layer shapes: weights packed at load with svdc's own
microkernel (kernels/cpu/pgemm.c) against the path an op takes when its weight was not packed at load, through the
op-test surface (svdc._C_testing). That per-call path is OpenBLAS SGEMM (scipy-openblas32, repacking the weight in
every call) for linear, 1x1 and temporal convs, and svdc's GEMM on panels packed in the call (for Winograd: the
weight transform too) for Winograd and im2col convs.

Per shape and thread count (1 and 2, each in its own subprocess with OMP_NUM_THREADS set), the two paths run
interleaved `--repeats` times; the table gives the median process CPU time per call (all threads), GFLOP per
CPU-second (for Winograd convs the direct-convolution FLOP count, 2*N*O*C*9*Ho*Wo, so the figure compares paths,
not arithmetic), the ratio, and the largest difference between the two outputs relative to the output's largest
magnitude. CPU time rather than wall time because the machine may be shared.

    python benchmarks/gemm_cpu.py [--repeats 5] [--threads 1 2] [--kernels auto] [--quick]
Writes benchmarks/results/gemm_cpu.md (--out to change).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, commit, machine  # noqa: E402

# (label, op, x shape, w shape, extra): SVD UNet at a 32x32 latent (B*F = 2 images of each layer kind, so a call
# takes ~0.1 s; the deepest levels also with all 8 images of B=2, F=4, where the Winograd GEMMs group images), the
# transformer's linears at 32x32 tokens, and VAE decoder layers at a 32x32 latent.
SHAPES = [
    ("unet conv3x3 320->320 32x32 (Winograd)", "conv2d", (2, 320, 32, 32), (320, 320, 3, 3), {}),
    ("unet conv3x3 640->640 16x16 (Winograd)", "conv2d", (2, 640, 16, 16), (640, 640, 3, 3), {}),
    ("unet conv3x3 1280->1280 8x8 (Winograd)", "conv2d", (2, 1280, 8, 8), (1280, 1280, 3, 3), {}),
    ("unet conv3x3 1280->1280 8x8, 8 images (Winograd)", "conv2d", (8, 1280, 8, 8), (1280, 1280, 3, 3), {}),
    ("unet conv3x3 1280->1280 4x4, 8 images (Winograd)", "conv2d", (8, 1280, 4, 4), (1280, 1280, 3, 3), {}),
    ("unet conv1x1 320->640 32x32", "conv2d", (2, 320, 32, 32), (640, 320, 1, 1), {}),
    ("unet conv_in 3x3 8->320 32x32 (im2col)", "conv2d", (2, 8, 32, 32), (320, 8, 3, 3), {}),
    ("unet temporal conv 320->320 32x32, 4 frames", "conv_temporal", (4, 320, 32, 32), (320, 320, 3),
     {"frames": 4}),
    ("unet linear 2048x320 -> 320 (to_q)", "linear", (2048, 320), (320, 320), {}),
    ("unet linear 2048x320 -> 2560 (GEGLU proj)", "linear", (2048, 320), (2560, 320), {}),
    ("unet linear 2048x1280 -> 320 (ff out)", "linear", (2048, 1280), (320, 1280), {}),
    ("unet linear 2x320 -> 1280 (time embedding)", "linear", (2, 320), (1280, 320), {}),
    ("unet linear 16x1024 -> 1280 (to_k, image embedding)", "linear", (16, 1024), (1280, 1024), {}),
    ("vae conv3x3 512->512 32x32 (Winograd)", "conv2d", (1, 512, 32, 32), (512, 512, 3, 3), {}),
    ("vae conv_in 3x3 4->512 32x32 (im2col)", "conv2d", (1, 4, 32, 32), (512, 4, 3, 3), {}),
]
QUICK = {0, 4, 5, 7, 8, 9, 10, 11}

CHILD = r"""
import json, sys, time
import numpy as np
import svdc
from svdc._native import testing_ops
T = testing_ops()
shapes, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
rows = []
for label, op, xs, ws, extra in shapes:
    x = rng.standard_normal(xs, dtype=np.float32)
    w = (rng.standard_normal(ws, dtype=np.float32) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0], dtype=np.float32)
    if op == "linear":
        call = lambda: T.linear(x, w, b)
        flops = 2 * xs[0] * ws[0] * ws[1]
    elif op == "conv2d":
        call = lambda: T.conv2d(x, w, b, stride=(1, 1), padding=(ws[2] // 2,) * 4)
        flops = 2 * xs[0] * ws[0] * ws[1] * ws[2] * ws[3] * xs[2] * xs[3]
    else:
        F = extra["frames"]
        call = lambda: T.conv_temporal(x, F, w, b)
        flops = 2 * xs[0] * ws[0] * ws[1] * 3 * xs[2] * xs[3]
    handle = None
    def run(packed):
        global handle
        if packed and handle is None: handle = T.prepack(w)
        if not packed: handle = None  # unregisters the packed form: the op takes the OpenBLAS path
        hits = T.packed_hits()
        c0, t0 = time.process_time(), time.perf_counter()
        y = call()
        c1, t1 = time.process_time(), time.perf_counter()
        if T.packed_hits() != hits + packed: raise SystemExit(f"{label}: packed={packed} path not taken")
        return y, c1 - c0, t1 - t0
    run(True); run(False)  # warm-up (arena growth, page faults)
    cpu = {True: [], False: []}; wall = {True: [], False: []}
    for _ in range(repeats):
        for packed in (True, False):
            y, c, t = run(packed)
            cpu[packed].append(c); wall[packed].append(t)
            if packed: yp = y
            else: yu = y
    diff = float(np.abs(yp - yu).max() / np.abs(yu).max())
    med = lambda v: float(np.median(v))
    rows.append({"label": label, "gflop": flops / 1e9, "cpu_packed": med(cpu[True]), "cpu_blas": med(cpu[False]),
                 "wall_packed": med(wall[True]), "wall_blas": med(wall[False]), "rel_diff": diff})
info = svdc._C.build_info()
print(json.dumps({"kernels": info.get("cpu_kernels", "?"), "rows": rows}))
"""

KERNEL_NAMES = {"avx2": "svdc avx2-fma 6x16 (kernels/cpu/pgemm.c)", "baseline": "svdc vec4 6x16 (kernels/cpu/pgemm.c)"}


# OpenBLAS picks its kernels from the CPU (variables unset, as on a user's machine) unless OPENBLAS_CORETYPE pins them.
OPENBLAS_ENVS = {"unset": {}, "OPENBLAS_CORETYPE=Haswell": {"OPENBLAS_CORETYPE": "Haswell"}}


def run_child(shapes, repeats, threads, kernels, openblas_env):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_ENVS[openblas_env], PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads),
               SVDC_CPU_KERNELS=kernels)
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(shapes), str(repeats)], env=env, cwd="/",
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def per_call_path(label: str) -> str:
    if "Winograd" in label or "im2col" in label:
        return "svdc GEMM, weight packed per call"
    return "OpenBLAS SGEMM"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--kernels", default="auto", choices=["auto", "baseline", "avx2"])
    ap.add_argument("--quick", action="store_true", help="five representative shapes only")
    ap.add_argument("--openblas", nargs="+", default=list(OPENBLAS_ENVS), choices=list(OPENBLAS_ENVS),
                    help="OpenBLAS settings to run the comparison under (default: both)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gemm_cpu.md")
    args = ap.parse_args()
    start = time.perf_counter()
    shapes = [s for i, s in enumerate(SHAPES) if not args.quick or i in QUICK]
    results = {(e, t): run_child(shapes, args.repeats, t, args.kernels, e) for e in args.openblas for t in args.threads}
    selected = next(iter(results.values()))["kernels"]
    assert all(r["kernels"] == selected for r in results.values())
    variant = "avx2" if "avx2" in str(selected).split("(")[0] else "baseline"
    lines = [
        "# CPU GEMM paths: weights packed at load (svdc microkernel) vs packed per call",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit()}",
        f"- Machine: {machine()}",
        f"- Kernel variant: {selected}; packed path: {KERNEL_NAMES[variant]}; per-call path: see the column "
        "(OpenBLAS = scipy-openblas32 SGEMM, single-threaded per task)",
        "- OpenBLAS settings (column 'OpenBLAS env'): `unset` = OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE both unset "
        "(OpenBLAS picks its kernels from the CPU, as on a user's machine); `OPENBLAS_CORETYPE=Haswell` pins its "
        "AVX2 kernels. They affect only the OpenBLAS column.",
        f"- Command: `python benchmarks/gemm_cpu.py --repeats {args.repeats} --threads "
        f"{' '.join(map(str, args.threads))} --kernels {args.kernels}{' --quick' if args.quick else ''}`"
        f" (run time: {{elapsed:.0f}} s)",
        "- Median of interleaved runs; CPU time = process CPU time of all threads per call; GFLOP/CPU-s = FLOP / CPU "
        "time (Winograd rows count direct-convolution FLOP); rel diff = max |packed - per-call| / max |per-call|.",
        "",
        "| layer | per-call path | OpenBLAS env | threads | GFLOP | packed ms CPU | per-call ms CPU | packed GFLOP/CPU-s | "
        "per-call GFLOP/CPU-s | per-call/packed CPU time | packed ms wall | per-call ms wall | rel diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (e, t), res in results.items():
        for r in res["rows"]:
            lines.append(
                f"| {r['label']} | {per_call_path(r['label'])} | {e} | {t} | {r['gflop']:.2f} | {1e3 * r['cpu_packed']:.1f} | {1e3 * r['cpu_blas']:.1f} | "
                f"{r['gflop'] / r['cpu_packed']:.1f} | {r['gflop'] / r['cpu_blas']:.1f} | "
                f"{r['cpu_blas'] / r['cpu_packed']:.2f}x | {1e3 * r['wall_packed']:.1f} | {1e3 * r['wall_blas']:.1f} | "
                f"{r['rel_diff']:.1e} |")
    text = "\n".join(lines).replace("{elapsed:.0f}", f"{time.perf_counter() - start:.0f}")
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
