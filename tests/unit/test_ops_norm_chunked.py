"""group_norm_moments and group_norm_apply (the group norm in two halves, for statistics gathered over chunks) vs
float64 NumPy, and their use by the streamed VAE decoder: moments of chunks combined in double, then applied, equal
group_norm of the whole tensor."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, group_norm_ref, rand

_ops = load_testing_ops()


def moments_ref(x, groups, frames):
    """(N/frames, G, 2) float64: (mean, sum of squared deviations) per (video, group)."""
    g = x.astype(np.float64).reshape(x.shape[0] // frames, frames, groups, -1).transpose(0, 2, 1, 3)
    g = g.reshape(g.shape[0], groups, -1)
    mean = g.mean(axis=2)
    return np.stack([mean, ((g - mean[..., None]) ** 2).sum(axis=2)], axis=-1)


def combine(parts, counts):
    """Chan et al.'s pairwise combination of (mean_hi, mean_lo, m2) chunks, in double, as vae_decoder_stream.c."""
    n, mean, m2 = 0.0, 0.0, 0.0
    for m, cnt in zip(parts, counts):
        mb = m[..., 0].astype(np.float64) + m[..., 1]
        delta = mb - mean
        tot = n + cnt
        mean = mean + delta * cnt / tot
        m2 = m2 + m[..., 2] + delta * delta * n * cnt / tot
        n = tot
    return mean, m2 / n


def stats_of(mean, var, eps):
    hi = mean.astype(np.float32)
    return np.stack([hi, (mean - hi).astype(np.float32), (1.0 / np.sqrt(var + eps)).astype(np.float32)], axis=-1)


@pytest.mark.parametrize("shape,groups,frames", [((2, 8, 5, 7), 4, 1), ((6, 8, 3, 5), 2, 3), ((5, 6, 1, 1), 3, 5),
                                                 ((1, 4, 7), 4, 1), ((1, 3, 1, 1), 1, 1)])
def test_moments_match_numpy(shape, groups, frames):
    rng = np.random.default_rng(shape[0] + groups)
    x = rand(rng, *shape, scale=3.0) + 100.0  # |mean| >> std: the shifted sums keep m2's precision
    m = _ops.group_norm_moments(x, groups, frames)
    ref = moments_ref(x, groups, frames)
    assert m.shape == (shape[0] // frames, groups, 3) and m.dtype == np.float32
    assert_close(m[..., 0].astype(np.float64) + m[..., 1], ref[..., 0], rel=1e-12, what="mean")
    assert_close(m[..., 2], ref[..., 1], rel=1e-6, what="m2")


@pytest.mark.parametrize("silu", [False, True])
def test_apply_matches_numpy(silu):
    rng = np.random.default_rng(3)
    x, g, b = rand(rng, 6, 8, 3, 5), rand(rng, 8), rand(rng, 8)
    mean, rstd = rand(rng, 2, 4).astype(np.float64), np.abs(rand(rng, 2, 4)).astype(np.float64) + 0.5
    stats = stats_of(mean, 1.0 / rstd ** 2, 0.0)
    # ((x - hi) - lo) * rstd * gamma + beta, with each (video, group)'s statistics
    s = stats.astype(np.float64)
    per = np.repeat(np.repeat(s, 3, axis=0), 2, axis=1)  # (6, 8, 3): row n's video, channel c's group
    ref = (x - per[..., 0, None, None] - per[..., 1, None, None]) * per[..., 2, None, None] * g[:, None, None] \
        + b[:, None, None]
    if silu:
        ref = ref / (1.0 + np.exp(-ref))
    assert_close(_ops.group_norm_apply(x, 4, stats, 3, g, b, silu), ref, rel=1e-6)
    y = x.copy()
    _ops.group_norm_apply(y, 4, stats, 3, g, b, silu, out=y)  # in place
    assert_close(y, ref, rel=1e-6)


@pytest.mark.parametrize("chunks", ["frames", "pixels"])
def test_chunked_statistics_equal_the_whole_group_norm(chunks):
    rng = np.random.default_rng(11)
    F, C, G, eps = 5, 8, 4, 1e-5
    x, g, b = rand(rng, F, C, 4, 6, scale=2.0) + 3.0, rand(rng, C), rand(rng, C)
    if chunks == "frames":  # as a frame-local segment writes the resident: one frame at a time
        parts = [_ops.group_norm_moments(x[t:t + 1], G, 1) for t in range(F)]
        counts = [C // G * 24] * F
    else:  # as pass A: bands of pixels of every frame
        flat = x.reshape(F, C, 24)
        bands = [np.ascontiguousarray(flat[:, :, p:p + 7]).reshape(F, C, 1, -1) for p in range(0, 24, 7)]
        parts = [_ops.group_norm_moments(band, G, F) for band in bands]
        counts = [F * C // G * band.shape[3] for band in bands]
    mean, var = combine(parts, counts)
    y = _ops.group_norm_apply(x, G, stats_of(mean, var, eps), F, g, b, True)
    assert_close(y, group_norm_ref(x, G, F, g, b, eps, True), rel=2e-6)


def test_bad_statistics_are_named():
    x = rand(np.random.default_rng(0), 4, 6, 3, 5)
    with pytest.raises(svdc.ShapeError, match="stats has shape"):
        _ops.group_norm_apply(x, 3, np.zeros((4, 3, 3), np.float32), 2)
    with pytest.raises(svdc.ShapeError, match="not divisible by num_groups"):
        _ops.group_norm_moments(x, 4, 2)
    with pytest.raises(svdc.ShapeError, match="not a multiple of frames"):
        _ops.group_norm_moments(x, 3, 3)
