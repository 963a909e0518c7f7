"""Weights packed at load (kernels/cpu/packed.h, pgemm.c): linear, conv2d (1x1, im2col, Winograd) and conv_temporal
with the weight packed (as loading packs it) and without (OpenBLAS for linear, 1x1 and temporal; the same svdc GEMM
on panels packed per call for im2col and Winograd) agree with float64 NumPy on odd sizes (non-multiples of
the 6x16 tile and of the K/M/N blocks, one row, one column, K = 1); each variant of the kernels (baseline, avx2)
does, forced in a subprocess; results are bit-identical with 1 and 2 threads; a model gives the same outputs with
packing on and off (SVDC_PREPACK=0), on the CPU and the emulated device.

The op-test surface's prepack(w) packs an array exactly as model loading packs a weight of that shape and registers
it, so an op given that array takes the packed path; packed_hits() counts op calls that found a packed weight, so
every test checks which path ran."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from svdc._native import _C
from svdc._native import testing_ops as load_testing_ops

T = load_testing_ops()
EPS = 2.0**-24


def conv_direct(x, w, stride, pad):
    """float64 cross-correlation, zero padding (top, bottom, left, right)."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pad[:2], pad[2:]))
    Ho, Wo = (xp.shape[2] - kh) // stride + 1, (xp.shape[3] - kw) // stride + 1
    y = np.zeros((N, O, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y


def check(y, ref, bound, what):
    """|y - ref| within `bound` (elementwise, a multiple of the float32 rounding bound of the sum)."""
    err = np.abs(y.astype(np.float64) - ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), f"{what}: error {err[worst]:.3g} at {worst} over the bound {bound[worst]:.3g}"


def both_paths(run, w):
    """(unpacked output, packed output), checking which path each call took."""
    hits = T.packed_hits()
    y_blas = run()
    assert T.packed_hits() == hits, "the unpacked call found a packed weight"
    handle = T.prepack(w)
    assert handle is not None
    try:
        y_packed = run()
    finally:
        del handle
    assert T.packed_hits() == hits + 1, "the packed call did not use the packed weight"
    return y_blas, y_packed


LINEAR_SHAPES = [  # (M, K, N): tile 6x16, K blocks of <= 256, M blocks of 96
    (1, 1, 1), (1, 5, 1), (3, 1, 17), (7, 13, 17), (1, 300, 40), (97, 300, 33), (200, 600, 16), (13, 257, 95),
]


@pytest.mark.parametrize("M,K,N", LINEAR_SHAPES)
def test_linear_packed_and_unpacked_agree_with_float64(M, K, N):
    rng = np.random.default_rng(M * 1000 + K + N)
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
    bound = 2 * (K + 1) * EPS * (np.abs(x).astype(np.float64) @ np.abs(w).T + np.abs(b)) + 1e-30
    y_blas, y_packed = both_paths(lambda: T.linear(x, w, b), w)
    check(y_blas, ref, bound, "OpenBLAS")
    check(y_packed, ref, bound, "packed")
    # batched leading dimensions and no bias take the same path
    x3 = x.reshape(1, M, K)
    _, y3 = both_paths(lambda: T.linear(x3, w), w)
    check(y3[0], ref - b, bound, "packed, 3-D x, no bias")


CONV_CASES = [  # (N, C, O, H, W, k, stride, padding): which path conv2d takes is in the comment
    (2, 5, 7, 3, 11, 1, 1, (0, 0, 0, 0)),     # 1x1 GEMM
    (1, 1, 1, 1, 1, 1, 1, (0, 0, 0, 0)),      # 1x1, K = 1, one pixel
    (1, 3, 13, 9, 7, 3, 1, (1, 1, 1, 1)),     # im2col (C < 16)
    (2, 3, 5, 9, 8, 3, 2, (0, 1, 0, 1)),      # im2col, stride 2, asymmetric padding
    (1, 4, 3, 6, 7, 5, 1, (2, 2, 2, 2)),      # im2col, 5x5
    (2, 17, 19, 7, 9, 3, 1, (1, 1, 1, 1)),    # Winograd, odd channels and sizes
    (1, 16, 33, 5, 1, 3, 1, (1, 1, 1, 1)),    # Winograd, one column
    (1, 20, 16, 8, 6, 3, 1, (0, 2, 1, 0)),    # Winograd, asymmetric padding
    (1, 300, 17, 3, 5, 3, 1, (1, 1, 1, 1)),   # Winograd, C over one K block
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:6])) + f"s{c[6]}")
def test_conv2d_packed_and_unpacked_agree_with_float64(case):
    N, C, O, H, W, k, s, pad = case
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, k, k), dtype=np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    ref = conv_direct(x.astype(np.float64), w.astype(np.float64), s, pad) + b[:, None, None]
    scale = conv_direct(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), s, pad) + np.abs(b)[:, None, None]
    # float32 sums of C*k*k terms; Winograd's transforms add a few roundings of sums of up to 16 such terms
    bound = 16 * (C * k * k + 16) * EPS * scale
    run = lambda: T.conv2d(x, w, b, stride=(s, s), padding=pad)
    y_blas, y_packed = both_paths(run, w)
    check(y_blas, ref, bound, "OpenBLAS")
    check(y_packed, ref, bound, "packed")


@pytest.mark.parametrize("N,C,O,H,W", [(5, 18, 40, 4, 4), (3, 16, 13, 7, 5), (1, 17, 33, 2, 3), (9, 16, 16, 1, 1)])
def test_winograd_on_small_maps_takes_image_groups_with_the_per_image_paths_bits(N, C, O, H, W):
    """Fewer than 128 tiles per image with U packed at load: tasks of image groups x output-channel blocks
    (conv.c conv3x3_winograd_grouped). Each element is the same sum as on the per-image path that packs U per call,
    so the outputs are the same bits, and within the float64 bound."""
    rng = np.random.default_rng(N * 100 + C + O)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, 3, 3), dtype=np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    pad = (1, 1, 1, 1)
    y_call, y_packed = both_paths(lambda: T.conv2d(x, w, b, padding=pad), w)
    np.testing.assert_array_equal(y_packed, y_call)
    ref = conv_direct(x.astype(np.float64), w.astype(np.float64), 1, pad) + b[:, None, None]
    scale = conv_direct(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), 1, pad) + np.abs(b)[:, None, None]
    check(y_packed, ref, 16 * (9 * C + 16) * EPS * scale, "grouped Winograd")


def test_a_3x3_conv_with_stride_2_and_winograd_shaped_weights_finds_no_packed_weight():
    """Loading packs a >= 16-channel 3x3 weight as Winograd U only; a stride-2 call finds no im2col packing."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 18, 9, 11), dtype=np.float32)
    w = rng.standard_normal((21, 18, 3, 3), dtype=np.float32)
    handle = T.prepack(w)
    hits = T.packed_hits()
    y = T.conv2d(x, w, None, stride=(2, 2), padding=(0, 1, 0, 1))
    del handle
    assert T.packed_hits() == hits
    ref = conv_direct(x.astype(np.float64), w.astype(np.float64), 2, (0, 1, 0, 1))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("B,F,C,O,H,W", [(1, 1, 1, 1, 1, 1), (2, 3, 7, 11, 3, 5), (1, 4, 20, 17, 9, 31)])
def test_conv_temporal_packed_and_unpacked_agree_with_float64(B, F, C, O, H, W):
    rng = np.random.default_rng(B + F + C + O + H + W)
    x = rng.standard_normal((B * F, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, 3), dtype=np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    xv = x.astype(np.float64).reshape(B, F, C, H, W)
    xp = np.pad(xv, ((0, 0), (1, 1), (0, 0), (0, 0), (0, 0)))  # zero frames before and after
    ref = sum(np.einsum("bfchw,oc->bfohw", xp[:, k:k + F], w[:, :, k].astype(np.float64)) for k in range(3))
    scale = sum(np.einsum("bfchw,oc->bfohw", np.abs(xp[:, k:k + F]), np.abs(w[:, :, k]).astype(np.float64))
                for k in range(3))
    ref = (ref + b[None, None, :, None, None]).reshape(B * F, O, H, W)
    bound = 2 * (3 * C + 1) * EPS * (scale + np.abs(b)[None, None, :, None, None]).reshape(B * F, O, H, W)
    y_blas, y_packed = both_paths(lambda: T.conv_temporal(x, F, w, b), w)
    check(y_blas, ref, bound, "OpenBLAS")
    check(y_packed, ref, bound, "packed")


def test_prepack_refuses_a_non_float32_array_and_ignores_unpacked_shapes():
    with pytest.raises(TypeError, match="C-contiguous float32"):
        T.prepack(np.zeros((4, 4), np.float64))
    assert T.prepack(np.zeros(8, np.float32)) is None  # 1-D: biases are never packed


# ---- subprocess checks: kernel variants, thread counts, whole models ----

OPS_CHILD = r"""
import hashlib, json, sys
import numpy as np
from svdc._native import _C, testing_ops
T = testing_ops()
rng = np.random.default_rng(0)
x2 = rng.standard_normal((257, 300), dtype=np.float32); w2 = rng.standard_normal((70, 300), dtype=np.float32)
x4 = rng.standard_normal((2, 24, 19, 21), dtype=np.float32); w3 = rng.standard_normal((40, 24, 3, 3), dtype=np.float32)
w1 = rng.standard_normal((40, 24, 1, 1), dtype=np.float32); wt = rng.standard_normal((40, 24, 3), dtype=np.float32)
handles = [T.prepack(w) for w in (w2, w3, w1, wt)]
outs = [T.linear(x2, w2), T.conv2d(x4, w3, padding=(1, 1, 1, 1)), T.conv2d(x4, w1), T.conv_temporal(x4, 2, wt)]
refs = [x2.astype(np.float64) @ w2.T.astype(np.float64)]
err = float(np.abs(outs[0] - refs[0]).max() / np.abs(refs[0]).max())
print(json.dumps({"selected": _C.build_info()["cpu_kernels"], "hits": T.packed_hits(), "linear_rel_err": err,
                  "digest": hashlib.sha256(b"".join(o.tobytes() for o in outs)).hexdigest()}))
"""


def run_child(code, env, *args):
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def available_variants():
    info = _C.build_info()
    variants = ["baseline"]
    if "avx2" in info["cpu_kernels_built"] and {"avx2", "fma"} <= set(info["cpu_features"].split()):
        variants.append("avx2")
    return variants


@pytest.mark.parametrize("variant", available_variants())
def test_each_kernel_variant_runs_the_packed_path_bit_identically_on_1_and_2_threads(variant):
    got = {t: run_child(OPS_CHILD, {"SVDC_CPU_KERNELS": variant, "OMP_NUM_THREADS": str(t)}) for t in (1, 2)}
    for t, g in got.items():
        assert g["selected"] == variant, g
        assert g["hits"] == 4, g
        assert g["linear_rel_err"] < 1e-5, g
    assert got[1]["digest"] == got[2]["digest"], "the packed path's results depend on the thread count"


MODEL_CHILD = r"""
import json, sys
import numpy as np
import svdc
from svdc import tiny
from svdc._native import testing_ops
T = testing_ops()
device = sys.argv[2]
rng = np.random.default_rng(0)
unet = svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0),
                             device=device)
vae = svdc.VAE.from_config(tiny.VAE_CONFIG, tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1),
                           device=device)
sample = rng.standard_normal((1, 3, 8, 8, 8)).astype(np.float32)
context = rng.standard_normal((1, 1, 32)).astype(np.float32)
ids = rng.standard_normal((1, 3)).astype(np.float32)
latents = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
np.save(sys.argv[1] + "_unet.npy", unet(sample, np.float32(0.5), context, ids))
np.save(sys.argv[1] + "_vae.npy", vae.decode(latents, num_frames=3))
print(json.dumps({"hits": T.packed_hits(),
                  "packed_bytes": unet._native.packed_weight_bytes + vae._native.packed_weight_bytes,
                  "weight_bytes": unet._native.weight_bytes + vae._native.weight_bytes}))
"""


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_a_model_gives_the_same_outputs_with_packing_on_and_off(tmp_path, device):
    """SVDC_PREPACK: unset (Winograd and im2col convs packed), all (every GEMM weight), 0 (none)."""
    got = {mode: run_child(MODEL_CHILD, {"SVDC_PREPACK": mode}, tmp_path / f"m{mode}", device)
           for mode in ("", "all", "0")}
    assert got[""]["hits"] > 10, got  # the tiny UNet and VAE have dozens of 3x3 convs ...
    assert got["all"]["hits"] > got[""]["hits"] + 20, got  # ... and of linears, 1x1 and temporal convs
    assert got["0"]["hits"] == 0, got
    # the memory they hold: none, then more than the 3x3 weights alone (U is 16/9 of them), then more again
    assert got["0"]["packed_bytes"] == 0 < got[""]["packed_bytes"] < got["all"]["packed_bytes"], got
    assert got["all"]["packed_bytes"] > got["all"]["weight_bytes"], got
    for model in ("unet", "vae"):
        off = np.load(tmp_path / f"m0_{model}.npy").astype(np.float64)
        for mode in ("", "all"):
            on = np.load(tmp_path / f"m{mode}_{model}.npy")
            scale, err = float(np.abs(off).max()), float(np.abs(on - off).max())
            # two float32 GEMM implementations through a few dozen layers: 1e-5 of max|out| (outputs are O(1))
            assert scale > 0 and err <= 1e-5 * scale, \
                f"{device} {model} SVDC_PREPACK={mode!r}: max|on - off| = {err:.3g} (max {scale:.3g})"


def test_a_bad_prepack_setting_is_refused_at_load_naming_the_variable():
    r = subprocess.run([sys.executable, "-c", MODEL_CHILD, "/nonexistent/x", "cpu"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "SVDC_PREPACK": "yes"})
    assert r.returncode != 0
    assert "SVDC_PREPACK: expected 0, 1 or all, got 'yes'" in r.stderr
