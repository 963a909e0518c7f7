"""Text-to-image end to end on the CPU, svdc vs diffusers in the same run: a random-weight SD 2.1 pipeline (the full
SD 2.1 UNet / VAE / 23-layer text encoder configs, or svdc.tiny's with --tiny), saved once as a diffusers folder both
load, each side in its own child process so its peak RSS is its own, each run twice: with OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE as set here and with both unset. Writes load time, call time (median of --repeat) and peak RSS,
with the svdc / diffusers ratios, to benchmarks/results/txt2img_cpu[_tiny].md (machine, date, commit).

    OMP_NUM_THREADS=2 python benchmarks/txt2img_cpu.py
        (full SD 2.1 configs, 1.29 G parameters, 256x256, 4 steps, CFG: ~5.5 GB of RAM per side, one side at a
         time, ~5.2 GB of temporary files; ~10-20 min on 2 cores)
    OMP_NUM_THREADS=2 python benchmarks/txt2img_cpu.py --tiny        (the script's own check: ~1 min, < 1 GB)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place)

from benchmarks._report import commit, machine, version as _version  # noqa: E402

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# SD 2.1 (stabilityai/stable-diffusion-2-1): scheduler/ and text_encoder/ configs (the UNet and VAE come from svdc's
# presets, which are SD 2.x's).
SD21_SCHEDULER = dict(beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085, clip_sample=False,
                      num_train_timesteps=1000, prediction_type="v_prediction", set_alpha_to_one=False,
                      steps_offset=1, trained_betas=None)
SD21_TEXT_ENCODER = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, projection_dim=512,
                         num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
                         layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1)


def prepare(folder: str, tiny_config: bool) -> None:
    """A diffusers StableDiffusionPipeline folder (DDIM with SD 2.1's scheduler config) with random weights,
    written one component at a time so at most one full-size model is in memory; a hermetic tokenizer folder (no
    download)."""
    import gc
    import json

    import diffusers
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from svdc import tiny
    from svdc.configs import unet as unet_configs, vae as vae_configs
    from tests.unit._clip_vocab import write_tokenizer_folder

    torch.manual_seed(0)
    sd = os.path.join(folder, "sd")
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_folder(os.path.join(folder, "_tok")))
    tokenizer.save_pretrained(os.path.join(sd, "tokenizer"))
    DDIMScheduler(**SD21_SCHEDULER).save_pretrained(os.path.join(sd, "scheduler"))
    if tiny_config:
        unet_cfg, vae_cfg = tiny.SD_UNET_CONFIG, tiny.SD_VAE_CONFIG
        te_cfg = tiny.sd_text_encoder_config(len(tokenizer))
    else:
        unet_cfg, vae_cfg, te_cfg = unet_configs.preset("sd2"), vae_configs.SD2, SD21_TEXT_ENCODER
    clean = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_") and k != "architectures"}  # noqa
    builders = {  # from_config: diffusers keeps the keys its class takes (svdc's presets add a few of their own)
        "unet": lambda: UNet2DConditionModel.from_config(clean(unet_cfg)),
        "vae": lambda: AutoencoderKL.from_config(clean(vae_cfg)),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**clean(te_cfg))),
    }
    for name, build in builders.items():
        model = build().eval()
        model.save_pretrained(os.path.join(sd, name))
        del model
        gc.collect()
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"], "safety_checker": [None, None],
             "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False}
    with open(os.path.join(sd, "model_index.json"), "w") as fh:
        json.dump(index, fh, indent=1)


def child(side: str, folder: str, steps: int, size: int, repeat: int) -> dict:
    """Runs in its own process: load, one warm-up call, `repeat` timed calls; returns the measurements."""
    import numpy as np

    t0 = time.perf_counter()
    kw = dict(prompt=[PROMPT], negative_prompt=[NEGATIVE], num_inference_steps=steps, guidance_scale=7.5,
              height=size, width=size)
    if side == "svdc":
        import svdc

        pipe = svdc.TextToImage.from_pretrained(folder, device="cpu")
        run = lambda: np.stack(pipe(seed=0, progress=False, **kw))  # noqa: E731
    else:
        import torch
        from diffusers import StableDiffusionPipeline

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        pipe = StableDiffusionPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)

        def run():
            with torch.no_grad():
                out = pipe(generator=torch.Generator().manual_seed(0), output_type="np", **kw).images
            return np.round(out * 255).astype(np.uint8)

    load_s = time.perf_counter() - t0
    image = run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return dict(load_s=load_s, call_s=statistics.median(times),
                rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, image=image.tolist())


def run_side(side: str, folder: str, a, unset_blas: bool) -> dict:
    env = dict(os.environ)
    if unset_blas:
        for var in BLAS_VARS:
            env.pop(var, None)
    cmd = [sys.executable, __file__, "--child", side, "--folder", folder, "--steps", str(a.steps), "--size",
           str(a.size), "--repeat", str(a.repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="svdc.tiny's SD 2.x configs (checks the script quickly)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["svdc", "diffusers"])
    ap.add_argument("--folder")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.folder, a.steps, a.size, a.repeat)))
        return
    import numpy as np

    a.out = a.out or str(ROOT / "benchmarks" / "results" / f"txt2img_cpu{'_tiny' if a.tiny else ''}.md")
    blas = ", ".join(f"{v}={os.environ[v]}" for v in BLAS_VARS if v in os.environ) or "both unset already"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                        f"from benchmarks.txt2img_cpu import prepare; prepare({tmp!r}, {a.tiny!r})"],
                       check=True, cwd=ROOT)
        folder = os.path.join(tmp, "sd")
        # with both variables unset already, "as set" and "unset" are the same environment: run it once
        cases = (False, True) if any(v in os.environ for v in BLAS_VARS) else (False,)
        res = {(side, unset): run_side(side, folder, a, unset) for unset in cases for side in ("svdc", "diffusers")}
    s, d = res[("svdc", False)], res[("diffusers", False)]
    diff = np.abs(np.array(s["image"], np.int64) - np.array(d["image"], np.int64))
    agree = f"{np.mean(diff <= 1):.4%} of pixels within 1 level (max diff {int(diff.max())})"
    lines = [
        f"# txt2img on the CPU: svdc vs diffusers ({'tiny' if a.tiny else 'full SD 2.1'} configs, random weights)",
        "",
        f"- machine: {machine()}, {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP threads",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- reference: diffusers StableDiffusionPipeline (torch {_version('torch')}, diffusers "
        f"{_version('diffusers')}), fp32 CPU, the same saved folder, the same seed",
        f"- workload: 1 prompt + negative prompt, CFG 7.5, DDIM (SD 2.1's scheduler config, v-prediction), "
        f"{a.steps} steps, {a.size}x{a.size}; time = median of {a.repeat} calls after a warm-up; each side in its "
        "own process (peak RSS includes its imports: numpy vs torch)",
        f"- outputs: {agree}", "",
        "| OpenBLAS variables | measure | svdc | diffusers | svdc / diffusers |", "|---|---|---:|---:|---:|",
    ]
    for unset, label in ((False, f"as set ({blas})"), (True, "unset")):
        if unset not in cases:
            continue
        s, d = res[("svdc", unset)], res[("diffusers", unset)]
        for name, key in (("load (s)", "load_s"), ("call, median (s)", "call_s"), ("peak RSS (MiB)", "rss_mb")):
            lines.append(f"| {label} | {name} | {s[key]:.3f} | {d[key]:.3f} | {s[key] / d[key]:.2f} |")
    lines.append("")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
