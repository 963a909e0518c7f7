"""Image-to-video end to end on the CPU, svdc vs diffusers in the same run: a random-weight SVD pipeline (svdc.tiny's
configs, or with --config real the full SVD component configs), saved once as a diffusers folder both load, each
side and each svdc variant (SVDC_PREPACK mode, stage release on/off) in its own process so peak RSS is its own;
with the OpenBLAS variables as set in the environment and, when any is set, with both unset. Reports load, first
call, repeated calls, per-stage times (image encoder, VAE encode, UNet forwards, the rest of the sampling loop,
decode), peak RSS, the CPU kernel variant, and the frames' agreement; writes
benchmarks/results/img2vid_cpu[_real].md (or --out).

    OMP_NUM_THREADS=2 python benchmarks/img2vid_cpu.py [--frames 6 --steps 8 --size 64]       (~1 min, < 1 GB)
    OMP_NUM_THREADS=2 python benchmarks/img2vid_cpu.py --config mid --frames 4 --steps 3 --size 128  (< 3 GB)
    OMP_NUM_THREADS=2 python benchmarks/img2vid_cpu.py --config real --frames 4 --steps 3 --size 128 --repeat 2
        (full-size UNet/VAE/ViT-H weights at a small picture: see the docstring of main for time and memory)
"""
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place)

from benchmarks._report import commit, machine, version as _version  # noqa: E402

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
CONFIG_NAMES = {"tiny": "svdc.tiny configs", "real": "full SVD component configs",
                "mid": "mid-size configs (the SVD VAE, ViT-H with 8 of its 32 layers, a UNet with channels 128-512)"}
STAGES = ("image_encoder", "vae_encode", "unet", "sampling_rest", "decode", "other")


def prepare(folder: str, config: str = "tiny") -> None:
    """The tiny (or full-size, config="real") diffusers pipeline with perturbed random weights, saved with
    save_pretrained."""
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from svdc import tiny

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    def perturb(m):
        with torch.no_grad():
            for _, p in sorted(m.named_parameters()):
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        return m.eval()

    if config in ("real", "mid"):  # the SVD VAE, the UNet class defaults (= SVD's UNet), ViT-H/14 (image encoder)
        from svdc.configs.clip import VIT_H_14
        from svdc.configs.vae import SVD as SVD_VAE

        vae_cfg = {k: v for k, v in SVD_VAE.items() if not k.startswith("_")}
        unet_cfg = {}
        clip_cfg = {k: v for k, v in VIT_H_14.items() if k in CLIPVisionConfig().to_dict()}
        if config == "mid":  # a machine with ~3 GB to spare: 8 of ViT-H's 32 layers, the UNet at 2/5 of the width
            clip_cfg["num_hidden_layers"] = 8
            unet_cfg = dict(block_out_channels=(128, 256, 512, 512), num_attention_heads=(2, 4, 8, 8))
    else:
        vae_cfg, unet_cfg, clip_cfg = tiny.VAE_CONFIG, tiny.UNET_CONFIG, tiny.IMAGE_ENCODER_CONFIG
    pipe = StableVideoDiffusionPipeline(
        vae=perturb(AutoencoderKLTemporalDecoder(**vae_cfg)),
        image_encoder=perturb(CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_cfg))),
        unet=perturb(UNetSpatioTemporalConditionModel(**unet_cfg)),
        scheduler=EulerDiscreteScheduler(**tiny.SCHEDULER_CONFIG), feature_extractor=CLIPImageProcessor())
    pipe.save_pretrained(folder)


class _Timer:
    """Accumulates wall time and process CPU time (all threads) per stage name: times[name] = [wall, cpu]."""

    def __init__(self):
        self.times = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                acc = self.times.setdefault(name, [0.0, 0.0])
                acc[0] += time.perf_counter() - t
                acc[1] += time.process_time() - c
        return timed


class _TimedModel:
    """Stands in for a pipeline component: times its calls, forwards every other attribute."""

    def __init__(self, model, timer: _Timer, name: str):
        self._model, self._call = model, timer.wrap(name, model.__call__)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _svdc_pipe(folder: str, timer: _Timer, release: bool):
    """svdc's pipeline with its stages timed: the image encoder and UNet calls, vae.encode, the whole sampling
    loop (its UNet calls subtracted later) and decode (which includes the stage release before it)."""
    import svdc

    pipe = svdc.ImageToVideo.from_pretrained(folder, device="cpu", release_stages=release)
    pipe.image_encoder = _TimedModel(pipe.image_encoder, timer, "image_encoder")
    pipe.unet = _TimedModel(pipe.unet, timer, "unet")
    pipe.vae.encode = timer.wrap("vae_encode", pipe.vae.encode)
    pipe.sample = timer.wrap("sampling", pipe.sample)
    pipe.decode = timer.wrap("decode", pipe.decode)
    return pipe


def _diffusers_pipe(folder: str, timer: _Timer):
    import torch
    from diffusers import StableVideoDiffusionPipeline

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    pipe = StableVideoDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    pipe._encode_image = timer.wrap("image_encoder", pipe._encode_image)
    pipe._encode_vae_image = timer.wrap("vae_encode", pipe._encode_vae_image)
    pipe.unet.forward = timer.wrap("unet", pipe.unet.forward)
    pipe.decode_latents = timer.wrap("decode", pipe.decode_latents)
    return pipe


def _stages(times: dict, call: tuple[float, float]) -> dict:
    """Per-stage [wall, cpu] seconds of one call; sampling_rest = the sampling loop less its UNet forwards (svdc: the
    sampler, the host copies and checks of the model input/output), other = the call less every stage."""
    out = {}
    for j in range(2):
        st = {k: times.get(k, [0.0, 0.0])[j] for k in ("image_encoder", "vae_encode", "unet", "decode")}
        st["sampling_rest"] = max(times["sampling"][j] - st["unet"], 0.0) if "sampling" in times else 0.0
        st["other"] = call[j] - sum(st.values())
        for k, v in st.items():
            out.setdefault(k, [0.0, 0.0])[j] = v
    return out


def child(side: str, folder: str, frames: int, steps: int, size: int, repeat: int, release: bool) -> dict:
    """Runs in its own process: load, the first call, `repeat` more calls; prints a JSON line."""
    import numpy as np
    from PIL import Image

    from svdc import tiny

    timer = _Timer()
    t0 = time.perf_counter()
    if side == "svdc":
        pipe = _svdc_pipe(folder, timer, release)

        def run():
            return pipe(image, num_frames=frames, num_inference_steps=steps, height=size, width=size, seed=0,
                        progress=False).frames
    else:
        import torch

        pipe = _diffusers_pipe(folder, timer)

        def run():
            with torch.no_grad():
                return pipe(image, num_frames=frames, num_inference_steps=steps, height=size, width=size,
                            generator=torch.Generator().manual_seed(0), output_type="np").frames[0]

    image = Image.fromarray(tiny.test_image(size, size))
    load_s = time.perf_counter() - t0
    rss_load_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    calls, cpus, stages = [], [], []
    out = None
    for _ in range(1 + repeat):
        timer.times.clear()
        t, c = time.perf_counter(), time.process_time()
        frames_out = run()
        calls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        stages.append(_stages(dict(timer.times), (calls[-1], cpus[-1])))
        if out is None:
            out = np.asarray(frames_out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if out.dtype != np.uint8:
        out = np.round(out * 255).astype(np.uint8)
    info = dict(load_s=load_s, first_s=calls[0], calls_s=calls[1:], first_cpu_s=cpus[0], calls_cpu_s=cpus[1:],
                stages=stages, total_s=time.perf_counter() - t0,
                rss_load_mb=rss_load_mb, rss_mb=rss_mb, checksum=int(out.astype(np.int64).sum()),
                shape=list(out.shape), frames=out.tolist() if out.size <= (1 << 20) else None)
    if side == "svdc":
        import svdc

        b = svdc._C.build_info()
        info["kernels"] = f"{b.get('cpu_kernels')} ({b.get('blas_config', b.get('blas'))})"
    else:
        import torch

        info["kernels"] = f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})"
    return info


def _variants(prepack_modes: list[str], release_modes: list[str]) -> list[tuple[str, str, dict, bool]]:
    """(label, side, extra env, release) for every process to run: diffusers, then svdc per mode."""
    out = [("diffusers", "diffusers", {}, False)]
    for p in prepack_modes:
        for r in release_modes:
            rel = r == "on"
            out.append((f"svdc, SVDC_PREPACK={p}, release {r}", "svdc", {"SVDC_PREPACK": p}, rel))
    return out


def _openblas_envs() -> list[tuple[str, dict]]:
    """The environments to run in: as set here, and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset when any is set."""
    env = dict(os.environ)
    set_vars = {k: env[k] for k in OPENBLAS_VARS if k in env}
    if not set_vars:
        return [("OpenBLAS variables unset (as in this environment)", env)]
    unset = {k: v for k, v in env.items() if k not in OPENBLAS_VARS}
    shown = ", ".join(f"{k}={v}" for k, v in set_vars.items())
    return [(f"as set ({shown})", env), ("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset", unset)]


def _median(xs):
    import numpy as np

    return float(np.median(xs)) if xs else float("nan")


def main():
    """Full-size command (--config real --frames 4 --steps 3 --size 128 --repeat 2), estimates for a 2-core
    machine: writing the folder ~2 min and 9 GB of temporary files; per process ~1-2 min (load ~4 s, 3 calls of
    ~6-16 s); 4 processes per OpenBLAS setting. Peak RSS per process: diffusers ~10 GB, svdc 6-13 GB by mode (the
    parent holds nothing while the children run)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="calls after the first (the repeated-call figures)")
    ap.add_argument("--config", choices=["tiny", "mid", "real"], default="tiny",
                    help="tiny: svdc.tiny; real: the full SVD components; mid: the real VAE, 8 ViT-H layers, a UNet "
                         "at 2/5 of SVD's width (about 2 GB of weights)")
    ap.add_argument("--prepack", default="1,0", help="SVDC_PREPACK modes for the svdc processes (comma-separated)")
    ap.add_argument("--release", default="on,off", help="svdc stage release modes: on, off or both")
    ap.add_argument("--child", choices=["svdc", "diffusers"])
    ap.add_argument("--release-stages", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--folder")
    ap.add_argument("--out")
    a = ap.parse_args()
    suffix = "" if a.config == "tiny" else f"_{a.config}"
    a.out = a.out or str(ROOT / "benchmarks" / "results" / f"img2vid_cpu{suffix}.md")
    if a.child:
        print(json.dumps(child(a.child, a.folder, a.frames, a.steps, a.size, a.repeat, bool(a.release_stages))))
        return
    import numpy as np

    prepack_modes = [m.strip() for m in a.prepack.split(",") if m.strip()]
    release_modes = [m.strip() for m in a.release.split(",") if m.strip()]
    if not set(release_modes) <= {"on", "off"}:
        sys.exit(f"--release: expected 'on', 'off' or 'on,off', got {a.release!r}")
    load_before = os.getloadavg()
    results = []  # (env label, variant label, result)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                        f"from benchmarks.img2vid_cpu import prepare; prepare({folder!r}, {a.config!r})"],
                       check=True, cwd=ROOT)
        for env_label, env in _openblas_envs():
            for label, side, extra, rel in _variants(prepack_modes, release_modes):
                cmd = [sys.executable, __file__, "--child", side, "--folder", folder, "--frames", str(a.frames),
                       "--steps", str(a.steps), "--size", str(a.size), "--repeat", str(a.repeat),
                       "--release-stages", str(int(rel))]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**env, **extra})
                if out.returncode:
                    sys.exit(f"{label} ({env_label}) failed:\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.append((env_label, label, r))
                print(env_label, "|", label, {k: v for k, v in r.items() if k not in ("frames", "stages")},
                      flush=True)

    lines = [
        f"# img2vid on the CPU: svdc vs diffusers ({a.config} random-weight SVD pipeline)", "",
        f"- machine: {machine()}, {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP threads; load average "
        f"(1/5/15 min) before {'/'.join(f'{v:.1f}' for v in load_before)}, after "
        f"{'/'.join(f'{v:.1f}' for v in os.getloadavg())}",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- reference: diffusers StableVideoDiffusionPipeline (torch {_version('torch')}, diffusers "
        f"{_version('diffusers')}), fp32 CPU, same folder, same seed",
        f"- workload: {a.frames} frames, {a.steps} steps, {a.size}x{a.size}, CFG on (guidance 1 -> 3), "
        f"{CONFIG_NAMES[a.config]}; each row its own process "
        f"(RSS includes its imports: numpy vs torch); 1 first call + {a.repeat} repeated calls",
        "- svdc modes: SVDC_PREPACK (weights packed at load: 1 = Winograd/im2col convs, 0 = nothing, all = every "
        "GEMM weight); release on/off = ImageToVideo(release_stages=...): each component gives back its arena, its "
        "resident checkpoint pages and its packed weights while the other stages run",
        "",
    ]
    for env_label in dict.fromkeys(e for e, _, _ in results):
        rows = [(label, r) for e, label, r in results if e == env_label]
        ref = rows[0][1]
        ref_call = _median(ref["calls_s"]) if ref["calls_s"] else ref["first_s"]
        ref_cpu = _median(ref["calls_cpu_s"]) if ref["calls_cpu_s"] else ref["first_cpu_s"]
        lines += [f"## {env_label}", "",
                  "| process | kernels | load (s) | first call (s) | repeated call, median (s) | call / diffusers | "
                  "repeated call CPU (s) | CPU / diffusers | peak RSS (MiB) | RSS / diffusers | RSS after load (MiB) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r in rows:
            call = _median(r["calls_s"]) if r["calls_s"] else r["first_s"]
            cpu = _median(r["calls_cpu_s"]) if r["calls_cpu_s"] else r["first_cpu_s"]
            lines.append(f"| {label} | {r['kernels']} | {r['load_s']:.2f} | {r['first_s']:.2f} | {call:.2f} | "
                         f"{call / ref_call:.2f} | {cpu:.2f} | {cpu / ref_cpu:.2f} | {r['rss_mb']:.0f} | "
                         f"{r['rss_mb'] / ref['rss_mb']:.2f} | {r['rss_load_mb']:.0f} |")
        for j, what in enumerate(("wall", "process CPU (all threads)")):
            lines += ["", f"Per stage, {what} seconds (median over the repeated calls; the first call's in "
                      "brackets). sampling_rest: the sampling loop less the UNet forwards (sampler, host copies, "
                      "checks); decode includes svdc's stage release before it; other: the rest of the call.", "",
                      "| process | " + " | ".join(STAGES) + " |", "|---|" + "---:|" * len(STAGES)]
            for label, r in rows:
                later = r["stages"][1:] or r["stages"]
                cells = [f"{_median([s[k][j] for s in later]):.2f} ({r['stages'][0][k][j]:.2f})" for k in STAGES]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        agree = []
        for label, r in rows[1:]:
            if r["frames"] is not None and ref["frames"] is not None:
                diff = np.abs(np.array(r["frames"], np.int64) - np.array(ref["frames"], np.int64))
                agree.append(f"{label}: {np.mean(diff <= 1):.4%} of pixels within 1 level of diffusers "
                             f"(max diff {int(diff.max())})")
            else:
                agree.append(f"{label}: checksum {r['checksum']} (diffusers {ref['checksum']})")
        lines += ["", "Frames: " + "; ".join(agree) + ".", ""]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
