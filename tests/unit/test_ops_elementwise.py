"""Pointwise ops (GELU/GEGLU exact erf, SiLU, axpby/add/mul/scale, alpha blend, broadcast bias adds, fill, copy,
check_finite), dtype conversion and the timestep embedding vs NumPy / torch / diffusers."""
import math

import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, rand

_ops = load_testing_ops()

SHAPES = [(1,), (7,), (3, 5, 11), (2, 3, 4, 5, 6), (40000,)]  # the last one crosses the parallel threshold

erf = np.vectorize(math.erf)


def gelu_ref(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("shape", SHAPES)
def test_gelu_silu(shape):
    rng = np.random.default_rng(len(shape))
    x = rand(rng, *shape, scale=4.0)
    assert_close(_ops.gelu(x), gelu_ref(x))
    x64 = x.astype(np.float64)
    assert_close(_ops.silu(x), x64 / (1 + np.exp(-x64)))


def test_silu_extremes_and_in_place():
    x = np.array([-1e4, -100, -88.5, -20, -1e-30, 0, 1e-30, 20, 88.5, 100, 1e4], np.float32)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        ref = x64 / (1 + np.exp(-x64))
    np.testing.assert_allclose(_ops.silu(x), ref, rtol=1e-6, atol=1e-30)
    g = _ops.gelu(x)
    np.testing.assert_allclose(g, gelu_ref(x), rtol=1e-6, atol=1e-30)
    y = x.copy()
    assert _ops.silu(y, out=y) is y
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("shape", [(3, 10), (2, 5, 2), (1, 1, 2), (4000, 24)])
def test_geglu(shape):
    rng = np.random.default_rng(shape[0])
    x = rand(rng, *shape, scale=2.0)
    n = shape[-1] // 2
    assert_close(_ops.geglu(x), x[..., :n].astype(np.float64) * gelu_ref(x[..., n:]))


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_ops(shape):
    rng = np.random.default_rng(7)
    a, b = rand(rng, *shape), rand(rng, *shape)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_close(_ops.axpby(0.5, a, -2.0, b), 0.5 * a64 - 2.0 * b64)
    assert_close(_ops.add(a, b), a64 + b64)
    assert_close(_ops.mul(a, b), a64 * b64)
    assert_close(_ops.scale(a, -3.0), -3.0 * a64)
    assert_close(_ops.alpha_blend(a, b, 0.3), 0.3 * a64 + 0.7 * b64, rel=2e-6 * 10)
    c = a.copy()
    assert _ops.add(c, b, out=c) is c
    assert_close(c, a64 + b64)


def test_scale_keeps_inf_and_nan_like_multiplication():
    x = np.array([np.inf, -np.inf, np.nan, 1.0], np.float32)
    y = _ops.scale(x, 2.0)
    assert np.isposinf(y[0]) and np.isneginf(y[1]) and np.isnan(y[2]) and y[3] == 2.0


def test_broadcast_bias_adds():
    rng = np.random.default_rng(8)
    x, bias = rand(rng, 3, 5, 4, 6), rand(rng, 3, 5)
    assert_close(_ops.add_channel_bias(x, bias), x.astype(np.float64) + bias[:, :, None, None])
    x2 = rand(rng, 2, 5)  # no spatial dims
    assert_close(_ops.add_channel_bias(x2, rand(rng, 2, 5) * 0 + x2), 2.0 * x2.astype(np.float64))
    t, v = rand(rng, 3, 7, 9), rand(rng, 3, 9)
    assert_close(_ops.add_token_bias(t, v), t.astype(np.float64) + v[:, None, :])
    t1 = rand(rng, 1, 1, 4)
    assert_close(_ops.add_token_bias(t1, rand(rng, 1, 4) * 0), t1)


def test_fill_copy_check_finite():
    like = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(_ops.fill(like, 2.5), np.full((3, 4), 2.5, np.float32))
    x = rand(np.random.default_rng(9), 5, 3)
    np.testing.assert_array_equal(_ops.copy(x), x)
    assert _ops.check_finite(x, "sample") is None
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[4, 2] = bad
        with pytest.raises(ValueError, match=r"sample contains NaN or Inf values \(shape \(5, 3\)\)"):
            _ops.check_finite(y, "sample")
    big = np.zeros(100001, np.float32)
    big[-1] = np.nan
    with pytest.raises(ValueError, match="latents contains NaN"):
        _ops.check_finite(big, "latents")


# ---- conversion ----

SPECIALS = np.array(
    [0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10,
     3.0e38, 1.7e38, np.inf, -np.inf, np.nan, 1.00048828125, 1.000244140625, 1.0009765625 * 1.000244140625],
    np.float32,
)


def test_convert_f32_to_f16_matches_numpy():
    rng = np.random.default_rng(10)
    x = np.concatenate([SPECIALS, rand(rng, 10000, scale=1000.0), rand(rng, 10000, scale=1e-5),
                        np.frombuffer(rng.integers(0, 2**32, 20000, dtype=np.uint32).tobytes(), np.float32)])
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(np.float16)
    y = _ops.convert(x, "f16")
    assert y.dtype == np.float16
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(y), nan)
    np.testing.assert_array_equal(y[~nan].view(np.uint16), ref[~nan].view(np.uint16))


def test_convert_f16_to_f32_is_exact_for_every_half():
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    y = _ops.convert(h, "f32")
    ref = h.astype(np.float32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(y), nan)
    np.testing.assert_array_equal(y[~nan].view(np.uint32), ref[~nan].view(np.uint32))


def test_convert_bf16_round_trips_match_torch(torch_cpu):
    torch = torch_cpu
    rng = np.random.default_rng(11)
    x = np.concatenate([SPECIALS, rand(rng, 10000, scale=100.0),
                        np.frombuffer(rng.integers(0, 2**32, 20000, dtype=np.uint32).tobytes(), np.float32)])
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    y = _ops.convert(x, "bf16")
    assert y.dtype == np.uint16
    nan = np.isnan(x)
    np.testing.assert_array_equal(y[~nan], ref[~nan])
    assert np.all((y[nan] & 0x7F80) == 0x7F80) and np.all((y[nan] & 0x7F) != 0)  # still NaN
    # bf16 -> f32 is exact for every pattern
    all_bf16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    back = _ops.convert(all_bf16, "f32")
    tref = torch.from_numpy(all_bf16.view(np.int16)).view(torch.bfloat16).float().numpy()
    n = np.isnan(tref)
    np.testing.assert_array_equal(np.isnan(back), n)
    np.testing.assert_array_equal(back[~n].view(np.uint32), tref[~n].view(np.uint32))
    # f16 -> bf16 rounds once (through the exact f32)
    h = rand(rng, 5000, scale=10.0).astype(np.float16)
    hb = _ops.convert(h, "bf16")
    np.testing.assert_array_equal(hb, torch.from_numpy(h).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    np.testing.assert_array_equal(_ops.convert(hb, "f16"), torch.from_numpy(hb.view(np.int16)).view(torch.bfloat16).half().numpy())


def test_convert_errors():
    with pytest.raises(svdc.ShapeError, match=r"convert: x must be float32, float16 or uint16"):
        _ops.convert(np.zeros(3, np.float64), "f16")
    with pytest.raises(ValueError, match=r"convert: to must be 'f32', 'f16' or 'bf16', got 'f64'"):
        _ops.convert(np.zeros(3, np.float32), "f64")


# ---- timestep embedding ----

@pytest.mark.parametrize("dim", [320, 256, 7, 2, 1])
def test_timestep_embedding_matches_diffusers(torch_cpu, dim):
    torch = torch_cpu
    from diffusers.models.embeddings import get_timestep_embedding

    t = np.array([0.0, 1.0, -3.5, 0.25, 999.0, 127.0, 1e4 / 7, -700.3, 3.0e4], np.float32)
    ref = get_timestep_embedding(torch.from_numpy(t), dim, flip_sin_to_cos=True, downscale_freq_shift=0).numpy()
    y = _ops.timestep_embedding(t, dim)
    assert y.shape == (len(t), dim)
    # Same float32 argument t * freq as torch; exp/sin/cos differ from torch's by <= an ulp or so, and an ulp of an
    # argument near 3e4 is 2e-3, so the comparison is absolute 5e-6 per unit of argument magnitude.
    tol = 5e-6 * np.maximum(1.0, np.abs(t))[:, None]
    assert np.all(np.abs(y.astype(np.float64) - ref) <= tol + 2e-6), np.max(np.abs(y - ref))


def test_elementwise_errors_name_the_argument():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"mul: b has shape \(3, 2\), expected \(2, 3\) \(the shape of a\)"):
        _ops.mul(a, np.zeros((3, 2), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"alpha_blend: x_temporal has shape \(2,\), expected \(2, 3\)"):
        _ops.alpha_blend(a, np.zeros(2, np.float32), 0.5)
    with pytest.raises(ValueError, match=r"alpha_blend: alpha must be a probability in \[0, 1\], got 1.5"):
        _ops.alpha_blend(a, a, 1.5)
    with pytest.raises(svdc.ShapeError, match=r"geglu: x has an odd last dim 3"):
        _ops.geglu(a)
    with pytest.raises(svdc.ShapeError, match=r"add_channel_bias: bias has shape \(2,\), expected \(2, 3\)"):
        _ops.add_channel_bias(a, np.zeros(2, np.float32))
    with pytest.raises(svdc.ShapeError, match=r"add_token_bias: v has shape \(2, 4\), expected \(2, 5\)"):
        _ops.add_token_bias(np.zeros((2, 3, 5), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"timestep_embedding: t has shape \(2, 3\), expected 1 dimensions"):
        _ops.timestep_embedding(a, 4)
    with pytest.raises(ValueError, match=r"timestep_embedding: dim must be >= 1, got 0"):
        _ops.timestep_embedding(np.zeros(2, np.float32), 0)
    with pytest.raises(svdc.ShapeError, match=r"gelu: y has shape \(3, 2\), expected \(2, 3\)"):
        _ops.gelu(a, out=np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match=r"a: expected a numpy.ndarray"):
        _ops.add([1.0], a)
