"""Cut detection on a generated video with known hard cuts, a fade, a dissolve and a flash."""
import numpy as np
import pytest

from svdc import _C
from svdc.curation.cuts import CutParams, detect_cuts
from svdc.curation.io import SmallFrames
from svdc.curation.signals import SignalAccumulator
from tests.curation._videos import encode


def signals_of(path, params):
    with SmallFrames(path, sample_fps=0) as frames:
        acc = SignalAccumulator(params.lags(frames.info.fps), chunk=50)  # small chunks: the carry-over is used
        times = []
        for f in frames:
            acc.add(f.y, f.u, f.v)
            times.append(f.time)
        fps = frames.info.fps
    return acc.finish(), np.array(times), fps


def test_plane_downscale_matches_box_mean():
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    stride = 64
    buf = np.zeros((37, stride), np.uint8)
    buf[:, :53] = plane
    out = _C._plane_downscale(buf.tobytes(), 53, 37, stride, 5, 3)
    expect = plane[:36, :50].reshape(12, 3, 10, 5).mean(axis=(1, 3))
    assert out.shape == (12, 10) and out.dtype == np.uint8
    assert np.abs(out.astype(float) - expect).max() <= 0.5 + 1e-9
    with pytest.raises(ValueError, match="too small"):
        _C._plane_downscale(b"\0" * 10, 53, 37, stride, 5, 3)


def _box_mean_of_sampled_rows(plane, fx, fy, rows):
    """NumPy reference of _plane_downscale: the rounded mean over `rows` evenly spaced rows of each fy x fx block."""
    h, w = plane.shape[0] // fy, plane.shape[1] // fx
    offsets = [((2 * k + 1) * fy) // (2 * rows) for k in range(rows)]
    blocks = plane[: h * fy, : w * fx].reshape(h, fy, w, fx)[:, offsets].astype(np.int64)  # (h, rows, w, fx)
    area = fx * rows
    return ((blocks.sum(axis=(1, 3)) + area // 2) // area).astype(np.uint8)


@pytest.mark.parametrize("fx,fy,rows", [(1, 1, 1), (2, 2, 1), (3, 4, 2), (5, 5, 2), (6, 6, 2), (7, 3, 3), (8, 8, 2),
                                        (10, 10, 3), (15, 15, 5), (16, 9, 9), (40, 40, 40), (255, 2, 2)])
def test_plane_downscale_exact_for_every_factor_path(fx, fy, rows):
    """The unrolled factors, the generic path and the largest areas (the division by multiply-shift) round exactly
    like the integer reference, on noise and on all-255 blocks (the largest sums)."""
    rng = np.random.default_rng(fx * 1000 + fy)
    for plane in (rng.integers(0, 256, (3 * fy + 1, 300), dtype=np.uint8), np.full((2 * fy, 300), 255, np.uint8)):
        buf = np.zeros((plane.shape[0], 320), np.uint8)
        buf[:, :300] = plane
        out = _C._plane_downscale(buf, 300, plane.shape[0], 320, fx, fy, rows)
        np.testing.assert_array_equal(out, _box_mean_of_sampled_rows(plane, fx, fy, rows))


def test_plane_histograms_and_lag_mad_match_numpy():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (7, 9, 13), dtype=np.uint8)
    frames[3] = 17  # a uniform frame: spread 0
    hist, mean, std = _C._plane_histograms(frames, 3)
    flat = frames.reshape(7, -1)
    expect = np.stack([np.bincount(f >> 3, minlength=32) for f in flat]).astype(np.float32) / flat.shape[1]
    np.testing.assert_array_equal(hist, expect)
    np.testing.assert_allclose(mean, flat.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std, flat.std(axis=1), rtol=1e-5, atol=1e-6)
    assert std[3] == 0 and mean[3] == 17
    for lag in (1, 3):
        expect = np.abs(flat[lag:].astype(int) - flat[:-lag]).mean(axis=1)
        np.testing.assert_allclose(_C._plane_lag_mad(frames, lag), expect, rtol=1e-6)
    with pytest.raises(ValueError, match="shift"):
        _C._plane_histograms(frames, 8)
    with pytest.raises(TypeError, match="uint8"):
        _C._plane_histograms(frames.astype(np.float32), 3)


def test_hard_cuts_exact_gradual_found_flash_ignored(labelled_video):
    path, labels = labelled_video
    params = CutParams()
    signals, times, fps = signals_of(path, params)
    assert signals.num_frames == labels["num_frames"]
    cuts = detect_cuts(signals, fps, times, params)
    hard = [c.frame for c in cuts if c.kind == "hard"]
    gradual = [c for c in cuts if c.kind == "gradual"]
    assert hard == labels["cuts"]
    assert len(gradual) == len(labels["gradual"]), [(c.frame, c.start, c.end) for c in gradual]
    for (kind, start, end), c in zip(labels["gradual"], gradual):
        assert start <= c.frame <= end, f"{kind} [{start}, {end}] reported at {c.frame}"
        assert c.start <= start + 2 and c.end >= end - 2, f"{kind} interval [{c.start}, {c.end}] too short"
        assert c.level >= 1 and c.levels
    f0, f1 = labels["flash"]
    assert not [c for c in cuts if f0 - 1 <= c.frame <= f1 + 1], "the flash was reported as a cut"
    for c in cuts:
        assert c.time == pytest.approx(times[c.frame])


def test_single_native_level_misses_the_gradual_transitions(labelled_video):
    """The cascade's reason to exist: without the coarse levels only the hard cuts are found."""
    path, labels = labelled_video
    params = CutParams(levels_fps=(), hist_thresholds=())
    signals, times, fps = signals_of(path, params)
    cuts = detect_cuts(signals, fps, times, params)
    assert [c.frame for c in cuts] == labels["cuts"]


@pytest.mark.parametrize("field,value,match", [
    ("levels_fps", (8.0, 0.0, 2.0), "levels_fps"),
    ("levels_fps", (8.0, -4.0, 2.0), "levels_fps"),
    ("hist_thresholds", (0.3, float("nan"), 0.3), "hist_thresholds"),
    ("linearity", float("nan"), "linearity"),
    ("hash_min", float("inf"), "hash_min"),
    ("pixel_min", -1.0, "pixel_min"),
    ("hist_thresholds", (0.3, 0.3), "one per level"),
])
def test_absurd_parameters_are_refused(field, value, match):
    params = CutParams(**{field: value})
    with pytest.raises(ValueError, match=match):
        params.validate()


def _detect(path):
    params = CutParams()
    signals, times, fps = signals_of(path, params)
    return detect_cuts(signals, fps, times, params)


@pytest.fixture(scope="module")
def dissolve_wipe_pan_video(tmp_path_factory):
    """160x96 at 24 fps, 240 frames: a dissolve over frames 60..75 between two crops of one texture (alike colours:
    the histograms barely move), a left-to-right wipe over 130..147 into another shot, a hard cut at 170 into a fast
    pan (6 px a frame) to the end. Returns (path, labels)."""
    from tests.curation._videos import texture

    h, w, fps = 96, 160, 24
    photo = texture(3, h, 4 * w, (120, 120, 120))  # one "photo": two crops of it look alike in colour
    other = texture(4, h, w + 200, (40, 60, 200))
    fast = texture(5, h, w + 600, (200, 120, 40))

    def crop_a(i):
        x = i // 2
        return photo[:, x:x + w]

    def crop_b(i):
        x = 2 * w + i // 2
        return photo[:, x:x + w]

    def shot_c(i):
        x = (i // 2) % 200
        return other[:, x:x + w]

    rng = np.random.default_rng(1)
    noise = [rng.normal(0, 2, (h, w, 3)).astype(np.float32) for _ in range(4)]
    frames = []
    for i in range(240):
        if i < 60:
            img = crop_a(i)
        elif i < 76:  # dissolve 60..75
            a = (i - 59) / 17
            img = crop_a(i) * (1 - a) + crop_b(i) * a
        elif i < 130:
            img = crop_b(i)
        elif i < 148:  # wipe 130..147: shot C enters from the left
            edge = int(round((i - 129) / 19 * w))
            img = crop_b(i).copy()
            img[:, :edge] = shot_c(i)[:, :edge]
        elif i < 170:
            img = shot_c(i)
        else:  # fast pan: 6 px a frame over a third texture
            x = 6 * (i - 170)
            img = fast[:, x:x + w]
        frames.append(np.clip(img + noise[i % 4], 0, 255).astype(np.uint8))
    path = tmp_path_factory.mktemp("videos") / "dissolve_wipe_pan.mp4"
    encode(path, frames, fps)
    return str(path), {"cuts": [170], "gradual": [("dissolve", 60, 75), ("wipe", 130, 147)], "pan": (171, 239)}


def test_similar_dissolve_and_wipe_found_fast_pan_ignored(dissolve_wipe_pan_video):
    path, labels = dissolve_wipe_pan_video
    cuts = _detect(path)
    assert [c.frame for c in cuts if c.kind == "hard"] == labels["cuts"], [(c.frame, c.kind) for c in cuts]
    gradual = [c for c in cuts if c.kind == "gradual"]
    assert len(gradual) == 2, [(c.frame, c.start, c.end) for c in gradual]
    for (kind, start, end), c in zip(labels["gradual"], gradual):
        assert start <= c.frame <= end, f"{kind} [{start}, {end}] reported at {c.frame}"
        # the interval covers the transition (give or take the frame the windows end on) and not much more
        assert c.start <= start + 2 and c.end >= end - 2, f"{kind} interval [{c.start}, {c.end}] too short"
        assert c.start >= start - 16 and c.end <= end + 16, f"{kind} interval [{c.start}, {c.end}] too long"
    p0, p1 = labels["pan"]
    assert not [c for c in cuts if p0 <= c.frame <= p1 + 1], "the fast pan fired"


def test_similar_dissolve_and_wipe_need_the_contrast_test(dissolve_wipe_pan_video):
    """Without the contrast test the twin comparison alone misses the dissolve of alike colours and the wipe."""
    path, labels = dissolve_wipe_pan_video
    params = CutParams(contrast_ratio=0)
    signals, times, fps = signals_of(path, params)
    frames = [c.frame for c in detect_cuts(signals, fps, times, params)]
    found = [any(s <= f <= e for f in frames) for _, s, e in labels["gradual"]]
    assert not any(found), frames
