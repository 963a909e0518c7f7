"""The fastest the SVD UNet forward and the OpenCLIP image encoder could run on this machine's CPUs, from their
arithmetic and the machine's measured sgemm rate, set beside what torch measured: whether "0.5x torch's time"
is reachable here at all.

The bound is generous: every GEMM, 1x1/temporal conv and attention product runs at the rate of a large square
OpenBLAS sgemm (its best case), and every spatial 3x3 conv needs only a quarter of its multiplications (Winograd
F(4x4,3x3), the largest tile svdc uses, with free transforms). Norms, activations, softmax and memory traffic cost
nothing. A real forward is slower than this bound; 0.5x torch below the bound is out of reach on this machine.

    python benchmarks/cpu_bound.py --threads 2 --unet 2x4x32x32=17.51 --unet 2x2x40x72=29.80 --clip 3.00 \
        --out benchmarks/results/cpu_bound.md

`--unet BxFxHxW=SECONDS` gives a latent size (batch, frames, height, width) and torch's measured forward time there;
`--clip SECONDS` torch's image-encoder time (both from the side-by-side benchmarks named in the report).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import commit, machine  # noqa: E402

PEAK_CHILD = """
import json, time, numpy as np
n = {n}
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
a @ b  # warm-up: thread pool and pages
best = min(((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter())) for _ in range({repeats}))
print(json.dumps({{"gflops": 2 * n ** 3 / best / 1e9, "config": np.show_config(mode="dicts")["Build Dependencies"]["blas"]}}))
"""


def sgemm_peak(threads: int, n: int = 4096, repeats: int = 5) -> dict:
    """Best rate of an n^3 float32 matmul through NumPy's OpenBLAS, in a child that owns `threads` threads."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", PEAK_CHILD.format(n=n, repeats=repeats)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def unet_work(batch: int, frames: int, height: int, width: int) -> dict:
    """GFLOP (2 per multiply-add) of one forward of the SVD UNet (svdc's `svd` preset) on latents
    (batch, frames, 8, height, width), split into spatial 3x3 convs and everything that is a plain GEMM."""
    from svdc.configs import unet as unet_configs

    cfg = unet_configs.preset("svd")
    chans = cfg["block_out_channels"]
    with_attention = [t.startswith("CrossAttn") for t in cfg["down_block_types"]]
    images = batch * frames  # every spatial op runs once per frame
    sizes = [(height, width)]
    for _ in chans[1:]:
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    work = {"conv3x3": 0.0, "gemm": 0.0}

    def conv3x3(c_in, c_out, level):
        h, w = sizes[level]
        work["conv3x3"] += 2 * images * h * w * c_in * c_out * 9

    def gemm(tokens, k, n):
        work["gemm"] += 2 * tokens * k * n

    def resblock(c_in, c_out, level):
        h, w = sizes[level]
        conv3x3(c_in, c_out, level)
        conv3x3(c_out, c_out, level)
        if c_in != c_out:
            gemm(images * h * w, c_in, c_out)  # 1x1 shortcut
        gemm(images * h * w, 3 * c_out, c_out)  # two temporal (3,1,1) convs, each a GEMM over depth 3C
        gemm(images * h * w, 3 * c_out, c_out)

    def transformer(c, level):
        h, w = sizes[level]
        n = h * w
        tokens = images * n
        gemm(tokens, c, c)  # proj_in
        gemm(tokens, c, 4 * c)  # spatial self-attention q, k, v, out
        work["gemm"] += 2 * images * 2 * n * n * c  # its QK^T and PV over the n tokens of each frame
        gemm(tokens, c, 2 * c)  # cross-attention q and out (k, v act on one context token)
        gemm(tokens, c, 8 * c)  # GEGLU feed-forward: c -> 2 x 4c, then 4c -> c
        gemm(tokens, 4 * c, c)
        gemm(tokens, c, 8 * c)  # temporal block: GEGLU ff_in
        gemm(tokens, 4 * c, c)
        gemm(tokens, c, 4 * c)  # temporal self-attention q, k, v, out
        work["gemm"] += 2 * batch * n * 2 * frames * frames * c  # its QK^T and PV over the frames of each pixel
        gemm(tokens, c, 2 * c)  # temporal cross-attention q and out
        gemm(tokens, c, 8 * c)  # GEGLU ff
        gemm(tokens, 4 * c, c)
        gemm(tokens, c, c)  # proj_out

    conv3x3(cfg["in_channels"], chans[0], 0)
    skips, c = [chans[0]], chans[0]
    for level, c_out in enumerate(chans):
        for _ in range(cfg["layers_per_block"]):
            resblock(c, c_out, level)
            c = c_out
            if with_attention[level]:
                transformer(c, level)
            skips.append(c)
        if level < len(chans) - 1:
            conv3x3(c, c, level + 1)  # stride-2 downsample: its outputs are at the next level's size
            skips.append(c)
    last = len(chans) - 1
    resblock(c, c, last)
    transformer(c, last)
    resblock(c, c, last)
    for level in reversed(range(len(chans))):
        c_out = chans[level]
        for i in range(cfg["layers_per_block"] + 1):
            resblock(c + skips.pop(), c_out, level)
            c = c_out
            if with_attention[level]:
                transformer(c, level)
        if level > 0:
            conv3x3(c, c, level - 1)  # nearest upsample, then a 3x3 conv at the larger size
    conv3x3(chans[0], cfg["out_channels"], 0)
    return {k: v / 1e9 for k, v in work.items()}


def clip_work() -> float:
    """GFLOP of one 224x224 image through the OpenCLIP ViT-H/14 vision tower (svdc's clip config)."""
    from svdc.configs import clip as clip_configs

    cfg = clip_configs.VIT_H_14
    width, layers, mlp = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    patch, image, proj = cfg["patch_size"], cfg["image_size"], cfg["projection_dim"]
    patches = (image // patch) ** 2
    tokens = patches + 1
    flops = 2 * patches * 3 * patch * patch * width
    flops += layers * (2 * tokens * width * 4 * width + 2 * 2 * tokens * tokens * width + 2 * 2 * tokens * width * mlp)
    flops += 2 * width * proj
    return flops / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--unet", action="append", default=[], metavar="BxFxHxW=SECONDS")
    ap.add_argument("--clip", type=float, metavar="SECONDS")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.out and a.out.suffix != ".md":
        ap.error(f"--out must name a .md file, got {a.out}")
    cases = []
    for spec in a.unet:
        try:
            shape, seconds = spec.split("=")
            b, f, h, w = (int(x) for x in shape.lower().split("x"))
            cases.append(((b, f, h, w), float(seconds)))
        except ValueError:
            ap.error(f"--unet expects BxFxHxW=SECONDS, e.g. 2x4x32x32=17.51; got {spec!r}")
    peak = sgemm_peak(a.threads)
    rate = peak["gflops"]
    rows = []
    for (b, f, h, w), torch_s in cases:
        work = unet_work(b, f, h, w)
        total = work["conv3x3"] + work["gemm"]
        bound = (work["gemm"] + work["conv3x3"] / 4) / rate
        rows.append((f"UNet B={b} F={f} latents {h}x{w}", total, work["conv3x3"], bound, torch_s))
    if a.clip:
        rows.append(("image encoder, one 224x224 image", clip_work(), 0.0, clip_work() / rate, a.clip))
    lines = [
        "# How fast the UNet and the image encoder could run on this CPU",
        "",
        f"- machine: {machine()}; {a.threads} threads",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit: {commit()}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- sgemm rate: **{rate:.1f} GFLOP/s**, the best of 5 float32 4096^3 matmuls through NumPy's OpenBLAS "
        f"({peak['config'].get('name', '?')} {peak['config'].get('version', '')}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}), measured in this run",
        "- bound: every GEMM-like op (linears, 1x1 and temporal convs, attention products) at that rate, every "
        "spatial 3x3 conv at a quarter of its multiplications (Winograd F(4x4,3x3), transforms free), norms, "
        "activations and memory traffic free. GFLOP count 2 per multiply-add, direct convolution.",
        "- torch time: the fastest forward measured by the side-by-side benchmarks (given on the command line).",
        "",
        "| workload | GFLOP | of it 3x3 conv | bound (s) | torch (s) | torch GFLOP/s | 0.5x torch (s) | bound / torch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, total, conv, bound, torch_s in rows:
        lines.append(f"| {name} | {total:.0f} | {conv:.0f} | {bound:.2f} | {torch_s:.2f} | {total / torch_s:.0f} | "
                     f"{torch_s / 2:.2f} | **{bound / torch_s:.2f}** |")
    lines += ["", "A bound / torch above 0.5 means half of torch's time is below what this machine can do even "
              "in the bound's ideal case."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
