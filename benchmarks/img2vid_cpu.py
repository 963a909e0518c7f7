"""Image-to-video end to end on the CPU, svdc vs diffusers in the same run: a random-weight SVD pipeline (svdc.tiny's
configs, or with --config real the full SVD component configs), saved once as a diffusers folder both load, each side
in its own process so peak RSS is its own; writes total time, per-call time and peak RSS with their ratios to
benchmarks/results/img2vid_cpu[_real].md (machine, date, commit).

    OMP_NUM_THREADS=2 python benchmarks/img2vid_cpu.py [--frames 6 --steps 8 --size 64]   (~15 s, < 1 GB)
    OMP_NUM_THREADS=2 python benchmarks/img2vid_cpu.py --config real --frames 4 --steps 3 --size 128 --repeat 1
        (full-size UNet/VAE/ViT-H weights at a small picture: ~10 min, ~13 GB per side, 9 GB of temporary files)
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

    if config == "real":  # the SVD VAE, the UNet class defaults (= SVD's UNet), ViT-H/14 for the image encoder
        from svdc.configs.clip import VIT_H_14
        from svdc.configs.vae import SVD as SVD_VAE

        vae_cfg = {k: v for k, v in SVD_VAE.items() if not k.startswith("_")}
        unet_cfg = {}
        clip_cfg = {k: v for k, v in VIT_H_14.items() if k in CLIPVisionConfig().to_dict()}
    else:
        vae_cfg, unet_cfg, clip_cfg = tiny.VAE_CONFIG, tiny.UNET_CONFIG, tiny.IMAGE_ENCODER_CONFIG
    pipe = StableVideoDiffusionPipeline(
        vae=perturb(AutoencoderKLTemporalDecoder(**vae_cfg)),
        image_encoder=perturb(CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_cfg))),
        unet=perturb(UNetSpatioTemporalConditionModel(**unet_cfg)),
        scheduler=EulerDiscreteScheduler(**tiny.SCHEDULER_CONFIG), feature_extractor=CLIPImageProcessor())
    pipe.save_pretrained(folder)


def child(side: str, folder: str, frames: int, steps: int, size: int, repeat: int) -> dict:
    """Runs in its own process: load, one warm-up call, `repeat` timed calls; prints a JSON line."""
    import numpy as np
    from PIL import Image

    t0 = time.perf_counter()
    if side == "svdc":
        import svdc
        from svdc import tiny

        pipe = svdc.ImageToVideo.from_pretrained(folder, device="cpu")
        run = lambda: pipe(image, num_frames=frames, num_inference_steps=steps, height=size, width=size,  # noqa
                           seed=0, progress=False).frames
    else:
        import torch
        from diffusers import StableVideoDiffusionPipeline

        from svdc import tiny

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        pipe = StableVideoDiffusionPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)

        def run():
            with torch.no_grad():
                return pipe(image, num_frames=frames, num_inference_steps=steps, height=size, width=size,
                            generator=torch.Generator().manual_seed(0), output_type="np").frames[0]

    image = Image.fromarray(tiny.test_image(size, size))
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
    if out.dtype != np.uint8:
        out = np.round(out * 255).astype(np.uint8)
    return dict(load_s=load_s, first_s=first_s, call_s=min(times), total_s=time.perf_counter() - t0,
                rss_mb=rss_mb, checksum=int(out.astype(np.int64).sum()), shape=list(out.shape),
                frames=out.tolist() if out.size <= (1 << 20) else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--config", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--child", choices=["svdc", "diffusers"])
    ap.add_argument("--folder")
    ap.add_argument("--out")
    a = ap.parse_args()
    suffix = "_real" if a.config == "real" else ""
    a.out = a.out or str(ROOT / "benchmarks" / "results" / f"img2vid_cpu{suffix}.md")
    if a.child:
        print(json.dumps(child(a.child, a.folder, a.frames, a.steps, a.size, a.repeat)))
        return
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                        f"from benchmarks.img2vid_cpu import prepare; prepare({folder!r}, {a.config!r})"], check=True, cwd=ROOT)
        res = {}
        for side in ("svdc", "diffusers"):
            cmd = [sys.executable, __file__, "--child", side, "--folder", folder, "--frames", str(a.frames),
                   "--steps", str(a.steps), "--size", str(a.size), "--repeat", str(a.repeat)]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
            res[side] = json.loads(out.stdout.strip().splitlines()[-1])
    s, d = res["svdc"], res["diffusers"]
    agree = "n/a"
    if s["frames"] is not None and d["frames"] is not None:
        diff = np.abs(np.array(s["frames"], np.int64) - np.array(d["frames"], np.int64))
        agree = f"{np.mean(diff <= 1):.4%} of pixels within 1 level (max diff {int(diff.max())})"
    rows = [("load (s)", "load_s"), ("first call (s)", "first_s"), ("call, best of %d (s)" % a.repeat, "call_s"),
            ("process total (s)", "total_s"), ("peak RSS (MiB)", "rss_mb")]
    lines = [
        f"# img2vid on the CPU: svdc vs diffusers ({a.config} random-weight SVD pipeline)", "",
        f"- machine: {machine()}, {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP threads",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- reference: diffusers StableVideoDiffusionPipeline (torch {_version('torch')}, diffusers "
        f"{_version('diffusers')}), fp32 CPU, same folder, same seed",
        f"- workload: {a.frames} frames, {a.steps} steps, {a.size}x{a.size}, CFG on (guidance 1 -> 3), "
        f"{'full SVD component configs' if a.config == 'real' else 'svdc.tiny configs'}; each side in its own process (RSS includes its imports: numpy vs torch)",
        f"- outputs: {agree}", "",
        "| | svdc | diffusers | svdc / diffusers |", "|---|---:|---:|---:|",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {s[key]:.3f} | {d[key]:.3f} | {s[key] / d[key]:.2f} |")
    lines.append("")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
