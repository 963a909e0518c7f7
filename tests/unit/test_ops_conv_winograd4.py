"""Winograd F(4x4, 3x3) (kernels/cpu/conv.c), the tile size of large images: against float64 NumPy on odd sizes
(images not a multiple of the 4x4 tile, odd H/W, 1x1 images, asymmetric and wide padding, channel counts of the
real VAE), chosen automatically for images of >= 512 4x4 tiles and forced with SVDC_WINOGRAD_TILE=4 below that;
each CPU kernel variant forced in a subprocess, bit-identical with 1 and 2 threads."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from svdc._native import _C
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, conv2d_ref, rand

_ops = load_testing_ops()


@pytest.mark.parametrize(
    "N,C,H,W,O,pad",
    [
        (2, 16, 9, 11, 17, (1, 1, 1, 1)),  # odd sizes: clipped last tile row and column
        (1, 20, 7, 5, 24, (0, 1, 2, 0)),  # asymmetric padding
        (1, 32, 1, 1, 16, (1, 1, 1, 1)),  # 1x1 image, all padding
        (1, 16, 3, 3, 16, (0, 0, 0, 0)),  # no padding: one output pixel
        (1, 16, 4, 6, 16, (3, 0, 4, 5)),  # padding wider than the kernel
        (1, 17, 6, 4, 19, (0, 0, 0, 0)),  # output exactly one 4x2 tile strip
        (3, 48, 21, 37, 40, (1, 1, 1, 1)),  # several tasks per image, 6 columns past the last full tile
        (1, 300, 10, 13, 23, (1, 1, 1, 1)),  # C over one GEMM K block, O not a multiple of the 6-row panel
    ],
)
def test_forced_f4x4_matches_numpy(monkeypatch, N, C, H, W, O, pad):
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "4")
    rng = np.random.default_rng(C * 10 + O)
    x, w, b = rand(rng, N, C, H, W), rand(rng, O, C, 3, 3, scale=0.1), rand(rng, O)
    for bias in (b, None):
        assert_close(_ops.conv2d(x, w, bias, (1, 1), pad), conv2d_ref(x, w, bias, (1, 1), pad))


@pytest.mark.parametrize("C,O", [(128, 128), (256, 256), (512, 512), (512, 256)])
def test_f4x4_float32_error_on_the_vae_channel_counts(monkeypatch, C, O):
    # The real VAE's 3x3 convs (weights at the scale of a trained conv: std 1/sqrt(9C)): F(4x4)'s transforms add
    # roundings of sums with entries up to 8, still within the op tests' 1e-5 of the output scale.
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "4")
    rng = np.random.default_rng(C + O)
    x, w, b = rand(rng, 1, C, 9, 14), rand(rng, O, C, 3, 3, scale=1 / np.sqrt(9 * C)), rand(rng, O)
    assert_close(_ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1)), conv2d_ref(x, w, b, (1, 1), (1, 1, 1, 1)))


def test_large_images_take_f4x4_by_default(monkeypatch):
    # 90x91 -> 23x23 = 529 tiles of 4x4 (>= 512): F(4x4), which rounds differently from F(2x2) (forced); both are
    # close to float64. 40x40 (100 tiles) stays F(2x2) by default.
    monkeypatch.delenv("SVDC_WINOGRAD_TILE", raising=False)
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, 1, 16, 90, 91), rand(rng, 16, 16, 3, 3, scale=0.1), rand(rng, 16)
    auto = _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))
    assert_close(auto, conv2d_ref(x, w, b, (1, 1), (1, 1, 1, 1)))
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "4")
    assert np.array_equal(auto, _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1)))
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "2")
    assert not np.array_equal(auto, _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1)))
    small = np.ascontiguousarray(x[:, :, :40, :40])
    monkeypatch.delenv("SVDC_WINOGRAD_TILE")
    auto_small = _ops.conv2d(small, w, b, (1, 1), (1, 1, 1, 1))
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "2")
    assert np.array_equal(auto_small, _ops.conv2d(small, w, b, (1, 1), (1, 1, 1, 1)))


def test_a_bad_tile_setting_is_named(monkeypatch):
    monkeypatch.setenv("SVDC_WINOGRAD_TILE", "3")
    x, w = np.zeros((1, 16, 8, 8), np.float32), np.zeros((16, 16, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"SVDC_WINOGRAD_TILE: expected 2, 4 or auto, got '3'"):
        _ops.conv2d(x, w, None, (1, 1), (1, 1, 1, 1))


CHILD = r"""
import hashlib, json
import numpy as np
from svdc._native import _C, testing_ops
T = testing_ops()
rng = np.random.default_rng(0)
x = rng.standard_normal((3, 40, 23, 29), dtype=np.float32)
w = (rng.standard_normal((44, 40, 3, 3)) / 19).astype(np.float32); b = rng.standard_normal(44, dtype=np.float32)
y = T.conv2d(x, w, b, padding=(1, 1, 1, 1))
print(json.dumps({"selected": _C.build_info()["cpu_kernels"], "digest": hashlib.sha256(y.tobytes()).hexdigest()}))
np.save(__import__("sys").argv[1], y)
"""


def available_variants():
    info = _C.build_info()
    variants = ["baseline"]
    if "avx2" in info["cpu_kernels_built"] and {"avx2", "fma"} <= set(info["cpu_features"].split()):
        variants.append("avx2")
    return variants


@pytest.mark.parametrize("variant", available_variants())
def test_each_kernel_variant_runs_f4x4_bit_identically_on_1_and_2_threads(variant, tmp_path):
    got = {}
    for threads in (1, 2):
        out = tmp_path / f"y{threads}.npy"
        env = {**os.environ, "SVDC_CPU_KERNELS": variant, "OMP_NUM_THREADS": str(threads), "SVDC_WINOGRAD_TILE": "4"}
        r = subprocess.run([sys.executable, "-c", CHILD, str(out)], capture_output=True, text=True, timeout=300,
                           env=env)
        assert r.returncode == 0, r.stderr
        got[threads] = json.loads(r.stdout.strip().splitlines()[-1])
        assert got[threads]["selected"] == variant
    assert got[1]["digest"] == got[2]["digest"], "F(4x4)'s results depend on the thread count"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 40, 23, 29), dtype=np.float32)
    w = (rng.standard_normal((44, 40, 3, 3)) / 19).astype(np.float32)
    b = rng.standard_normal(44, dtype=np.float32)
    assert_close(np.load(tmp_path / "y1.npy"), conv2d_ref(x, w, b, (1, 1), (1, 1, 1, 1)))
