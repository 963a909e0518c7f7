"""Decoding for curation: PyAV with frame threads, a `VideoInfo` (rates, time base, keyframe times from packet
flags), and one pass that yields small Y/U/V planes (box-averaged in C straight from the decoder's planes, never a
full-size RGB conversion) plus, at a fixed sampling rate, the full-resolution luma plane for the motion score."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from .._native import _C

# Planar 8-bit YUV layouts whose planes can be reduced as they come out of the decoder; anything else (10-bit,
# NV12, RGB codecs) goes through swscale to yuv420p first.
_DIRECT_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}


class VideoReadError(OSError):
    """The file cannot be opened or decoded as a video (missing, not a container, no video stream, corrupt)."""


@dataclass
class VideoInfo:
    path: str
    codec: str
    width: int
    height: int
    fps: float  # the stream's average rate; frame times below come from timestamps, so VFR stays exact
    time_base: str  # a fraction "num/den"
    duration: float  # seconds, from the last decoded frame's end (or the container when not decoded)
    num_frames: int  # frames decoded (0 until a full pass ran)
    keyframes: list[float] = field(default_factory=list)  # seconds, from packet flags
    variable_frame_rate: bool = False
    decode_error: str = ""  # set when decoding stopped early on damaged data (the frames before it are kept)

    def to_row(self) -> dict:
        return asdict(self)


@dataclass
class SmallFrame:
    index: int  # decode-order index (= presentation order for the streams PyAV hands back)
    time: float  # seconds from the stream start
    y: np.ndarray  # (h, w) uint8, box-averaged luma
    u: np.ndarray  # (hc, wc) uint8, box-averaged chroma
    v: np.ndarray
    full_luma: np.ndarray | None  # (H, W) uint8 view of the decoder's luma, only on motion-sample frames


def _open(path: str):
    import av

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    if os.path.getsize(path) == 0:
        raise VideoReadError(f"path: {path!r} is empty (0 bytes)")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoReadError(f"path: cannot open {path!r} as a video container: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"path: {path!r} has no video stream")
    return container


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate and float(rate) > 0:
            return float(rate)
    raise VideoReadError("the video stream declares no frame rate")


def probe(path: str) -> VideoInfo:
    """The stream's metadata and keyframe times from packet flags (demuxing only, no decoding)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        tb = stream.time_base
        keyframes, last_end = [], 0.0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * tb)
            if packet.is_keyframe:
                keyframes.append(t)
            last_end = max(last_end, t + float((packet.duration or 0) * tb))
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        return VideoInfo(path=os.fspath(path), codec=stream.codec_context.name, width=stream.codec_context.width,
                         height=stream.codec_context.height, fps=_stream_fps(stream), time_base=str(tb),
                         duration=max(0.0, last_end - start), num_frames=int(stream.frames or 0),
                         keyframes=sorted(k - start for k in keyframes))
    except VideoReadError:
        raise
    except Exception as e:  # PyAV raises its own FFmpegError subclasses for damaged files
        raise VideoReadError(f"path: cannot read {os.fspath(path)!r}: {e}") from e
    finally:
        container.close()


def box_factor(size: int, target: int) -> int:
    """The integer box factor that brings `size` nearest to `target` without going below 1 pixel."""
    return max(1, min(255, size, int(round(size / target))))


def sampled_rows(factor: int) -> int:
    """Rows read of each block of `factor` rows: a third of them, at least 2. Reading the decoded frame is memory
    bound (the frame has left the cache by the time it is handed over), so fewer rows cost proportionally less; the
    columns of each read row are all averaged, and a third of the rows still averages noise away."""
    return min(factor, max(2, factor // 3))


class SmallFrames:
    """One decoding pass over `path`: iterate to get `SmallFrame`s; `info` is complete (keyframes, frame count,
    duration, VFR flag) once the iteration ends. `analysis_width` sets the luma box factor (chroma planes get the
    factor that brings them to half that width). `sample_fps` marks the frames whose full luma is handed over
    (the first frame at or after each multiple of 1/sample_fps seconds); 0 hands over none. `threads`: decoder
    threads (0: FFmpeg's choice; 1 is the cheapest per frame when a process pool already fills the cores).
    `fast_decode` skips H.264/HEVC deblocking."""

    def __init__(self, path: str, analysis_width: int = 128, sample_fps: float = 2.0, threads: int = 0,
                 fast_decode: bool = True):
        if not isinstance(analysis_width, int) or analysis_width < 8:
            raise ValueError(f"analysis_width: expected an int >= 8, got {analysis_width!r}")
        if not (isinstance(sample_fps, (int, float)) and math.isfinite(sample_fps) and sample_fps >= 0):
            raise ValueError(f"sample_fps: expected a finite number >= 0, got {sample_fps!r}")
        self._container = _open(path)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.thread_count = threads
        if fast_decode:
            # no deblocking: ~20 % less decoding time; the blocks it would smooth vanish in the box-averaged
            # planes and the 16-px motion frames (same frame count and timing, pixels differ slightly)
            stream.codec_context.options = {"skip_loop_filter": "all"}
        self._stream = stream
        self.analysis_width = analysis_width
        self.sample_fps = float(sample_fps)
        self._geometry, self._factors = None, None  # the plane sizes seen last and their box factors
        cc = stream.codec_context
        self.info = VideoInfo(path=os.fspath(path), codec=cc.name, width=cc.width, height=cc.height,
                              fps=_stream_fps(stream), time_base=str(stream.time_base), duration=0.0, num_frames=0)

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _planes(self, frame):
        """(y, u, v) small planes and the full luma view of one decoded frame."""
        if frame.format.name not in _DIRECT_FORMATS:
            frame = frame.reformat(format="yuv420p")
        py, pu, pv = frame.planes[:3]
        geometry = (py.width, py.height, pu.width, pu.height)
        if geometry != self._geometry:  # box factors: once per frame size
            f = box_factor(py.width, self.analysis_width)
            fc = box_factor(pu.width, max(4, self.analysis_width // 2))
            fcy = max(1, min(255, pu.height, int(round(fc * pu.height * py.width / (pu.width * py.height)))))
            self._geometry, self._factors = geometry, (f, sampled_rows(f), fc, fcy, sampled_rows(fcy))
        f, rows, fc, fcy, rows_c = self._factors
        y = _C._plane_downscale(py, geometry[0], geometry[1], py.line_size, f, f, rows)
        u = _C._plane_downscale(pu, geometry[2], geometry[3], pu.line_size, fc, fcy, rows_c)
        v = _C._plane_downscale(pv, geometry[2], geometry[3], pv.line_size, fc, fcy, rows_c)
        return y, u, v, py

    def __iter__(self) -> Iterator[SmallFrame]:
        import av

        stream, tb = self._stream, self._stream.time_base
        seconds_per_tick = float(tb)  # a float product per frame (Fraction arithmetic costs ~20 us a frame)
        start = None
        keyframes = []
        next_sample = 0.0
        index = 0
        last_time, last_dt, dts = 0.0, 0.0, []
        try:
            for packet in self._container.demux(stream):
                if packet.is_keyframe and packet.pts is not None:
                    keyframes.append(packet.pts)
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:
                        t = last_time + (1.0 / self.info.fps if index else 0.0)
                    else:
                        if start is None:
                            start = pts
                        t = (pts - start) * seconds_per_tick
                    if index:
                        dts.append(t - last_time)
                    y, u, v, py = self._planes(frame)
                    full = None
                    if self.sample_fps and t + 1e-9 >= next_sample:
                        full = np.frombuffer(py, np.uint8).reshape(py.height, py.line_size)[:, : py.width]
                        next_sample = (math.floor(t * self.sample_fps + 1e-9) + 1) / self.sample_fps
                    yield SmallFrame(index, t, y, u, v, full)
                    last_time = t
                    index += 1
        except av.error.FFmpegError as e:
            if index == 0:
                raise VideoReadError(f"path: cannot decode {self.info.path!r}: {e}") from e
            # A damaged tail: keep what decoded (the caller records how many frames that was).
            self.info.decode_error = str(e)
        if index == 0:
            raise VideoReadError(f"path: {self.info.path!r} has no decodable video frames")
        if dts:
            last_dt = float(np.median(dts))
            self.info.variable_frame_rate = bool(np.max(np.abs(np.asarray(dts) - last_dt)) > 0.25 * last_dt)
        else:
            last_dt = 1.0 / self.info.fps
        base = start if start is not None else 0
        self.info.keyframes = sorted(float((k - base) * tb) for k in keyframes)
        self.info.num_frames = index
        self.info.duration = last_time + last_dt
