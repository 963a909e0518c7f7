"""Builders of short, low-resolution test videos: frames made with NumPy, encoded as H.264 with the ffmpeg binary
of imageio-ffmpeg."""
from __future__ import annotations

import subprocess

import numpy as np


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(path, frames, fps: float, extra=()) -> str:
    """Writes RGB uint8 frames (an iterable of (H, W, 3)) as H.264 yuv420p; returns the path."""
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    cmd = [ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
           "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", *extra,
           str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    proc.stdin.write(first.tobytes())
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f, np.uint8).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0, f"ffmpeg failed writing {path}"
    return str(path)


def texture(seed: int, h: int, w: int, tint) -> np.ndarray:
    """A smooth random colour texture (H, W, 3) float32 in 0..255: low-resolution noise upsampled, tinted."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 1) * 160 + np.asarray(tint, np.float32)[None, None, :] * 0.4
    return np.clip(img, 0, 255)


class Shot:
    """A texture panned slowly to the right."""

    def __init__(self, seed, h, w, tint, speed=0.5):
        self.tex = texture(seed, h, w + 200, tint)
        self.h, self.w, self.speed = h, w, speed

    def frame(self, i):
        x = int(i * self.speed) % 200
        return self.tex[:, x:x + self.w]
