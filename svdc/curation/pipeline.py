"""The per-video stage as a pure function: `process_video(path, params)` decodes once and returns the rows of every
manifest table for that video (videos, cuts, clips, scores). No state, no files written: a process pool or a
distributed runner can call it as it is."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .clips import ClipParams, make_clips
from .cuts import CutParams, detect_cuts
from .io import SmallFrames, VideoReadError
from .motion import MotionBucketMap, MotionParams, flow_magnitudes, small_gray
from .signals import SignalAccumulator

TABLES = ("videos", "cuts", "clips", "scores")


@dataclass
class CurationParams:
    cuts: CutParams = field(default_factory=CutParams)
    clips: ClipParams = field(default_factory=ClipParams)
    motion: MotionParams = field(default_factory=MotionParams)
    buckets: MotionBucketMap = field(default_factory=MotionBucketMap)
    analysis_width: int = 128  # luma width of the small planes the cut signals use
    decoder_threads: int = 0  # 0: FFmpeg's choice

    def validate(self) -> None:
        self.cuts.validate()
        self.clips.validate()
        self.motion.validate()
        if not isinstance(self.analysis_width, int) or self.analysis_width < 16:
            raise ValueError(f"analysis_width: expected an int >= 16, got {self.analysis_width!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("decoder_threads")  # how fast, not what: not part of the hash
        return d

    def hash(self) -> str:
        """16 hex digits identifying everything that changes the output rows."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=list)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def video_id(path: str) -> str:
    """A stable id from the absolute path (the manifest's key; the content hash is a column)."""
    return hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]


def _file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def process_video(path: str, params: CurationParams | None = None) -> dict[str, list[dict]]:
    """Decode + cuts + clips + motion for one video -> {table: rows}. A video that cannot be read gives one
    `videos` row with status "failed" and the error; bad parameters raise."""
    from .. import __version__

    p = params or CurationParams()
    p.validate()
    vid = video_id(path)
    common = {"svdc_version": __version__, "params_hash": p.hash()}
    try:
        rows = _process(path, vid, p)
    except (VideoReadError, OSError) as e:
        return {"videos": [{"video_id": vid, "path": os.path.abspath(path), "status": "failed",
                            "error": f"{type(e).__name__}: {e}", **common}],
                "cuts": [], "clips": [], "scores": []}
    for table in TABLES:
        for r in rows[table]:
            r.update(common)
    return rows


def _process(path: str, vid: str, p: CurationParams) -> dict[str, list[dict]]:
    with SmallFrames(path, analysis_width=p.analysis_width, sample_fps=p.motion.sample_fps,
                     threads=p.decoder_threads) as frames:
        acc = SignalAccumulator(p.cuts.lags(frames.info.fps))
        times, samples = [], []  # samples: (frame index, 16-px gray) at sample_fps
        for f in frames:
            acc.add(f.y, f.u, f.v)
            times.append(f.time)
            if f.full_luma is not None:
                samples.append((f.index, small_gray(f.full_luma, p.motion.short_side)))
        info = frames.info
    signals = acc.finish()
    times = np.asarray(times)
    cuts = detect_cuts(signals, info.fps, times, p.cuts)
    frame_duration = info.duration - float(times[-1])
    clips = make_clips(cuts, times, info.keyframes, frame_duration, p.clips)
    sample_index = np.array([i for i, _ in samples])
    video_row = {**info.to_row(), "video_id": vid, "path": os.path.abspath(path), "status": "ok",
                 "error": info.decode_error, "sha1": _file_sha1(path)}
    video_row.pop("decode_error")
    cut_rows = [{"video_id": vid, **c.to_row()} for c in cuts]
    clip_rows, score_rows = [], []
    for c in clips:
        clip_id = f"{vid}_{c.index:04d}"
        clip_rows.append({"clip_id": clip_id, "video_id": vid, **c.to_row()})
        inside = np.flatnonzero((sample_index >= c.start_frame) & (sample_index <= c.end_frame))
        series = flow_magnitudes([samples[k][1] for k in inside])
        score = float(series.mean()) if len(series) else float("nan")
        score_rows.append({"clip_id": clip_id, "video_id": vid, "motion": score,
                           "motion_series": [float(x) for x in series], "motion_pairs": int(len(series)),
                           "motion_bucket_id": p.buckets(score) if len(series) else -1, "fps": info.fps})
    return {"videos": [video_row], "cuts": cut_rows, "clips": clip_rows, "scores": score_rows}
