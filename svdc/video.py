"""svdc.Video: uint8 frames + fps, saved as .mp4 (H.264 yuv420p via imageio-ffmpeg, plays in browsers), .gif/.webp
(Pillow, looping) or PNG frames; every file is written under a temporary name and renamed when complete."""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Sequence

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".gif", ".webp", ".png")


class Video:
    """A video: ``frames`` uint8 (F, H, W, 3) and ``fps``. ``save(path)`` picks the format from the suffix."""

    def __init__(self, frames, fps: float = 7):
        arr = np.asarray(frames)
        if arr.dtype != np.uint8:
            raise TypeError(f"frames: expected dtype uint8 (F, H, W, 3), got {arr.dtype}")
        if arr.ndim != 4 or arr.shape[-1] != 3 or min(arr.shape[:3]) < 1:
            raise ValueError(f"frames: expected shape (F, H, W, 3) with F, H, W >= 1, got {arr.shape}")
        self.frames = np.ascontiguousarray(arr)
        self.fps = _check_fps(fps)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"svdc.Video({self.num_frames} frames, {self.width}x{self.height}, fps={self.fps:g})"

    def to_pil(self) -> list:
        """The frames as a list of PIL RGB images."""
        from PIL import Image

        return [Image.fromarray(f, "RGB") for f in self.frames]

    def save(self, path, quality: int = 8) -> str:
        """Writes the video and returns the path written.

        - ``*.mp4``: H.264, yuv420p, ``+faststart``; odd sizes are padded by one replicated row/column (yuv420p
          needs even sizes). ``quality`` 0..10 (imageio-ffmpeg's scale).
        - ``*.gif`` / ``*.webp``: looping animation, frame duration 1000/fps ms.
        - a directory (an existing one, or a path ending in a separator or without suffix): frame_00000.png, ...
        - ``*.png``: with ``%d``-style, ``{}`` or ``*`` placeholder the frame index is put there; without one a
          single frame is written to that name and several frames to ``<stem>_00000.png``, ...
        """
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        is_dir = os.path.isdir(path) or path.endswith(("/", os.sep)) or suffix == ""
        if is_dir:
            return self._save_png_dir(path)
        if suffix == ".mp4":
            return _atomic(path, self._write_mp4, quality)
        if suffix == ".gif":
            return _atomic(path, self._write_pillow, "GIF")
        if suffix == ".webp":
            return _atomic(path, self._write_pillow, "WEBP")
        if suffix == ".png":
            return self._save_png_pattern(path)
        raise ValueError(f"path: unknown video extension {suffix!r} in {path!r}; expected one of "
                         f"{', '.join(VIDEO_SUFFIXES)} or a directory for PNG frames")

    # --- writers ------------------------------------------------------------------------------------------------
    def _write_mp4(self, tmp_path: str, quality: int) -> None:
        import imageio_ffmpeg

        frames = self.frames
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:  # (F, H, W, 3) -> (F, H + pad_h, W + pad_w, 3), edge rows/columns repeated
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        height, width = frames.shape[1:3]
        writer = imageio_ffmpeg.write_frames(
            tmp_path, (width, height), fps=self.fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
            quality=quality, macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart", "-f", "mp4"])
        writer.send(None)  # start ffmpeg
        try:
            for f in frames:
                writer.send(np.ascontiguousarray(f).tobytes())
        finally:
            writer.close()

    def _write_pillow(self, tmp_path: str, fmt: str) -> None:
        images = self.to_pil()
        duration = max(1, int(round(1000.0 / self.fps)))
        kwargs = dict(format=fmt, save_all=True, append_images=images[1:], duration=duration, loop=0)
        if fmt == "WEBP":
            kwargs.update(quality=90)
        elif fmt == "GIF":
            kwargs.update(optimize=False, disposal=1)
        images[0].save(tmp_path, **kwargs)

    def _save_png_dir(self, path: str) -> str:
        target = path.rstrip("/" + os.sep) or path
        names = [f"frame_{i:05d}.png" for i in range(self.num_frames)]
        if os.path.isdir(target):
            for f, name in zip(self.frames, names):
                _atomic(os.path.join(target, name), _write_png, f)
            return target
        parent = os.path.dirname(os.path.abspath(target))
        os.makedirs(parent, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.partial-", dir=parent)
        try:
            for f, name in zip(self.frames, names):
                _write_png(os.path.join(tmp_dir, name), f)
            _give_normal_permissions(tmp_dir, 0o777)
            os.replace(tmp_dir, target)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        return target

    def _save_png_pattern(self, path: str) -> str:
        if "%" in path:
            names = [path % i for i in range(self.num_frames)]
        elif "{}" in path:
            names = [path.replace("{}", f"{i:05d}") for i in range(self.num_frames)]
        elif "*" in path:
            names = [path.replace("*", f"{i:05d}") for i in range(self.num_frames)]
        elif self.num_frames == 1:
            names = [path]
        else:
            stem = path[: -len(".png")]
            names = [f"{stem}_{i:05d}.png" for i in range(self.num_frames)]
        if len(set(names)) != len(names):
            raise ValueError(f"path: the PNG pattern {path!r} gives the same file name to several frames")
        for f, name in zip(self.frames, names):
            _atomic(name, _write_png, f)
        return names[0] if len(names) == 1 else (os.path.dirname(names[0]) or ".")


def _write_png(path: str, frame: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(frame, "RGB").save(path, format="PNG")


def _give_normal_permissions(path: str, mode: int) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; the finished file gets what open() would have given it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _atomic(path: str, write, *args) -> str:
    """Runs write(tmp_path, *args) on a temporary file next to `path`, then renames it over `path`; on any failure
    (including KeyboardInterrupt) the temporary file is removed and `path` is untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.partial-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp, *args)
        _give_normal_permissions(tmp, 0o666)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps: expected a number > 0, got {type(fps).__name__}")
    if not math.isfinite(float(fps)) or float(fps) <= 0:
        raise ValueError(f"fps: expected a finite number > 0, got {fps}")
    return float(fps)


def _frames_to_uint8(video_frames) -> np.ndarray:
    """diffusers' export_to_video input -> uint8 (F, H, W, 3): PIL images; float arrays in [0, 1] (×255 and
    truncated, as diffusers does); uint8 arrays as they are; a list of frames or one (F, H, W, 3) array."""
    if isinstance(video_frames, Video):
        return video_frames.frames
    if isinstance(video_frames, np.ndarray) and video_frames.ndim == 4:
        video_frames = list(video_frames)
    if not isinstance(video_frames, Sequence) or len(video_frames) == 0:
        raise ValueError("video_frames: expected a non-empty list of PIL images or (H, W, 3) arrays, "
                         "or an array (F, H, W, 3)")
    out = []
    for i, frame in enumerate(video_frames):
        if hasattr(frame, "convert") and hasattr(frame, "size"):  # PIL image
            frame = np.asarray(frame.convert("RGB"))
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"video_frames[{i}]: expected shape (H, W, 3), got {frame.shape}")
        if frame.dtype != np.uint8:
            f = frame.astype(np.float32)
            if not np.all(np.isfinite(f)):
                raise ValueError(f"video_frames[{i}]: contains NaN or Inf")
            frame = (np.clip(f, 0.0, 1.0) * 255).astype(np.uint8)
        out.append(frame)
    sizes = {f.shape for f in out}
    if len(sizes) != 1:
        raise ValueError(f"video_frames: all frames must have the same size, got {sorted(sizes)}")
    return np.stack(out)


def export_to_video(video_frames, output_video_path: str | None = None, fps: float = 10, **save_kwargs) -> str:
    """diffusers.utils.export_to_video: writes frames (list of PIL images or arrays) to a video file and returns its
    path (a new temporary .mp4 when no path is given)."""
    if output_video_path is None:
        fd, output_video_path = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
    return Video(_frames_to_uint8(video_frames), fps=fps).save(output_video_path, **save_kwargs)
