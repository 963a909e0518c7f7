"""diffusers.utils' image and video helpers under the same names and arguments: load_image, export_to_video,
export_to_gif. They behave as diffusers' do (RGB conversion without alpha compositing, float frames ×255 truncated,
macro-block resizing); files are written through svdc.Video, so nothing half-written is left under the final name."""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from typing import Callable, Sequence

import numpy as np

from ._validate import check_path, count_not_finite
from .video import Video

__all__ = ["load_image", "export_to_video", "export_to_gif"]

_URL_TIMEOUT_S = 60


def load_image(image, convert_method: Callable | None = None):
    """A PIL image from a path, an http(s) URL or a PIL image, EXIF-rotated, then convert_method(image) when given,
    else image.convert("RGB") (as diffusers: transparency is dropped, not composited)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    if isinstance(image, str):
        if image.startswith(("http://", "https://")):
            image = Image.open(io.BytesIO(_fetch(image)))
        elif os.path.isfile(image):
            try:
                image = Image.open(image)
                image.load()  # decode now: a truncated file fails here with its name
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                raise ValueError(f"image: cannot read image file {image!r}: {e}") from None
        else:
            raise ValueError(f"image: {image!r} is neither an http(s) URL nor an existing file")
    elif not isinstance(image, Image.Image):
        raise TypeError(f"image: expected a path, an http(s) URL or a PIL image, got {type(image).__name__}")
    image = ImageOps.exif_transpose(image)
    if convert_method is not None:
        if not callable(convert_method):
            raise TypeError(f"convert_method: expected a callable, got {type(convert_method).__name__}")
        return convert_method(image)
    return image.convert("RGB")


def _fetch(url: str) -> bytes:
    """The bytes at `url`; network failures become an OSError naming the URL."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=_URL_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise OSError(f"image: cannot download {url!r}: {e}") from e


def _frames_to_uint8(video_frames, arg: str = "video_frames") -> np.ndarray:
    """diffusers' export_to_video input -> uint8 (F, H, W, 3): PIL images; float arrays in [0, 1] (×255 and
    truncated, as diffusers does; values outside [0, 1] are clipped); uint8 arrays as they are; a list of frames,
    one (F, H, W, 3) array or an svdc.Video."""
    if isinstance(video_frames, Video):
        return video_frames.frames
    if isinstance(video_frames, np.ndarray) and video_frames.ndim == 4:
        video_frames = list(video_frames)
    if not isinstance(video_frames, Sequence) or isinstance(video_frames, (str, bytes)) or len(video_frames) == 0:
        got = "an empty list" if isinstance(video_frames, Sequence) and len(video_frames) == 0 else \
            f"{type(video_frames).__name__} {video_frames!r:.60}"
        raise ValueError(f"{arg}: expected a non-empty list of PIL images or (H, W, 3) arrays, or an array "
                         f"(F, H, W, 3); got {got}")
    out = []
    for i, frame in enumerate(video_frames):
        if hasattr(frame, "convert") and hasattr(frame, "size"):  # PIL image
            frame = np.asarray(frame.convert("RGB"))
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"{arg}[{i}]: expected shape (H, W, 3), got {frame.shape}")
        if frame.dtype != np.uint8:
            f = frame.astype(np.float32)
            bad = count_not_finite(f)
            if bad:
                raise ValueError(f"{arg}[{i}]: expected finite values, found {bad} NaN/Inf value(s) of {f.size}")
            frame = (np.clip(f, 0.0, 1.0) * 255).astype(np.uint8)
        out.append(frame)
    sizes = {f.shape for f in out}
    if len(sizes) != 1:
        raise ValueError(f"{arg}: all frames must have the same size, got {sorted(sizes)}")
    return np.stack(out)


def _to_macro_blocks(frames: np.ndarray, macro_block_size: int) -> np.ndarray:
    """imageio-ffmpeg's macro-block rule: a size that is not a multiple of macro_block_size is resized (bicubic) up
    to the next multiple, with a warning; macro_block_size 1 keeps the size."""
    if isinstance(macro_block_size, bool) or not isinstance(macro_block_size, (int, np.integer)) \
            or macro_block_size < 1:
        raise ValueError(f"macro_block_size: expected an int >= 1, got {macro_block_size!r}")
    h, w = frames.shape[1:3]
    out_h = -(-h // macro_block_size) * macro_block_size
    out_w = -(-w // macro_block_size) * macro_block_size
    if (out_h, out_w) == (h, w):
        return frames
    from PIL import Image

    warnings.warn(f"export_to_video: frames of {w}x{h} are not divisible by macro_block_size={macro_block_size}; "
                  f"resizing to {out_w}x{out_h} (pass macro_block_size=1 to keep the size)", UserWarning, stacklevel=3)
    return np.stack([np.asarray(Image.fromarray(f).resize((out_w, out_h), Image.Resampling.BICUBIC))
                     for f in frames])


def _temporary_path(suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    return path


def export_to_video(video_frames, output_video_path: str | None = None, fps: float = 10, quality: float = 5.0,
                    bitrate: str | int | None = None, macro_block_size: int = 16) -> str:
    """diffusers.utils.export_to_video: writes frames (a list of PIL images or (H, W, 3) arrays, an (F, H, W, 3)
    array, or an svdc.Video) to `output_video_path` (a new temporary .mp4 when None) and returns the path.
    quality 0..10 or bitrate (e.g. "2M") set the H.264 rate; macro_block_size as in imageio-ffmpeg. Other
    extensions (.gif, .webp, a folder of PNGs) are written as svdc.Video.save writes them."""
    frames = _frames_to_uint8(video_frames)
    path = _temporary_path(".mp4") if output_video_path is None else check_path(output_video_path, "output_video_path")
    if path.lower().endswith(".mp4"):
        frames = _to_macro_blocks(frames, macro_block_size)
    return Video(frames, fps=fps).save(path, quality=quality, bitrate=bitrate)


def export_to_gif(image: list, output_gif_path: str | None = None, fps: int = 10) -> str:
    """diffusers.utils.export_to_gif: a looping GIF of the frames (PIL images or arrays) at `fps`; returns the path
    (a new temporary .gif when None)."""
    path = _temporary_path(".gif") if output_gif_path is None else check_path(output_gif_path, "output_gif_path")
    if not path.lower().endswith(".gif"):
        raise ValueError(f"output_gif_path: expected a .gif path, got {path!r}")
    return Video(_frames_to_uint8(image, "image"), fps=fps).save(path)
