"""Motion score as in the SVD paper's curation (dense Farnebäck optical flow at 2 fps on frames whose short side is
16 px; the mean flow magnitude over pixels, then over frame pairs), following video2dataset's recipe: LANCZOS4
resize, `calcOpticalFlowFarneback(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2)`.
The unit is pixels at the 16-px scale per 1/sample_fps seconds. The frames come from the decoder's luma plane (no
RGB conversion). OpenCV (`svdc[curation]`) is imported when a score is computed.

`motion_bucket_id` maps the score to SVD's conditioning (0..255). The mapping the SVD authors used is not public; the
default here is linear, `bucket = clip(round(score * scale), 0, 255)` with `scale` configurable, and a piecewise-
linear table (score -> bucket pairs) can replace it, e.g. one fitted to a dataset's percentiles."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("the motion score needs OpenCV: pip install 'svdc[curation]' "
                          "(opencv-python-headless)") from e
    return cv2


@dataclass
class MotionParams:
    sample_fps: float = 2.0  # frames per second the flow is computed at
    short_side: int = 16  # pixels of the short side the frames are resized to

    def validate(self) -> None:
        if not (isinstance(self.sample_fps, (int, float)) and math.isfinite(self.sample_fps)
                and self.sample_fps > 0):
            raise ValueError(f"sample_fps: expected a finite number > 0, got {self.sample_fps!r}")
        if not isinstance(self.short_side, int) or self.short_side < 8:
            raise ValueError(f"short_side: expected an int >= 8 (Farnebäck needs a few pyramid levels), "
                             f"got {self.short_side!r}")


def small_gray(luma: np.ndarray, short_side: int = 16) -> np.ndarray:
    """(H, W) uint8 luma -> (h, w) with min(h, w) = short_side, aspect kept, LANCZOS4."""
    cv2 = _cv2()
    h, w = luma.shape
    if h <= w:
        size = (max(1, int(round(w * short_side / h))), short_side)
    else:
        size = (short_side, max(1, int(round(h * short_side / w))))
    return cv2.resize(np.ascontiguousarray(luma), size, interpolation=cv2.INTER_LANCZOS4)


def flow_magnitudes(frames: list[np.ndarray]) -> np.ndarray:
    """Mean Farnebäck flow magnitude of each consecutive pair: (len(frames) - 1,) float."""
    cv2 = _cv2()
    out = np.zeros(max(0, len(frames) - 1))
    for k in range(len(frames) - 1):
        flow = cv2.calcOpticalFlowFarneback(frames[k], frames[k + 1], None, **FARNEBACK)  # (h, w, 2)
        out[k] = float(np.linalg.norm(flow, axis=-1).mean())
    return out


@dataclass
class MotionBucketMap:
    """Score -> SVD motion_bucket_id. With `table` (ascending (score, bucket) pairs) the map interpolates linearly
    and clamps at the ends; otherwise bucket = score * scale. Results are rounded and clipped to 0..255."""
    scale: float = 64.0  # linear default: a 2 px / 0.5 s pan at the 16-px scale -> 128, near SVD's default 127
    table: list = field(default_factory=list)

    def __call__(self, score: float) -> int:
        if not math.isfinite(score) or score < 0:
            raise ValueError(f"score: expected a finite number >= 0, got {score!r}")
        if self.table:
            xs, ys = zip(*self.table)
            value = float(np.interp(score, xs, ys))
        else:
            value = score * self.scale
        return int(min(255, max(0, round(value))))

    @classmethod
    def from_percentiles(cls, scores, buckets=(0, 255)) -> "MotionBucketMap":
        """A table spreading the given scores' 1st..99th percentiles evenly over `buckets`."""
        scores = np.asarray(scores, float)
        if scores.size == 0 or not np.all(np.isfinite(scores)):
            raise ValueError("scores: expected a non-empty array of finite numbers")
        qs = np.linspace(1, 99, 9)
        xs = np.maximum.accumulate(np.percentile(scores, qs))
        ys = np.linspace(buckets[0], buckets[1], len(qs))
        return cls(table=[(float(x), float(y)) for x, y in zip(xs, ys)])
