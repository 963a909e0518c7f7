"""Thread-count stability of the CPU backend: the tiny image-to-video pipeline (its frames and the latents the
sampler ends with) and one UNet forward, each computed in a fresh process with OMP_NUM_THREADS = 1, 2 and 3 (3 splits
every op unevenly). The sizes make the ops really split: 32x32 latents with 32-64 channels put every elementwise op,
norm, GEMM and conv above its parallel threshold, and the 64-channel level's attention takes the tiled path.

svdc's own kernels (norms, attention, elementwise, data movement) give the same bits for any split (each output value
is computed by one thread in a fixed order: tests/unit/test_ops_thread_bits.py). The GEMMs through OpenBLAS do not:
kernels/cpu/gemm.c and conv.c size their row/column blocks by the thread count, and OpenBLAS sums an element in a
different order for different block shapes. Measured on an AMD EPYC (avx2 kernels, OpenBLAS 0.3.x, 2026-12-03), 2 and 3
threads against 1: UNet output max |diff| 1.2e-6 and 2.3e-6 (9e-7 of max |out|), final latents 2.4e-4 (5e-5 of
max |latent|: two Euler steps amplify the UNet's differences), frames one uint8 level on 0.05 % of pixels. The bounds
below are about 4x those; the strict test stays xfail for the default SVDC_PREPACK.

With SVDC_PREPACK=all every weight GEMM runs svdc's packed fixed-order GEMM (kernels/cpu/pgemm.c); what stays on
OpenBLAS is attention's QKᵀ and PV, one tile per call on the calling thread with tiles sized independently of the
thread count, so the same bits come out with 1, 2 and 3 threads: a strict test."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
import numpy as np
from svdc import tiny

out = sys.argv[1]
unet, vae, enc = tiny.tiny_components(device="cpu")
rng = np.random.default_rng(0)
sample = rng.standard_normal((2, 3, 8, 32, 32)).astype(np.float32)
context = rng.standard_normal((2, 1, 32)).astype(np.float32)
ids = np.tile(np.array([[6.0, 127.0, 0.02]], np.float32), (2, 1))
unet_out = unet(sample, np.array([0.5, 0.9], np.float32), context, ids)
pipe = tiny.tiny_pipeline(device="cpu")
latents = []
video = pipe(tiny.test_image(256, 256), height=256, width=256, num_frames=3, num_inference_steps=2, seed=3,
             progress=False, callback=lambda step, t, lat: latents.append(np.array(lat)))
np.savez(out, unet=unet_out, frames=video.frames, latents=latents[-1])
"""


def _run(threads: int, tmp_path: Path, prepack: str | None = None) -> dict[str, np.ndarray]:
    out = tmp_path / f"t{threads}_{prepack}.npz"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    env.pop("SVDC_PREPACK", None)
    if prepack is not None:
        env["SVDC_PREPACK"] = prepack
    r = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


# name -> max |diff| / max |value at 1 thread| (see the module docstring for the measured values)
RELATIVE_BOUNDS = {"unet": 4e-6, "latents": 2e-4}
FRAMES_MAX_LEVELS, FRAMES_MAX_SHARE = 1, 0.005


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads")
    return {t: _run(t, tmp) for t in (1, 2, 3)}


@pytest.fixture(scope="module")
def runs_all_packed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads_packed")
    return {t: _run(t, tmp, "all") for t in (1, 2, 3)}


def _diff(runs, t, name):
    ref, got = runs[1][name], runs[t][name]
    assert got.shape == ref.shape, (name, t, got.shape, ref.shape)
    return np.abs(got.astype(np.float64) - ref.astype(np.float64)), ref


@pytest.mark.slow
@pytest.mark.parametrize("threads", [2, 3])
def test_thread_count_changes_results_by_at_most_the_gemm_bound(runs, threads):
    for name, bound in RELATIVE_BOUNDS.items():
        d, ref = _diff(runs, threads, name)
        rel = d.max() / np.abs(ref).max()
        assert rel <= bound, f"{name}: {threads} threads vs 1: max |diff| {d.max():.3g} = {rel:.2g} of max |value|"
    d, _ = _diff(runs, threads, "frames")
    share = float(np.mean(d > 0))
    assert d.max() <= FRAMES_MAX_LEVELS and share <= FRAMES_MAX_SHARE, (threads, d.max(), share)


@pytest.mark.slow
@pytest.mark.xfail(reason="with the default SVDC_PREPACK, linear, 1x1 and temporal GEMMs run OpenBLAS (kernels/cpu/"
                          "gemm.c, conv.c), which sums in an order that depends on the thread split; with "
                          "SVDC_PREPACK=all the bits are the same (the test below)", strict=False)
@pytest.mark.parametrize("threads", [2, 3])
def test_same_bits_with_any_thread_count(runs, threads):
    for name in runs[1]:
        d, _ = _diff(runs, threads, name)
        assert not d.any(), f"{name}: {threads} threads differ from 1 in {np.count_nonzero(d)} of {d.size} values"


@pytest.mark.slow
@pytest.mark.parametrize("threads", [2, 3])
def test_every_weight_gemm_packed_gives_the_same_bits_with_any_thread_count(runs_all_packed, threads):
    for name in runs_all_packed[1]:
        d, _ = _diff(runs_all_packed, threads, name)
        assert not d.any(), f"{name}: {threads} threads differ from 1 in {np.count_nonzero(d)} of {d.size} values"
