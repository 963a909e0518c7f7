"""Loading an SVD image-to-video pipeline on the CPU, svdc vs diffusers in the same run: wall time, CPU time and peak
RSS of from_pretrained for one random-weight diffusers folder both load (unet + vae + image_encoder), each load in
its own process, the two sides interleaved, medians over the repeats; with the weight files' pages dropped from the
page cache before each load ("cold": posix_fadvise(DONTNEED), which needs no privileges) and read once before it
("warm"). diffusers maps safetensors lazily, so its load reads almost nothing: the "+ read" column adds one pass over
every parameter (what its first call pays), svdc reads every weight at load (the NaN/Inf check). Results go to
benchmarks/results/load_cpu.md.

    python benchmarks/load_cpu.py --set reduced           (~10 min here, < 2 GB per process, 2.6 GB of files)
    python benchmarks/load_cpu.py --set svd-xt --repeats 3 --out benchmarks/results/load_cpu_svd_xt.md
        (real SVD-XT configs: ~15-20 min on a quiet machine, ~10 GB peak in the writer and in each svdc process,
         14 GB of temporary files in --tmp)
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place)

from benchmarks._report import commit, machine, version  # noqa: E402

COMPONENTS = ("unet", "vae", "image_encoder")
# (label, folder, svdc dtype, diffusers torch_dtype, diffusers variant)
CASES = (
    ("fp32 files, fp32 weights", "fp32", "fp32", "float32", None),
    ("fp16 files, fp16 weights", "fp16", "fp16", "float16", "fp16"),
    ("fp16 files, fp32 weights", "fp16", "fp32", "float32", "fp16"),
)


def _configs(which: str) -> dict:
    """Component configs: the real SVD-XT ones, or the reduced set (the real VAE, a UNet of the real layout at 0.4x
    width, a ViT of the real layout at half width and 2/3 depth)."""
    from transformers import CLIPVisionConfig

    from svdc.configs.clip import VIT_H_14
    from svdc.configs.vae import SVD as SVD_VAE

    vae = {k: v for k, v in SVD_VAE.items() if not k.startswith("_")}
    clip = {k: v for k, v in VIT_H_14.items() if k in CLIPVisionConfig().to_dict()}
    if which == "svd-xt":
        return {"unet": {"num_frames": 25}, "vae": vae, "image_encoder": clip}
    unet = {"num_frames": 25, "block_out_channels": [128, 256, 512, 512], "num_attention_heads": [2, 4, 8, 8]}
    clip = dict(clip, hidden_size=640, intermediate_size=2560, num_hidden_layers=21, num_attention_heads=8)
    return {"unet": unet, "vae": vae, "image_encoder": clip}


def prepare(root: str, which: str) -> dict:
    """Writes root/fp32 (fp32 files) and root/fp16 (the .fp16 variant only) pipeline folders of random weights, one
    component at a time (the writer holds one component); returns {component: parameter count}."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from svdc import tiny

    torch.manual_seed(0)
    cfg = _configs(which)
    build = {"unet": lambda: UNetSpatioTemporalConditionModel(**cfg["unet"]),
             "vae": lambda: AutoencoderKLTemporalDecoder(**cfg["vae"]),
             "image_encoder": lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg["image_encoder"]))}
    index = {"_class_name": "StableVideoDiffusionPipeline", "_diffusers_version": version("diffusers"),
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
             "vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}
    counts = {}
    for sub in ("fp32", "fp16"):
        folder = os.path.join(root, sub)
        os.makedirs(folder)
        Path(folder, "model_index.json").write_text(json.dumps(index, indent=2))
        EulerDiscreteScheduler(**tiny.SCHEDULER_CONFIG).save_pretrained(os.path.join(folder, "scheduler"))
        CLIPImageProcessor().save_pretrained(os.path.join(folder, "feature_extractor"))
    for name in COMPONENTS:
        model = build[name]().eval()
        counts[name] = sum(p.numel() for p in model.parameters())
        model.save_pretrained(os.path.join(root, "fp32", name))
        model.half().save_pretrained(os.path.join(root, "fp16", name), variant="fp16")
        del model
    return counts


def weight_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*", "*.safetensors")))


def set_cache(folder: str, state: str) -> float:
    """Drops ("cold") or reads ("warm") the weight files' pages in the page cache; returns the seconds it took."""
    t0 = time.perf_counter()
    for path in weight_files(folder):
        fd = os.open(path, os.O_RDONLY)
        try:
            if state == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while os.read(fd, 16 << 20):
                    pass
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def cached_bytes(folder: str) -> int:
    """Bytes of the weight files resident in the page cache (mincore on a fresh mapping, which reads nothing)."""
    import ctypes
    import mmap

    import numpy as np

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    total = 0
    for path in weight_files(folder):
        size = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                continue
            vec = (ctypes.c_ubyte * ((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE))()
            if libc.mincore(addr, size, vec) == 0:
                total += int(np.count_nonzero(np.frombuffer(vec, np.uint8) & 1)) * mmap.PAGESIZE
            libc.munmap(addr, size)
        finally:
            os.close(fd)
    return min(total, sum(os.path.getsize(p) for p in weight_files(folder)))


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024


def child(side: str, folder: str, dtype: str, variant: str | None) -> dict:
    """Runs in its own process: imports, then times from_pretrained (and, for diffusers, one read of every weight)."""
    if side == "svdc":
        import svdc

        rss0 = _status_mib("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        pipe = svdc.ImageToVideo.from_pretrained(folder, device="cpu", dtype=dtype)
        load_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        read_s = load_s
        weight_mib = sum(m._native.weight_bytes for m in (pipe.unet, pipe.vae, pipe.image_encoder)) / 2**20
    else:
        import torch
        from diffusers import StableVideoDiffusionPipeline

        rss0 = _status_mib("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        kwargs = {"variant": variant} if variant else {}
        pipe = StableVideoDiffusionPipeline.from_pretrained(folder, torch_dtype=getattr(torch, dtype), **kwargs)
        load_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        with torch.no_grad():  # what the first call pays on top: every weight read once
            for model in (pipe.unet, pipe.vae, pipe.image_encoder):
                for p in model.parameters():
                    p.sum()
        read_s = time.perf_counter() - t0
        weight_mib = sum(p.numel() * p.element_size() for m in (pipe.unet, pipe.vae, pipe.image_encoder)
                         for p in m.parameters()) / 2**20
    return dict(load_s=load_s, cpu_s=cpu_s, read_s=read_s, rss_before_mib=rss0, peak_mib=_status_mib("VmHWM"),
                weight_mib=weight_mib)


def run_child(side: str, folder: str, dtype: str, variant: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--folder", folder, "--dtype", dtype]
    if variant:
        cmd += ["--variant", variant]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(f"{side} {folder} {dtype} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["reduced", "svd-xt"], default="reduced")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cache", default="cold,warm", help="cache states to measure, comma-separated")
    ap.add_argument("--cases", default="0,1,2", help=f"indices into {[c[0] for c in CASES]}")
    ap.add_argument("--tmp", default=None, help="folder for the temporary checkpoint (default: the system's)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load_cpu.md"))
    ap.add_argument("--child", choices=["svdc", "diffusers"])
    ap.add_argument("--folder")
    ap.add_argument("--dtype")
    ap.add_argument("--variant")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.folder, a.dtype, a.variant)))
        return
    cases = [CASES[int(i)] for i in a.cases.split(",")]
    states = a.cache.split(",")
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="svdc-load-bench-", dir=a.tmp) as root:
        t0 = time.perf_counter()
        counts = json.loads(subprocess.run(
            [sys.executable, "-c", f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); "
             f"from benchmarks.load_cpu import prepare; print(json.dumps(prepare({root!r}, {a.set!r})))"],
            check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()[-1])
        print(f"wrote the checkpoints in {time.perf_counter() - t0:.0f} s: {counts}", flush=True)
        sizes = {sub: sum(os.path.getsize(p) for p in weight_files(os.path.join(root, sub))) for sub in ("fp32", "fp16")}
        # The disk's own speed: one cold sequential read of the fp32 files.
        set_cache(os.path.join(root, "fp32"), "cold")
        disk_s = set_cache(os.path.join(root, "fp32"), "warm")
        results: dict = {}
        for r in range(a.repeats):
            for label, sub, dtype, torch_dtype, variant in cases:
                folder = os.path.join(root, sub)
                for state in states:
                    for side in (("svdc", "diffusers") if r % 2 == 0 else ("diffusers", "svdc")):
                        set_cache(folder, state)
                        resident = cached_bytes(folder) / max(1, sizes[sub])
                        res = run_child(side, folder, dtype if side == "svdc" else torch_dtype,
                                        None if side == "svdc" else variant)
                        res["resident_before"] = resident
                        results.setdefault((label, state, side), []).append(res)
                        print(label, state, side, json.dumps(res), flush=True)

    def med(key, label, state, side):
        return statistics.median(x[key] for x in results[(label, state, side)])

    lines = [
        f"# Loading an SVD pipeline on the CPU: svdc vs diffusers ({a.set} component set, random weights)", "",
        f"- machine: {machine()}; 1-minute load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after",
        f"- date: {started}", f"- commit: {commit()}",
        f"- reference: diffusers {version('diffusers')} StableVideoDiffusionPipeline.from_pretrained (torch "
        f"{version('torch')}, transformers {version('transformers')}, accelerate {version('accelerate')}), "
        f"torch_dtype and variant as in each row",
        f"- checkpoint: unet + vae + image_encoder, {sum(counts.values()):,} parameters "
        f"({', '.join(f'{k} {v:,}' for k, v in counts.items())}); files: fp32 {sizes['fp32'] / 2**30:.2f} GiB, "
        f"fp16 {sizes['fp16'] / 2**30:.2f} GiB",
        f"- disk: one cold sequential read of the fp32 files took {disk_s:.2f} s "
        f"({sizes['fp32'] / 2**20 / disk_s:.0f} MiB/s)",
        f"- method: each load in its own process after its imports (svdc / torch + diffusers); sides interleaved, "
        f"{a.repeats} repeats, medians. cold: the files' pages dropped from the page cache (posix_fadvise DONTNEED) "
        f"before each load; warm: the files read once before each load. OpenBLAS variables: "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', 'unset')} (loading runs no BLAS)",
        "- load (s): from_pretrained's wall time; + read (s): diffusers' load plus one pass over every parameter "
        "(its weights are lazily mapped: a first call pays that read); svdc has read every weight at load "
        "(NaN/Inf check), so its two columns are equal. peak RSS: the process's high-water mark (VmHWM), "
        "imports included; growth: peak minus RSS before from_pretrained. svdc's weights of the file's dtype are "
        "the file's mapped pages (page cache), counted in RSS once read.", "",
        "| files / storage | cache | svdc load (s) | diffusers load (s) | ratio | diffusers load + read (s) | "
        "ratio to it | svdc CPU (s) | diffusers CPU (s) | svdc peak RSS / growth (MiB) | "
        "diffusers peak RSS / growth (MiB) | weights (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, *_ in cases:
        for state in states:
            s = {k: med(k, label, state, "svdc") for k in ("load_s", "cpu_s", "peak_mib", "rss_before_mib")}
            d = {k: med(k, label, state, "diffusers") for k in ("load_s", "cpu_s", "read_s", "peak_mib",
                                                                  "rss_before_mib")}
            w = med("weight_mib", label, state, "svdc")
            lines.append(
                f"| {label} | {state} | {s['load_s']:.2f} | {d['load_s']:.2f} | {s['load_s'] / d['load_s']:.2f} | "
                f"{d['read_s']:.2f} | {s['load_s'] / d['read_s']:.2f} | {s['cpu_s']:.2f} | {d['cpu_s']:.2f} | "
                f"{s['peak_mib']:.0f} / {s['peak_mib'] - s['rss_before_mib']:.0f} | "
                f"{d['peak_mib']:.0f} / {d['peak_mib'] - d['rss_before_mib']:.0f} | {w:.0f} |")
    lines += ["", "All runs (load s, peak MiB, share of the files in the page cache before the load):", ""]
    for (label, state, side), xs in results.items():
        lines.append(f"- {label}, {state}, {side}: " + ", ".join(
            f"{x['load_s']:.2f} s / {x['peak_mib']:.0f} MiB / {x['resident_before']:.0%}" for x in xs))
    lines.append("")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
