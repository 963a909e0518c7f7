"""Nearest x2 upsampling, channel concat and the (0, 2, 1, 3) permute vs NumPy (exact: pure data movement), and the
permute with its weighted sum fused in (permute_0213_axpby, exact against float32 NumPy: one product each, one add)."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import rand

_ops = load_testing_ops()


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 4, 64, 33)])
def test_upsample_nearest2x(shape):
    x = rand(np.random.default_rng(0), *shape)
    np.testing.assert_array_equal(_ops.upsample_nearest2x(x), x.repeat(2, axis=2).repeat(2, axis=3))


@pytest.mark.parametrize("sa,c2", [((2, 3, 4, 5), 6), ((1, 1, 1), 1), ((3, 2), 5), ((4, 320, 9, 16), 640)])
def test_concat_channels(sa, c2):
    rng = np.random.default_rng(1)
    a = rand(rng, *sa)
    b = rand(rng, sa[0], c2, *sa[2:])
    np.testing.assert_array_equal(_ops.concat_channels(a, b), np.concatenate([a, b], axis=1))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 14, 37, 1), (3, 100, 70, 1), (1, 1, 1, 1), (2, 5, 1, 3)])
def test_permute_0213(shape):
    x = rand(np.random.default_rng(2), *shape)
    np.testing.assert_array_equal(_ops.permute_0213(x), x.transpose(0, 2, 1, 3))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 14, 37, 1), (3, 100, 70, 1), (1, 1, 1, 1), (2, 5, 1, 3)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.3, 0.7), (-1.5, 0.0)])
def test_permute_0213_axpby(shape, alpha, beta):
    rng = np.random.default_rng(3)
    x = rand(rng, *shape)
    r = rand(rng, shape[0], shape[2], shape[1], shape[3])
    ref = np.float32(alpha) * x.transpose(0, 2, 1, 3) + np.float32(beta) * r
    np.testing.assert_array_equal(_ops.permute_0213_axpby(alpha, x, beta, r), ref)
    out = _ops.permute_0213_axpby(alpha, x, beta, r, out=r)  # r may be the output itself
    assert out is r
    np.testing.assert_array_equal(r, ref)


def test_resample_errors_name_the_argument():
    with pytest.raises(svdc.ShapeError, match=r"upsample_nearest2x: x has shape \(2, 3, 4\), expected 4 dimensions"):
        _ops.upsample_nearest2x(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"concat_channels: b has shape \(2, 5, 3\), expected \(2, 5, 4\)"):
        _ops.concat_channels(np.zeros((2, 3, 4), np.float32), np.zeros((2, 5, 3), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"permute_0213: x has shape \(2, 3\), expected 4 dimensions"):
        _ops.permute_0213(np.zeros((2, 3), np.float32))
    x = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"permute_0213_axpby: r has shape \(2, 3, 4, 5\), expected "
                                              r"\(2, 4, 3, 5\) \(the shape of y\)"):
        _ops.permute_0213_axpby(1.0, x, 1.0, x)
    with pytest.raises(ValueError, match=r"permute_0213_axpby: alpha must be finite, got inf"):
        _ops.permute_0213_axpby(float("inf"), x, 1.0, np.zeros((2, 4, 3, 5), np.float32))
