"""Every op on the CUDA backend vs svdc's own CPU result on the same inputs, in fp32 and in fp16/bf16 storage (fp32
compute), plus the CUDA error behaviour. Skips with the reason where no GPU is usable (CI has none).

In fp16/bf16 the device converts the float32 inputs itself (round-to-nearest-even), so the reference is the CPU op
on the inputs rounded the same way: the bound then covers only the device's compute and its output rounding.
Bounds are max|cuda - cpu| <= rel * max|cpu| with these reasons:
  FP32 = 1e-5       same arithmetic, other summation order / libm (erfc, exp, sqrt) than the CPU
  FP32_SUM = 2e-5   GEMMs (cuBLAS fp32, TF32 disabled) and attention sums over K / Lk terms in another order
  FP16 = 1e-3       the fp16 output is rounded once: half an ulp is 2^-11 = 4.9e-4 of the value, x2 margin
  BF16 = 8e-3       the bf16 output is rounded once: half an ulp is 2^-8 = 3.9e-3 of the value, x2 margin
Data movement (copy, fill, permute, upsample, concat, convert) must match bit for bit.

SVDC_TEST_DEVICE=cpu runs the fp32 tests CPU-against-CPU (a self-check of this file on machines without a GPU).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import svdc
from svdc import runtime
from svdc._native import testing_ops as load_testing_ops

_ops = load_testing_ops()
DEVICE = os.environ.get("SVDC_TEST_DEVICE", "cuda")
_CUDA_COUNT, _CUDA_REASON = runtime._cuda_status()
pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and _CUDA_COUNT == 0, reason=f"no usable CUDA device: cuda {_CUDA_REASON}"
)
cuda_only = pytest.mark.skipif(DEVICE != "cuda", reason="checks CUDA-specific behaviour")

FP32, FP32_SUM, FP16, BF16 = 1e-5, 2e-5, 1e-3, 8e-3
HALF_BOUND = {"fp16": FP16, "bf16": BF16}
# fp16/bf16 are device-only: the CPU backend computes in float32 and refuses other dtypes.
DTYPES = ["fp32", pytest.param("fp16", marks=cuda_only), pytest.param("bf16", marks=cuda_only)]


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def rounded(x, dtype):
    """x rounded to dtype (round-to-nearest-even, through svdc's CPU convert) and widened back to float32."""
    if x is None or dtype == "fp32":
        return x
    bits = _ops.convert(np.ascontiguousarray(x, dtype=np.float32), "f16" if dtype == "fp16" else "bf16")
    return _ops.convert(bits, "f32")


def bound(dtype, fp32_rel=FP32, half_factor=1.0):
    return fp32_rel if dtype == "fp32" else HALF_BOUND[dtype] * half_factor


def check(fn, arrays, dtype, rel, what, **kw):
    """fn(*arrays) on DEVICE in `dtype` vs fn on the CPU in fp32 on the inputs rounded to `dtype`."""
    ref = fn(*[rounded(a, dtype) for a in arrays], **kw)
    got = fn(*arrays, device=DEVICE, dtype=dtype, **kw)
    assert got.shape == ref.shape and got.dtype == np.float32, what
    assert np.all(np.isfinite(got)), f"{what}: non-finite values on {DEVICE} in {dtype}"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    assert err <= rel * scale, f"{what} [{dtype}]: max err {err:.3e} > {rel:g} * {scale:.3e}"
    return got


def check_exact(fn, arrays, dtype, what, **kw):
    """Data movement: the device result equals the CPU result on rounded inputs bit for bit."""
    ref = rounded(fn(*[rounded(a, dtype) for a in arrays], **kw), dtype)
    got = fn(*arrays, device=DEVICE, dtype=dtype, **kw)
    np.testing.assert_array_equal(got, ref, err_msg=f"{what} [{dtype}]")


# ---- GEMM-based ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape,N", [((1, 1), 1), ((1000, 77), 130), ((2, 3, 65, 40), 33), ((4097, 8), 300)])
def test_linear(dtype, xshape, N):
    rng = np.random.default_rng(N)
    x, w, b = rand(rng, *xshape), rand(rng, N, xshape[-1]), rand(rng, N)
    check(_ops.linear, [x, w, b], dtype, bound(dtype, FP32_SUM), "linear+bias")
    check(_ops.linear, [x, w], dtype, bound(dtype, FP32_SUM), "linear")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "N,C,H,W,O,k,stride,pad",
    [
        (2, 3, 17, 19, 5, 3, (1, 1), (1, 1, 1, 1)),  # 3x3 same, odd sizes
        (1, 8, 16, 15, 7, 3, (2, 2), (0, 1, 0, 1)),  # the VAE downsampler: stride 2, asymmetric padding
        (3, 16, 9, 11, 12, 1, (1, 1), (0, 0, 0, 0)),  # 1x1: a batched GEMM on the input as is
        (1, 4, 10, 10, 6, 1, (2, 2), (0, 0, 0, 0)),  # 1x1 strided: through im2col
        (2, 5, 7, 6, 3, (3, 2), (1, 2), (2, 0, 1, 1)),  # rectangular kernel, mixed stride/padding
    ],
)
def test_conv2d(dtype, N, C, H, W, O, k, stride, pad):
    rng = np.random.default_rng(N * 100 + C)
    kh, kw = (k, k) if isinstance(k, int) else k
    x, w, b = rand(rng, N, C, H, W), rand(rng, O, C, kh, kw), rand(rng, O)
    check(_ops.conv2d, [x, w, b], dtype, bound(dtype, FP32_SUM), "conv2d+bias", stride=stride, padding=pad)
    check(_ops.conv2d, [x, w], dtype, bound(dtype, FP32_SUM), "conv2d", stride=stride, padding=pad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,F,C,O,H,W", [(1, 1, 3, 4, 2, 3), (2, 5, 6, 7, 3, 5), (1, 14, 16, 8, 4, 4)])
def test_conv_temporal(dtype, B, F, C, O, H, W):
    rng = np.random.default_rng(F * 10 + C)
    x, w, b = rand(rng, B * F, C, H, W), rand(rng, O, C, 3), rand(rng, O)
    rel = bound(dtype, FP32_SUM)  # one GEMM with K = 3C: the three taps accumulate in fp32, y is rounded once
    check(lambda x, w, b=None, **k: _ops.conv_temporal(x, F, w, b, **k), [x, w, b], dtype, rel, "conv_temporal+b")
    check(lambda x, w, **k: _ops.conv_temporal(x, F, w, **k), [x, w], dtype, rel, "conv_temporal")


# ---- normalisation ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,groups,frames,silu",
    [
        ((2, 8, 5, 3), 4, 1, False),  # per frame
        ((6, 32, 7, 9), 8, 3, True),  # pooled over 3 frames, fused SiLU
        ((2, 64, 33, 35), 4, 1, True),  # 18480 values per group: several partial-sum blocks
        ((4, 6, 1), 3, 4, False),  # spatial size 1, all rows one video
    ],
)
def test_group_norm(dtype, shape, groups, frames, silu):
    rng = np.random.default_rng(shape[1])
    x, g, b = rand(rng, *shape) + 3.0, rand(rng, shape[1]), rand(rng, shape[1])  # offset: |mean| > std
    kw = dict(frames=frames, eps=1e-6, silu=silu)
    check(lambda x, g, b, **k: _ops.group_norm(x, groups, gamma=g, beta=b, **kw, **k), [x, g, b], dtype,
          bound(dtype), "group_norm")
    check(lambda x, **k: _ops.group_norm(x, groups, **kw, **k), [x], dtype, bound(dtype), "group_norm no affine")
    bias = rand(rng, *shape[:2], scale=2.0)  # a res block's time embedding, added inside the norm's pass
    check(lambda x, g, b, a, **k: _ops.group_norm(x, groups, gamma=g, beta=b, bias=a, **kw, **k), [x, g, b, bias],
          dtype, bound(dtype), "group_norm with bias")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7, 77), (2, 1280), (5, 1), (1, 3000)])
def test_layer_norm(dtype, shape):
    rng = np.random.default_rng(shape[-1])
    x, g, b = rand(rng, *shape) - 2.0, rand(rng, shape[-1]), rand(rng, shape[-1])
    check(lambda x, g, b, **k: _ops.layer_norm(x, g, b, eps=1e-5, **k), [x, g, b], dtype, bound(dtype), "layer_norm")
    check(lambda x, **k: _ops.layer_norm(x, **k), [x], dtype, bound(dtype), "layer_norm no affine")


def test_norms_in_place():
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 8, 6, 5)
    ref = _ops.group_norm(x, 4, silu=True)
    y = x.copy()
    out = _ops.group_norm(y, 4, silu=True, out=y, device=DEVICE)
    assert out is y
    np.testing.assert_allclose(y, ref, rtol=0, atol=FP32 * np.abs(ref).max())
    t = rand(rng, 4, 33)
    ref = _ops.layer_norm(t)
    _ops.layer_norm(t, out=t, device=DEVICE)
    np.testing.assert_allclose(t, ref, rtol=0, atol=FP32 * np.abs(ref).max())


# ---- attention ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "B,Lq,Lk,heads,D",
    [
        (2, 7, 5, 2, 8),  # row kernel, odd sizes
        (3, 33, 1, 5, 16),  # Lk = 1 (image-embedding cross-attention)
        (2, 25, 25, 5, 64),  # temporal attention over 25 frames
        (2, 14, 64, 2, 64),  # the last Lk of the row kernel
        (1, 77, 65, 3, 64),  # the first Lk of the tiled kernel
        (2, 300, 333, 5, 64),  # spatial: head dim 64, sizes not multiples of the tiles
        (1, 130, 257, 2, 80),  # head dim 80 (CLIP ViT-H)
        (1, 64, 200, 1, 128),  # head dim 128: the largest tile
        (1, 40, 100, 3, 40),  # head dim 40 (column slots partly used)
        (1, 20, 90, 2, 160),  # head dim > 128: the wide tiled kernel, a 32-column second slice
        (1, 40, 130, 1, 256),  # head dim 256: two full 128-column slices and score chunks
        (2, 33, 100, 1, 512),  # head dim 512 (the VAE's mid-block attention): four slices
        (1, 20, 10, 1, 200),  # head dim > 128, short Lk: the row kernel in 128-column slices
    ],
)
def test_attention(dtype, B, Lq, Lk, heads, D):
    rng = np.random.default_rng(Lq * 7 + Lk + D)
    q, k, v = rand(rng, B, Lq, heads * D), rand(rng, B, Lk, heads * D), rand(rng, B, Lk, heads * D)
    check(lambda q, k, v, **kw: _ops.attention(q, k, v, heads, D**-0.5, **kw), [q, k, v], dtype,
          bound(dtype, FP32_SUM), "attention")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L,heads,D", [(9, 2, 8), (130, 2, 64), (64, 1, 80), (65, 3, 32), (200, 1, 128), (130, 2, 200)])
def test_causal_attention(dtype, L, heads, D):
    rng = np.random.default_rng(L + D)
    q, k, v = rand(rng, 2, L, heads * D), rand(rng, 2, L, heads * D), rand(rng, 2, L, heads * D)
    check(lambda q, k, v, **kw: _ops.attention(q, k, v, heads, 0.3, True, **kw), [q, k, v], dtype,
          bound(dtype, FP32_SUM), "causal attention")


def test_attention_large_scores_do_not_overflow():
    rng = np.random.default_rng(2)
    q, k, v = rand(rng, 1, 50, 16, scale=30.0), rand(rng, 1, 300, 16, scale=30.0), rand(rng, 1, 300, 16)
    check(lambda q, k, v, **kw: _ops.attention(q, k, v, 1, 1.0, **kw), [q, k, v], "fp32", FP32_SUM, "attention")


# ---- elementwise ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["gelu", "silu"])
def test_activation(dtype, op):
    rng = np.random.default_rng(3)
    x = rand(rng, 3, 1001, scale=4.0)
    check(getattr(_ops, op), [x], dtype, bound(dtype), op)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geglu(dtype):
    rng = np.random.default_rng(4)
    check(_ops.geglu, [rand(rng, 2, 9, 2 * 37, scale=3.0)], dtype, bound(dtype), "geglu")


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_ops(dtype):
    rng = np.random.default_rng(6)
    a, b = rand(rng, 4, 5, 333), rand(rng, 4, 5, 333)
    rel = bound(dtype)
    check(_ops.add, [a, b], dtype, rel, "add")
    check(_ops.mul, [a, b], dtype, rel, "mul")
    check(lambda a, b, **k: _ops.axpby(0.7, a, -1.3, b, **k), [a, b], dtype, rel, "axpby")
    check(lambda a, **k: _ops.scale(a, -2.5, **k), [a], dtype, rel, "scale")
    check(lambda a, b, **k: _ops.alpha_blend(a, b, 0.25, **k), [a, b], dtype, rel, "alpha_blend")
    x, r = rand(rng, 2, 33, 7, 64), rand(rng, 2, 7, 33, 64)
    check(lambda x, r, **k: _ops.permute_0213_axpby(0.3, x, 0.7, r, **k), [x, r], dtype, rel, "permute_0213_axpby")
    x, r = rand(rng, 3, 70, 45, 1), rand(rng, 3, 45, 70, 1)
    check(lambda x, r, **k: _ops.permute_0213_axpby(1.0, x, 1.0, r, **k), [x, r], dtype, rel,
          "permute_0213_axpby (D = 1)")


def test_scale_does_not_read_b():
    x = np.array([1.0, np.inf, -2.0], np.float32)
    y = _ops.scale(x, 0.0, device=DEVICE)  # 0 * inf = nan, exactly as the CPU (beta = 0 leaves b unread)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(_ops.scale(x, 0.0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_bias_adds(dtype):
    rng = np.random.default_rng(7)
    x, bias = rand(rng, 3, 5, 7, 9), rand(rng, 3, 5)
    check(_ops.add_channel_bias, [x, bias], dtype, bound(dtype), "add_channel_bias")
    t, v = rand(rng, 4, 11, 13), rand(rng, 4, 13)
    check(_ops.add_token_bias, [t, v], dtype, bound(dtype), "add_token_bias")


def test_bias_adds_in_place():
    rng = np.random.default_rng(8)
    x, bias = rand(rng, 2, 3, 4), rand(rng, 2, 3)
    ref = _ops.add_channel_bias(x, bias)
    _ops.add_channel_bias(x, bias, out=x, device=DEVICE)
    np.testing.assert_allclose(x, ref, rtol=FP32, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [320, 7, 1])
def test_timestep_embedding(dtype, dim):
    t = np.array([0.0, 1.0, 999.0, 0.02, 500.5], np.float32)
    check(lambda t, **k: _ops.timestep_embedding(t, dim, **k), [t], dtype, bound(dtype), "timestep_embedding")


# ---- data movement: bit for bit ----


@pytest.mark.parametrize("dtype", DTYPES)
def test_data_movement_is_exact(dtype):
    rng = np.random.default_rng(9)
    x = rand(rng, 2, 3, 5, 7)
    check_exact(_ops.copy, [x], dtype, "copy")
    check_exact(_ops.upsample_nearest2x, [x], dtype, "upsample_nearest2x")
    check_exact(_ops.concat_channels, [x, rand(rng, 2, 4, 5, 7)], dtype, "concat_channels")
    check_exact(_ops.permute_0213, [x], dtype, "permute_0213")
    check_exact(_ops.permute_0213, [rand(rng, 3, 70, 45, 1)], dtype, "permute_0213 (transpose tiles)")
    check_exact(_ops.permute_0213, [rand(rng, 2, 25, 33, 8)], dtype, "permute_0213 (rows of 8)")
    check_exact(lambda like, **k: _ops.fill(like, 0.1, **k), [x], dtype, "fill")


@pytest.mark.parametrize("to", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("src", ["f32", "f16", "bf16"])
def test_convert_is_bit_exact(src, to):
    # Every float16 and bfloat16 bit pattern (subnormals, Inf, NaN payloads) plus float32 values near the rounding
    # boundaries of both: the device must reproduce the CPU's conversion bit for bit.
    rng = np.random.default_rng(10)
    pats = np.arange(65536, dtype=np.uint32)
    f32 = np.concatenate([
        (pats << 16).view(np.float32),  # every bf16 value as float32
        _ops.convert(pats.astype(np.uint16).view(np.float16), "f32"),  # every f16 value as float32
        ((pats << 16) | 0x8000).view(np.float32),  # ties of bf16 rounding
        ((pats << 16) | rng.integers(0, 1 << 16, 65536, dtype=np.uint32)).view(np.float32),
    ]).astype(np.float32)
    x = f32 if src == "f32" else _ops.convert(f32, src)
    ref = _ops.convert(x, to)
    got = _ops.convert(x, to, device=DEVICE)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8))


# ---- check_finite ----


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_finite(dtype):
    x = np.linspace(-3, 3, 10007, dtype=np.float32)
    _ops.check_finite(x, "latents", device=DEVICE, dtype=dtype)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[7777] = bad
        with pytest.raises(ValueError, match=r"latents contains NaN or Inf"):
            _ops.check_finite(y, "latents", device=DEVICE, dtype=dtype)


@cuda_only
def test_fp16_overflow_is_caught():
    x = np.array([1.0, 70000.0], np.float32)  # beyond the fp16 range: the device conversion makes it Inf
    _ops.check_finite(x, "x", device=DEVICE, dtype="bf16")  # bf16 has float32's range
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        _ops.check_finite(x, "x", device=DEVICE, dtype="fp16")


# ---- errors ----


@cuda_only
def test_mixed_dtypes_are_refused():
    x, w = np.ones((3, 4), np.float32), np.ones((2, 4), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"linear: w has dtype float32, expected float16 \(the dtype of x"):
        _ops.linear(x, w, device=DEVICE, dtype=("fp16", "fp32", "fp16", "fp16"))
    with pytest.raises(svdc.ShapeError, match=r"add: y has dtype bfloat16, expected float16"):
        _ops.add(x, x, device=DEVICE, dtype=("fp16", "fp16", "bf16"))


def test_shape_errors_come_before_the_device():
    with pytest.raises(svdc.ShapeError, match=r"linear: x has 4 features in its last dim, expected 5"):
        _ops.linear(np.zeros((3, 4), np.float32), np.zeros((2, 5), np.float32), device=DEVICE)


def test_out_of_memory_names_the_bytes():
    pattern = r"could not allocate \d+ bytes on cuda device 0 .*bytes free of \d+" if DEVICE == "cuda" else \
        r"could not allocate \d+ bytes"
    with pytest.raises(MemoryError, match=pattern):
        _ops.arena_alloc(1 << 50, device=DEVICE)
    _ops.arena_alloc(1 << 20, device=DEVICE)  # the device still works afterwards
    x = np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(_ops.add(x, x, device=DEVICE), 2 * x)


@cuda_only
def test_reports_whether_cublas_is_used():
    from svdc import _C_cuda

    print(f"GEMMs on {_C_cuda.device_name(0)} go through {'cuBLAS' if _C_cuda.uses_cublas(0) else 'the fallback'}")
    assert _C_cuda.uses_cublas(0) in (True, False)


@cuda_only
def test_sticky_error_refuses_work_without_crashing():
    # An illegal address destroys the CUDA context of the process: run it in a child process.
    code = textwrap.dedent(
        """
        import numpy as np, svdc
        from svdc import runtime, _C_cuda
        from svdc._native import testing_ops
        _ops = load_testing_ops()
        assert runtime._cuda_status()[0] > 0
        x = np.ones((2, 3), np.float32)
        _ops.add(x, x, device="cuda")
        print("FAULT:", _C_cuda._debug_fault(0))
        for attempt in range(2):
            try:
                _ops.add(x, x, device="cuda")
                print("NO ERROR")
            except svdc.DeviceUnavailableError as exc:
                print("REFUSED:", exc)
        print("CPU STILL WORKS:", float(_ops.add(x, x).sum()))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr
    assert "FAULT: cuda: device 0 is unusable after an earlier error (cudaErrorIllegalAddress" in r.stdout, r.stdout
    assert r.stdout.count("REFUSED: cuda: device 0 is unusable after an earlier error") == 2, r.stdout
    assert "CPU STILL WORKS: 12.0" in r.stdout, r.stdout
