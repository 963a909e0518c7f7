"""The full SVD UNet forward on CUDA beside diffusers on the same GPU: the real UNetSpatioTemporalConditionModel
config with random weights (seeded; no download), B = 2 (classifier-free guidance), --frames frames of 72x128
latents (576x1024 video). svdc runs in fp32 storage (the only model storage so far); diffusers runs in fp32 (TF32
off: the parity reference) and in fp16 (its usual speed). Prints a markdown table (median ms of --repeat runs after
one warm-up, parity of svdc against diffusers fp32) and writes $OUT/unet_cuda.md when $OUT is set. Then the tiny
image-to-video pipeline runs on cuda and on the CPU with the same seed: the frames must match to one uint8 level.

    python benchmarks/unet_cuda.py [--frames 14] [--repeat 3]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import commit, machine  # noqa: E402


def median_ms(fn, repeat, sync):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import torch
    from diffusers import UNetSpatioTemporalConditionModel

    import svdc
    from svdc import tiny

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    with torch.device("cuda"):
        ref = UNetSpatioTemporalConditionModel().eval()  # the SVD config is the class default
    weights = {k: v.detach().float().cpu().numpy() for k, v in ref.state_dict().items()}
    t0 = time.perf_counter()
    unet = svdc.UNet.from_config(dict(ref.config), weights, device="cuda")
    load_s = time.perf_counter() - t0
    del weights
    rng = np.random.default_rng(0)
    B, F, h, w = 2, a.frames, 72, 128
    sample = rng.standard_normal((B, F, 8, h, w), dtype=np.float32)
    context = rng.standard_normal((B, 1, 1024), dtype=np.float32)
    ids = np.array([[6, 127, 0.02]] * B, np.float32)
    ts = np.float32(0.7)
    out = unet(sample, ts, context, ids)
    sync = torch.cuda.synchronize
    svdc_ms = median_ms(lambda: unet(sample, ts, context, ids), a.repeat, sync)
    args_t = (torch.from_numpy(sample).cuda(), torch.tensor([0.7] * B, device="cuda"),
              torch.from_numpy(context).cuda(), torch.from_numpy(ids).cuda())
    with torch.no_grad():
        expected = ref(*args_t).sample.float().cpu().numpy()
        ref_ms = median_ms(lambda: ref(*args_t), a.repeat, sync)
        ref16 = ref.half()
        args16 = tuple(x.half() for x in args_t)
        ref16_ms = median_ms(lambda: ref16(*args16), a.repeat, sync)
    err = float(np.max(np.abs(out - expected)) / np.max(np.abs(expected)))
    del ref, ref16, unet
    torch.cuda.empty_cache()

    image = tiny.test_image()
    kw = dict(num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)
    gpu = tiny.tiny_pipeline(device="cuda")(image, **kw).frames
    cpu = tiny.tiny_pipeline(device="cpu")(image, **kw).frames
    worst = int(np.max(np.abs(gpu.astype(int) - cpu.astype(int))))

    lines = [
        "# SVD UNet forward on CUDA beside diffusers (same GPU, random weights)", "",
        f"- machine: {machine()}; GPU: {torch.cuda.get_device_name(0)}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit: {os.environ.get('SVDC_COMMIT') or commit()}",
        f"- reference: diffusers UNetSpatioTemporalConditionModel (default = SVD config), torch {torch.__version__}",
        f"- shape: B={B}, F={F}, latents {h}x{w}; median of {a.repeat} after one warm-up; svdc weight upload "
        f"{load_s:.1f} s", "",
        "| run | ms per forward | ratio to svdc |", "|---|---|---|",
        f"| svdc cuda, fp32 storage | {svdc_ms:.0f} | 1.00 |",
        f"| diffusers fp32 (TF32 off) | {ref_ms:.0f} | {ref_ms / svdc_ms:.2f} |",
        f"| diffusers fp16 | {ref16_ms:.0f} | {ref16_ms / svdc_ms:.2f} |", "",
        f"- parity svdc vs diffusers fp32: max|diff| / max|ref| = {err:.2e} (DESIGN bound 1e-4): "
        f"{'PASS' if err <= 1e-4 else 'FAIL'}",
        f"- tiny image-to-video on cuda vs the CPU (same seed): max uint8 difference {worst}: "
        f"{'PASS' if worst <= 1 else 'FAIL'}", "",
    ]
    text = "\n".join(lines)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "unet_cuda.md").write_text(text)
    return 0 if err <= 1e-4 and worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
