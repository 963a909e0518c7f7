"""Keyframe-aware clipping (the SVD paper's App. C): shots lie between detected cuts; each clip starts at the first
keyframe at or after its shot's first frame (so a stream copy needs no re-encode and never shows the previous shot)
and ends at the shot's last frame; clips shorter than a minimum are dropped. `export` cuts the clips out by stream
copy (a PyAV remux), re-encoding only when asked."""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import asdict, dataclass, fields

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
    end_frame: int  # last frame, inclusive (the frame before a keyframe, or the video's last frame)
    start_time: float  # seconds
    end_time: float  # seconds: the end of the last frame
    shot_start_frame: int  # the shot's first and last frame before snapping
    shot_end_frame: int
    dropped_seconds: float  # seconds of the shot lost to keyframe snapping (both ends)

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    def to_row(self) -> dict:
        row = asdict(self)
        row["duration"] = self.duration
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Clip":
        """The clip of a manifest `clips` row (extra columns ignored)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


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
    `frame_duration`: the last frame's duration (seconds).

    With snapping, a clip runs from the first keyframe at or after its shot's first frame to the frame before the
    last keyframe at or before the frame after the shot (or to the video's end): exactly the packets between two
    keyframes, so a stream copy holds these frames and no others, even with B-frames."""
    p = params or ClipParams()
    p.validate()
    times = np.asarray(times, float)
    n = len(times)
    # keyframes as frame indices: the frame whose timestamp equals the keyframe time (within half a frame)
    key_frames = sorted({int(np.searchsorted(times, k - 0.5 * frame_duration)) for k in keyframes} - {n})

    def end_time(frame):
        return float(times[frame + 1]) if frame + 1 < n else float(times[frame]) + frame_duration

    clips = []
    for first, last in shots(cuts, n):
        start, end = first, last
        if p.snap_to_keyframes:
            j = bisect.bisect_left(key_frames, first)
            if j == len(key_frames) or key_frames[j] > last:
                continue  # no keyframe inside the shot: it cannot be cut without re-encoding
            start = key_frames[j]
            if last < n - 1:
                k = bisect.bisect_right(key_frames, last + 1) - 1  # last keyframe <= the frame after the shot
                end = key_frames[k] - 1
            if end < start:
                continue
        clip = Clip(index=len(clips), start_frame=int(start), end_frame=int(end), start_time=float(times[start]),
                    end_time=end_time(end), shot_start_frame=int(first), shot_end_frame=int(last),
                    dropped_seconds=float(times[start] - times[first] + end_time(last) - end_time(end)))
        if clip.duration + 1e-9 >= p.min_seconds:
            clips.append(clip)
    for k, c in enumerate(clips):
        c.index = k
    return clips


def export(source: str, clip: Clip, output: str, reencode: bool = False) -> str:
    """Writes `clip` of `source` to `output`. By default a stream copy (PyAV remux) of the video packets from the
    clip's start keyframe up to, not including, the packet of the frame after its end in decode order — exact for
    snapped clips of closed-GOP streams; `reencode=True` decodes the clip's frames and encodes them as H.264 (any
    start). Video only. The file appears under its name only when complete."""
    import av

    if not os.path.isfile(source):
        raise FileNotFoundError(f"source: no such file: {source!r}")
    if clip.end_frame < clip.start_frame or clip.duration <= 0:
        raise ValueError(f"clip: expected a positive length, got frames [{clip.start_frame}, {clip.end_frame}]")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    base, ext = os.path.splitext(output)
    partial = f"{base}.partial{ext}"
    try:
        with av.open(source) as src, av.open(partial, "w") as dst:
            stream = src.streams.video[0]
            if reencode:
                _reencode(src, stream, dst, clip)
            else:
                _remux(src, stream, dst, clip)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, output)
    return output


def _frame_pts(src, stream) -> list[int]:
    """Presentation timestamps of every frame in presentation order (from the packets, no decoding)."""
    return sorted(p.pts for p in src.demux(stream) if p.pts is not None)


def _remux(src, stream, dst, clip: Clip) -> None:
    pts = _frame_pts(src, stream)
    if clip.end_frame >= len(pts):
        raise ValueError(f"clip: frame {clip.end_frame} is past the video's {len(pts)} frames")
    start_pts = pts[clip.start_frame]
    stop_pts = pts[clip.end_frame + 1] if clip.end_frame + 1 < len(pts) else None  # the next clip's keyframe
    src.seek(0)
    out = dst.add_stream_from_template(stream)
    started = False
    for packet in src.demux(stream):
        if packet.pts is None:
            continue
        if not started:
            if packet.pts != start_pts:
                continue
            if not packet.is_keyframe:
                raise ValueError(f"clip: frame {clip.start_frame} is not a keyframe; snap the clip or reencode=True")
            started = True
        if stop_pts is not None and packet.pts == stop_pts:
            break
        packet.pts -= start_pts
        packet.dts = packet.dts - start_pts if packet.dts is not None else None
        packet.stream = out
        dst.mux(packet)


def _reencode(src, stream, dst, clip: Clip) -> None:
    out = dst.add_stream("libx264", rate=stream.average_rate or 25)
    out.width, out.height, out.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
    out.options = {"crf": "18", "preset": "veryfast"}
    for index, frame in enumerate(src.decode(stream)):
        if index > clip.end_frame:
            break
        if index >= clip.start_frame:
            frame.pts = None
            for packet in out.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
    for packet in out.encode():
        dst.mux(packet)
