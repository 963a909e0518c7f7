"""The CPU kernel variants side by side: one small-config UNet forward (random weights; channels 64/128, 4 frames,
24x24 latents, one OpenMP thread, CPU time per call so that a busy machine disturbs it less) with the baseline and
the avx2 variant of this build (SVDC_CPU_KERNELS), and optionally with another checkout's build (--compare PATH,
e.g. one compiled with -mavx2 -mfma everywhere) to check that run-time dispatch costs nothing. A build-flags check,
not a model benchmark (benchmarks/unet_cpu.py is that).

    python benchmarks/cpu_kernels.py [--repeats 7] [--rounds 3] [--compare /path/to/other/checkout]
        [--out benchmarks/results/cpu_kernels.md]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, commit, machine  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
import svdc
from svdc import tiny
cfg = dict(tiny.UNET_CONFIG, block_out_channels=[64, 128], cross_attention_dim=256, addition_time_embed_dim=32,
           projection_class_embeddings_input_dim=96, layers_per_block=2)
unet = svdc.UNet.from_config(cfg, tiny.random_weights(svdc.UNet.weight_shapes(cfg), 0), device="cpu")
rng = np.random.default_rng(0)
args = (rng.standard_normal((1, 4, 8, 24, 24)).astype(np.float32), np.float32(0.5),
        rng.standard_normal((1, 1, 256)).astype(np.float32), rng.standard_normal((1, 3)).astype(np.float32))
unet(*args)
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.process_time()
    unet(*args)
    times.append(time.process_time() - t0)
print(json.dumps({"kernels": svdc._C.build_info().get("cpu_kernels", "(no dispatch: one build)"), "times": times}))
"""


def run(tree: Path, repeats: int, kernels: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    if kernels:
        env["SVDC_CPU_KERNELS"] = kernels
    out = subprocess.run([sys.executable, "-c", CHILD, str(repeats)], env=env, cwd="/", capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of all configurations, interleaved")
    ap.add_argument("--compare", type=Path, default=None, help="another checkout with a built svdc")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_kernels.md")
    args = ap.parse_args()
    configs = [("this build, baseline kernels", ROOT, "baseline"), ("this build, avx2 kernels", ROOT, "avx2")]
    if args.compare:
        configs.append((f"{args.compare} (its own build)", args.compare, None))
    times = {name: [] for name, _, _ in configs}
    selected = {}
    for _ in range(args.rounds):
        for name, tree, kernels in configs:
            r = run(tree, args.repeats, kernels)
            times[name] += r["times"]
            selected[name] = r["kernels"]
    import numpy as np

    ref = float(np.median(times[configs[1][0]]))
    lines = ["# CPU kernel variants: small-config UNet forward", "",
             f"- machine: {machine()}; commit {commit()}; OMP_NUM_THREADS=1; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: "
             f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}/{os.environ.get('OPENBLAS_L2_SIZE', 'unset')}",
             f"- workload: UNet channels 64/128, 2 layers per block, 1x4 frames of 24x24 latents; CPU seconds per "
             f"forward, {args.rounds} interleaved rounds x {args.repeats} calls",
             f"- command: `python benchmarks/cpu_kernels.py --repeats {args.repeats} --rounds {args.rounds}"
             + (f" --compare {args.compare}`" if args.compare else "`"), "",
             "| configuration | kernels run | median s | min s | median / this build's avx2 |", "|---|---|---|---|---|"]
    for name, _, _ in configs:
        t = np.array(times[name])
        lines.append(f"| {name} | {selected[name]} | {np.median(t):.3f} | {t.min():.3f} | {np.median(t) / ref:.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
