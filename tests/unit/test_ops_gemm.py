"""linear (row-block tasks over single-threaded SGEMMs) vs float64 NumPy, including row counts that are not
multiples of the block size, leading batch dims, and its error behaviour."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, rand

_ops = load_testing_ops()


@pytest.mark.parametrize("xshape,N", [((1, 1), 1), ((1000, 77), 130), ((2, 3, 65, 40), 33), ((4097, 8), 300)])
def test_linear_matches_numpy(xshape, N):
    rng = np.random.default_rng(N)
    x, w, b = rand(rng, *xshape), rand(rng, N, xshape[-1]), rand(rng, N)
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    assert_close(_ops.linear(x, w, b), ref + b)
    assert_close(_ops.linear(x, w), ref)


def test_linear_errors_name_the_argument():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"linear: x has 4 features in its last dim, expected 5"):
        _ops.linear(x, np.zeros((2, 5), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"linear: b has shape \(3,\), expected \(2,\)"):
        _ops.linear(x, np.zeros((2, 4), np.float32), np.zeros(3, np.float32))
    with pytest.raises(svdc.ShapeError, match=r"linear: w has shape \(2, 4, 1\), expected 2 dimensions"):
        _ops.linear(x, np.zeros((2, 4, 1), np.float32))
