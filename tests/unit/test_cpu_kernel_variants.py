"""The CPU kernels are built for any x86-64 (baseline) and, where the build has it, with AVX2+FMA; the variant is
chosen at run time (kernels/cpu/backend_cpu.c) and SVDC_CPU_KERNELS forces one. Each variant available on this
machine runs a tiny UNet and VAE forward in a fresh interpreter (the choice is made once per process), and the
variants agree within float32 rounding: they differ only in FMA contraction and the vectorised exp (about 2 ulp)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from svdc._native import _C

CHILD = r"""
import json, sys
import numpy as np
import svdc
from svdc import tiny
from svdc._native import _C
rng = np.random.default_rng(0)
unet = svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0),
                             device="cpu")
vae = svdc.VAE.from_config(tiny.VAE_CONFIG, tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1),
                           device="cpu")
sample = rng.standard_normal((1, 3, 8, 8, 8)).astype(np.float32)
context = rng.standard_normal((1, 1, 32)).astype(np.float32)
ids = rng.standard_normal((1, 3)).astype(np.float32)
latents = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
np.save(sys.argv[1] + "_unet.npy", unet(sample, np.float32(0.5), context, ids))
np.save(sys.argv[1] + "_vae.npy", vae.decode(latents, num_frames=3))
info = _C.build_info()
print(json.dumps({"selected": info["cpu_kernels"], "reason": info["cpu_kernels_reason"]}))
"""


def run_variant(variant, prefix):
    r = subprocess.run([sys.executable, "-c", CHILD, str(prefix)], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "SVDC_CPU_KERNELS": variant})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def available():
    info = _C.build_info()
    variants = ["baseline"]
    if "avx2" in info["cpu_kernels_built"] and {"avx2", "fma"} <= set(info["cpu_features"].split()):
        variants.append("avx2")
    return variants


def test_the_best_variant_is_selected_by_default():
    info = _C.build_info()
    import os

    if os.environ.get("SVDC_CPU_KERNELS", "auto") in ("", "auto"):
        assert info["cpu_kernels"] == available()[-1], info
        assert info["cpu_kernels_reason"] == "" or info["cpu_kernels"] == "baseline"


@pytest.mark.skipif(len(available()) < 2, reason="only the baseline CPU kernels can run here (no AVX2/FMA variant)")
def test_baseline_and_avx2_kernels_agree_on_a_tiny_unet_and_vae(tmp_path):
    outputs = {}
    for variant in available():
        got = run_variant(variant, tmp_path / variant)
        assert got["selected"] == variant, got
        outputs[variant] = {m: np.load(tmp_path / f"{variant}_{m}.npy") for m in ("unet", "vae")}
    for model in ("unet", "vae"):
        base, fast = outputs["baseline"][model].astype(np.float64), outputs["avx2"][model]
        scale = float(np.max(np.abs(base)))
        err = float(np.max(np.abs(fast - base)))
        # Float32 rounding through a few dozen layers: 1e-5 of max|out| (the tiny models' outputs are O(1)).
        assert scale > 0 and err <= 1e-5 * scale, f"{model}: max|avx2 - baseline| = {err:.3g} (max {scale:.3g})"
        assert err > 0 or model == "vae", f"{model}: the variants gave identical bits: was the avx2 variant used?"


def test_a_forced_variant_the_cpu_cannot_run_or_a_bad_value_falls_back_with_the_reason(tmp_path):
    got = run_variant("no-such-variant", tmp_path / "bad")
    assert "SVDC_CPU_KERNELS='no-such-variant' is not auto, baseline or avx2" in got["reason"]
    assert got["selected"] == available()[-1]
