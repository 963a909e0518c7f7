"""group_norm (per frame, pooled over frames, fused SiLU, in place) and layer_norm vs float64 NumPy and torch."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, group_norm_ref, rand

_ops = load_testing_ops()


@pytest.mark.parametrize(
    "shape,groups,frames",
    [
        ((2, 8, 5, 7), 4, 1),  # per frame
        ((6, 8, 3, 5), 2, 3),  # pooled over 3 frames of 2 videos
        ((5, 6, 1, 1), 3, 5),  # 1x1 spatial, one video of 5 frames
        ((1, 4, 7), 4, 1),  # 3-D input, one channel per group
        ((4, 32, 2, 3, 2), 32, 2),  # more spatial dims
        ((1, 3, 1, 1), 1, 1),  # one element per channel
    ],
)
@pytest.mark.parametrize("silu", [False, True])
def test_group_norm_matches_numpy(shape, groups, frames, silu):
    rng = np.random.default_rng(len(shape) + groups)
    C = shape[1]
    x, g, b = rand(rng, *shape, scale=3.0) + 1.5, rand(rng, C), rand(rng, C)
    assert_close(_ops.group_norm(x, groups, frames, g, b, 1e-6, silu), group_norm_ref(x, groups, frames, g, b, 1e-6, silu))
    assert_close(
        _ops.group_norm(x, groups, frames, None, None, 1e-5, silu), group_norm_ref(x, groups, frames, None, None, 1e-5, silu)
    )


def test_group_norm_pooled_equals_torch_5d(torch_cpu):
    torch = torch_cpu
    rng = np.random.default_rng(5)
    B, F, C, H, W = 2, 3, 8, 4, 5
    x, g, b = rand(rng, B * F, C, H, W), rand(rng, C), rand(rng, C)
    # (b f) c h w -> b c f h w: torch's 5-D GroupNorm pools the frames
    xt = torch.from_numpy(x).reshape(B, F, C, H, W).permute(0, 2, 1, 3, 4)
    ref = torch.nn.functional.group_norm(xt, 4, torch.from_numpy(g), torch.from_numpy(b), eps=1e-6)
    ref = ref.permute(0, 2, 1, 3, 4).reshape(B * F, C, H, W).numpy()
    assert_close(_ops.group_norm(x, 4, F, g, b, 1e-6), ref)


def test_group_norm_large_mean_keeps_precision():
    rng = np.random.default_rng(6)
    x = (rand(rng, 2, 4, 16, 16) * 0.01 + 1000.0).astype(np.float32)
    y = _ops.group_norm(x, 2, 1, None, None, 1e-6)
    assert_close(y, group_norm_ref(x, 2, 1, None, None, 1e-6, False), rel=1e-4)


def test_group_norm_in_place():
    rng = np.random.default_rng(7)
    x, g, b = rand(rng, 4, 6, 3, 3), rand(rng, 6), rand(rng, 6)
    ref = group_norm_ref(x, 3, 2, g, b, 1e-5, True)
    out = _ops.group_norm(x, 3, 2, g, b, 1e-5, True, out=x)
    assert out is x
    assert_close(x, ref)


@pytest.mark.parametrize("shape,groups,frames", [((4, 6, 3, 5), 3, 2), ((2, 64, 9, 7), 32, 1), ((3, 4, 1, 1), 2, 3)])
def test_group_norm_with_bias_is_the_add_then_the_norm(shape, groups, frames):
    """bias (N, C) added inside the norm's pass: the same bits as add_channel_bias followed by group_norm (the sum is
    rounded to float32 first in both), and float64 NumPy of norm(x + bias)."""
    rng = np.random.default_rng(sum(shape))
    x, g, b, bias = rand(rng, *shape, scale=2.0), rand(rng, shape[1]), rand(rng, shape[1]), rand(rng, *shape[:2])
    fused = _ops.group_norm(x, groups, frames, g, b, 1e-6, True, bias=bias)
    two_ops = _ops.group_norm(_ops.add_channel_bias(x, bias), groups, frames, g, b, 1e-6, True)
    np.testing.assert_array_equal(fused, two_ops)
    summed = (x + bias.reshape(bias.shape + (1,) * (x.ndim - 2))).astype(np.float32)
    assert_close(fused, group_norm_ref(summed, groups, frames, g, b, 1e-6, True))
    out = _ops.group_norm(x, groups, frames, g, b, 1e-6, True, out=x, bias=bias)  # in place, as the res blocks run it
    assert out is x
    np.testing.assert_array_equal(x, two_ops)


def test_group_norm_bias_errors_name_the_argument():
    x = np.zeros((4, 6, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"group_norm: bias has shape \(4, 5\), expected \(4, 6\)"):
        _ops.group_norm(x, 3, 1, bias=np.zeros((4, 5), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"group_norm: bias has shape \(24,\), expected \(4, 6\)"):
        _ops.group_norm(x, 3, 1, bias=np.zeros(24, np.float32))


@pytest.mark.parametrize("shape", [(3, 7), (2, 5, 33), (1, 1), (4, 1, 1024)])
def test_layer_norm_matches_numpy(shape):
    rng = np.random.default_rng(shape[-1])
    x, g, b = rand(rng, *shape) + 2.0, rand(rng, shape[-1]), rand(rng, shape[-1])
    x64 = x.astype(np.float64)
    norm = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    assert_close(_ops.layer_norm(x, g, b, 1e-5), norm * g + b)
    assert_close(_ops.layer_norm(x, None, None, 1e-5), norm)
    y = x.copy()
    _ops.layer_norm(y, g, b, 1e-5, out=y)
    assert_close(y, norm * g + b)


def test_norm_errors_name_the_argument():
    x = np.zeros((2, 6, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"group_norm: x has 6 channels, not divisible by num_groups = 4"):
        _ops.group_norm(x, 4)
    with pytest.raises(svdc.ShapeError, match=r"group_norm: x has 2 rows, not a multiple of frames = 3"):
        _ops.group_norm(x, 3, 3)
    with pytest.raises(ValueError, match=r"group_norm: num_groups must be >= 1, got 0"):
        _ops.group_norm(x, 0)
    with pytest.raises(svdc.ShapeError, match=r"group_norm: gamma has shape \(5,\), expected \(6,\)"):
        _ops.group_norm(x, 3, 1, np.zeros(5, np.float32))
    with pytest.raises(svdc.ShapeError, match=r"group_norm: x has shape \(2, 6\), expected at least 3 dimensions"):
        _ops.group_norm(x[:, :, 0, 0].copy(), 3)
    with pytest.raises(ValueError, match=r"group_norm: eps must be finite and >= 0"):
        _ops.group_norm(x, 3, 1, None, None, -1.0)
    with pytest.raises(svdc.ShapeError, match=r"group_norm: y has shape \(2, 6, 3, 2\), expected \(2, 6, 3, 3\)"):
        _ops.group_norm(x, 3, out=np.zeros((2, 6, 3, 2), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"layer_norm: beta has shape \(2,\), expected \(3,\)"):
        _ops.layer_norm(x, None, np.zeros(2, np.float32))
