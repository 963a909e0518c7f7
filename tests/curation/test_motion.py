"""Motion score: Farnebäck at 2 fps on 16-px frames; known pans and a static shot."""
import numpy as np
import pytest

from svdc.curation import process_video
from svdc.curation.motion import MotionBucketMap
from svdc.curation.pipeline import CurationParams
from svdc.curation.clips import ClipParams

from tests.curation._videos import encode


def photo_like(seed, h, w):
    """A texture with structure at several scales (64, 32 and 16 px), like a photograph's."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell, weight in ((64, 0.5), (32, 0.3), (16, 0.2)):
        base = rng.uniform(0, 255, (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += weight * cv2.resize(base, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[:h, :w]
    return np.clip(img, 0, 255)


def pan_video(path, speed, seconds=3.0, fps=30, h=360, w=640):
    n = int(seconds * fps)
    tex = photo_like(1, h, w + int(speed * n) + 2)
    rng = np.random.default_rng(2)
    noise = [rng.normal(0, 2, (h, w, 3)).astype(np.float32) for _ in range(4)]
    frames = (np.clip(tex[:, int(round(i * speed)):int(round(i * speed)) + w] + noise[i % 4], 0, 255).astype(np.uint8)
              for i in range(n))
    return encode(path, frames, fps)


def motion_of(path):
    rows = process_video(path, CurationParams(clips=ClipParams(min_seconds=0.5)))
    assert rows["videos"][0]["status"] == "ok", rows["videos"][0]
    assert len(rows["scores"]) == 1, rows["cuts"]
    return rows["scores"][0]


def test_static_video_scores_below_0_05(tmp_path):
    score = motion_of(pan_video(tmp_path / "static.mp4", 0.0))
    assert score["motion_pairs"] == 5
    assert score["motion"] < 0.05


def test_pan_of_1px_per_frame_at_360p30_scores_two_thirds(tmp_path):
    # 1 px/frame at 360p = 15 px per 0.5 s = 15 * 16/360 = 0.667 px at the 16-px scale per sample pair
    score = motion_of(pan_video(tmp_path / "pan.mp4", 1.0))
    assert score["motion"] == pytest.approx(2 / 3, abs=0.05)
    assert len(score["motion_series"]) == score["motion_pairs"] == 5


def test_bucket_map():
    assert MotionBucketMap()(0.0) == 0
    assert MotionBucketMap(scale=64)(2.0) == 128
    assert MotionBucketMap(scale=64)(100.0) == 255
    table = MotionBucketMap(table=[(0.0, 0), (1.0, 100), (2.0, 255)])
    assert table(0.5) == 50 and table(5.0) == 255
    fitted = MotionBucketMap.from_percentiles(np.linspace(0, 4, 101))
    assert fitted(0.0) == 0 and fitted(4.0) == 255 and 100 < fitted(2.0) < 155
    with pytest.raises(ValueError, match="score"):
        MotionBucketMap()(float("nan"))
