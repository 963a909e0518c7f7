"""Keyframe-aware clipping (the SVD paper's App. C): shots lie between detected cuts; each clip starts at the first
keyframe at or after its shot's first frame (so a stream copy needs no re-encode and never shows the previous shot)
and ends at the shot's last frame; clips shorter than a minimum are dropped. `export` cuts the clips out by stream
copy with the ffmpeg binary (the system's, else imageio-ffmpeg's), re-encoding only when asked."""
from __future__ import annotations

import bisect
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass

import numpy as np

from .cuts import Cut


@dataclass
class ClipParams:
    min_seconds: float = 1.0  # clips shorter than this (after keyframe snapping) are dropped
    snap_to_keyframes: bool = True

    def validate(self) -> None:
        if not (isinstance(self.min_seconds, (int, float)) and math.isfinite(self.min_seconds)
                and self.min_seconds >= 0):
            raise ValueError(f"min_seconds: expected a finite number >= 0, got {self.min_seconds!r}")


@dataclass
class Clip:
    index: int  # the clip's number within its video
    start_frame: int  # first frame (a keyframe when snapping)
    end_frame: int  # last frame, inclusive
    start_time: float  # seconds
    end_time: float  # seconds: the end of the last frame
    shot_start_frame: int  # the shot's first frame before snapping
    snapped_seconds: float  # seconds lost at the start to keyframe snapping

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    def to_row(self) -> dict:
        row = asdict(self)
        row["duration"] = self.duration
        return row


def shots(cuts: list[Cut], num_frames: int) -> list[tuple[int, int]]:
    """(first, last) frame of each shot between the cuts: a hard cut at c ends a shot at c-1 and starts one at c; a
    transition [s, e] ends one at s-1 and starts one at e+1 (the mixed frames belong to no clip)."""
    bounds = []
    for c in sorted(cuts, key=lambda c: c.start):
        if c.kind == "hard":
            bounds.append((c.frame - 1, c.frame))
        else:
            bounds.append((c.start - 1, c.end + 1))
    out, first = [], 0
    for last, nxt in bounds:
        if last >= first:
            out.append((first, last))
        first = max(first, nxt)
    if first <= num_frames - 1:
        out.append((first, num_frames - 1))
    return out


def make_clips(cuts: list[Cut], times: np.ndarray, keyframes: list[float], frame_duration: float,
               params: ClipParams | None = None) -> list[Clip]:
    """Clips of one video. `times`: each frame's timestamp (seconds); `keyframes`: keyframe timestamps;
    `frame_duration`: the last frame's duration (seconds)."""
    p = params or ClipParams()
    p.validate()
    times = np.asarray(times, float)
    n = len(times)
    # keyframes as frame indices: the frame whose timestamp equals the keyframe time (within half a frame)
    key_frames = sorted({int(np.searchsorted(times, k - 0.5 * frame_duration)) for k in keyframes} - {n})
    clips = []
    for first, last in shots(cuts, n):
        start = first
        if p.snap_to_keyframes:
            j = bisect.bisect_left(key_frames, first)
            if j == len(key_frames) or key_frames[j] > last:
                continue  # no keyframe inside the shot: it cannot be cut without re-encoding
            start = key_frames[j]
        end_time = float(times[last + 1]) if last + 1 < n else float(times[last]) + frame_duration
        clip = Clip(index=len(clips), start_frame=int(start), end_frame=int(last), start_time=float(times[start]),
                    end_time=end_time, shot_start_frame=int(first),
                    snapped_seconds=float(times[start] - times[first]))
        if clip.duration + 1e-9 >= p.min_seconds:
            clips.append(clip)
    for k, c in enumerate(clips):
        c.index = k
    return clips


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise FileNotFoundError("no ffmpeg binary: install ffmpeg or imageio-ffmpeg") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def export(source: str, clip: Clip, output: str, reencode: bool = False) -> str:
    """Writes `clip` of `source` to `output` (stream copy from its start keyframe; `reencode=True` encodes H.264
    instead, frame-exact from any start). The file appears under its name only when complete."""
    if not os.path.isfile(source):
        raise FileNotFoundError(f"source: no such file: {source!r}")
    if clip.duration <= 0:
        raise ValueError(f"clip: expected a positive duration, got {clip.duration!r} s")
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    base, ext = os.path.splitext(output)
    partial = f"{base}.partial{ext}"
    codec = ["-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "copy"] if reencode else ["-c", "copy"]
    cmd = [ffmpeg_binary(), "-v", "error", "-y", "-ss", f"{clip.start_time:.6f}", "-i", source,
           "-t", f"{clip.duration:.6f}", "-map", "0:v:0", "-map", "0:a:0?", *codec,
           "-avoid_negative_ts", "make_zero", partial]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        if os.path.exists(partial):
            os.remove(partial)
        raise OSError(f"ffmpeg failed cutting {source!r} [{clip.start_time:.3f}, {clip.end_time:.3f}] s: "
                      f"{result.stderr.strip()[-500:]}")
    os.replace(partial, output)
    return output
