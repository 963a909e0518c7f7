"""svdc.Video: uint8 frames + fps, saved as .mp4 (H.264 yuv420p via imageio-ffmpeg, plays in browsers), .gif/.webp
(Pillow, looping) or PNG frames; every file is written under a temporary name and renamed when complete."""
from __future__ import annotations

import math
import os
import shutil
import stat
import tempfile

import numpy as np

from ._validate import check_path, check_unit_interval

VIDEO_SUFFIXES = (".mp4", ".gif", ".webp", ".png")


class Video:
    """A video: ``frames`` uint8 (F, H, W, 3) and ``fps``. ``save(path)`` picks the format from the suffix."""

    def __init__(self, frames, fps: float = 7):
        arr = np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3 or min(arr.shape[:3]) < 1:
            raise ValueError(f"frames: expected shape (F, H, W, 3) with F, H, W >= 1, got {arr.shape}")
        if arr.dtype.kind == "f":
            arr = _float_to_uint8(arr, "frames")
        elif arr.dtype != np.uint8:
            raise TypeError(f"frames: expected dtype uint8, or float in [0, 1], (F, H, W, 3), got {arr.dtype}")
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

    def __getitem__(self, index):
        """video[i] -> frame i, uint8 (H, W, 3); video[a:b:c] (or a list / boolean mask of frames) -> a Video with
        the same fps."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not -self.num_frames <= int(index) < self.num_frames:
                raise IndexError(f"frame index {index} out of range for a video of {self.num_frames} frames")
            return self.frames[int(index)]
        if isinstance(index, tuple):
            raise TypeError("video[...]: index frames only (an int, a slice or a list); use video.frames[...] for "
                            "pixel indexing")
        frames = self.frames[index]
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise IndexError(f"video[{index!r}] selects no frames (a video has at least one)")
        return Video(frames, fps=self.fps)

    def __iter__(self):
        return iter(self.frames)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(video) -> the uint8 frames (F, H, W, 3)."""
        if copy is False and dtype not in (None, np.uint8):
            raise ValueError("np.asarray(video, dtype=..., copy=False): converting the frames needs a copy")
        frames = self.frames.copy() if copy else self.frames
        return frames if dtype is None else frames.astype(dtype)

    @property
    def float_frames(self) -> np.ndarray:
        """The frames as float32 (F, H, W, 3) in [0, 1] (frames / 255)."""
        return self.frames.astype(np.float32) / np.float32(255.0)

    def __repr__(self) -> str:
        return f"svdc.Video({self.num_frames} frames, {self.width}x{self.height}, fps={self.fps:g})"

    def _repr_html_(self) -> str | None:
        """Notebooks show the video inline: an H.264 mp4 in a looping <video> tag (a GIF when ffmpeg cannot run)."""
        import base64

        with tempfile.TemporaryDirectory() as tmp:
            for name, mime in (("v.mp4", "video/mp4"), ("v.gif", "image/gif")):
                try:
                    data = open(self.save(os.path.join(tmp, name)), "rb").read()
                except (OSError, RuntimeError):
                    continue
                b64 = base64.b64encode(data).decode("ascii")
                if mime == "image/gif":
                    return f'<img src="data:{mime};base64,{b64}" width="{self.width}"/>'
                return (f'<video width="{self.width}" controls autoplay loop muted playsinline>'
                        f'<source src="data:{mime};base64,{b64}" type="{mime}"></video>')
        return None

    def to_pil(self) -> list:
        """The frames as a list of PIL RGB images."""
        from PIL import Image

        return [Image.fromarray(f, "RGB") for f in self.frames]

    def save(self, path, quality: float = 8, *, fps: float | None = None, crf: int | None = None,
             bitrate: str | None = None) -> str:
        """Writes the video and returns the path written. ``fps`` overrides the video's frame rate for this file.

        - ``*.mp4``: H.264, yuv420p, ``+faststart``; odd sizes are padded by one replicated row/column (yuv420p
          needs even sizes). The rate control is one of: ``crf`` 0..51 (libx264's constant rate factor, lower is
          better), ``bitrate`` (e.g. "2M"), or ``quality`` 0..10 (imageio-ffmpeg's scale: crf = (1 - quality/10)·51).
        - ``*.gif`` / ``*.webp``: looping animation, frame duration 1000/fps ms.
        - a directory (an existing one, or a path ending in a separator or without suffix): frame_00000.png, ...
        - ``*.png``: with ``%d``-style, ``{}`` or ``*`` placeholder the frame index is put there; without one a
          single frame is written to that name and several frames to ``<stem>_00000.png``, ...
        """
        if fps is not None and _check_fps(fps) != self.fps:
            return Video(self.frames, fps=fps).save(path, quality, crf=crf, bitrate=bitrate)
        path = check_path(path, "path")
        kind = output_kind(path)
        if kind == "dir":
            return self._save_png_dir(path)
        if kind == ".mp4":
            return _atomic(path, self._write_mp4, mp4_rate_args(quality, crf, bitrate))
        if kind == ".gif":
            return _atomic(path, self._write_pillow, "GIF")
        if kind == ".webp":
            return _atomic(path, self._write_pillow, "WEBP")
        return self._save_png_pattern(path)

    # --- writers ------------------------------------------------------------------------------------------------
    def _write_mp4(self, tmp_path: str, rate_args: list) -> None:
        """Pipes the frames to imageio-ffmpeg's ffmpeg and fails (OSError with ffmpeg's own message) unless ffmpeg
        exits with status 0 and leaves a non-empty file: a full disk, a file-size limit or a frame size the encoder
        refuses must never pass for a written video."""
        import subprocess
        from fractions import Fraction

        import imageio_ffmpeg

        frames = self.frames
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:  # (F, H, W, 3) -> (F, H + pad_h, W + pad_w, 3), edge rows/columns repeated
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        height, width = frames.shape[1:3]
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-vcodec", "rawvideo",
               "-s", f"{width}x{height}", "-pix_fmt", "rgb24", "-r", str(Fraction(self.fps).limit_denominator()),
               "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p", *rate_args,
               "-movflags", "+faststart", "-f", "mp4", tmp_path]
        with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg can never block on a full stderr pipe
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
            try:
                for f in frames:
                    proc.stdin.write(np.ascontiguousarray(f).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped reading: its exit status and message say why
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            status = proc.wait()
            log.seek(0)
            lines = log.read().decode("utf-8", "replace").strip().splitlines()
        message = "; ".join(lines[:3])[:600] or "no message"  # the first lines name the cause, the rest repeat it
        if status != 0:
            how = f"exit status {status}" if status > 0 else f"killed by signal {-status}"
            raise OSError(f"ffmpeg failed to write the video ({how}): {message}")
        if os.path.getsize(tmp_path) == 0:
            raise OSError(f"ffmpeg wrote an empty file: {message}")

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
        if os.path.lexists(target) and not os.path.isdir(target):
            raise ValueError(f"path: {target!r} exists and is not a folder; cannot write PNG frames into it")
        if os.path.isdir(target):
            # An existing folder: all frames are written first, then moved in, then the frames of an older,
            # longer video that continue the numbering are removed, so the folder never mixes two videos.
            _replace_frame_set(self.frames, [os.path.join(target, n) for n in names],
                               lambda i: os.path.join(target, f"frame_{i:05d}.png"))
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
            name_of = lambda i: path % i  # noqa: E731
        elif "{}" in path:
            name_of = lambda i: path.replace("{}", f"{i:05d}")  # noqa: E731
        elif "*" in path:
            name_of = lambda i: path.replace("*", f"{i:05d}")  # noqa: E731
        elif self.num_frames == 1:
            name_of = None
        else:
            stem = path[: -len(".png")]
            name_of = lambda i: f"{stem}_{i:05d}.png"  # noqa: E731
        names = [path] if name_of is None else [name_of(i) for i in range(self.num_frames)]
        if len(set(names)) != len(names):
            raise ValueError(f"path: the PNG pattern {path!r} gives the same file name to several frames")
        _replace_frame_set(self.frames, names, name_of)
        return names[0] if len(names) == 1 else (os.path.dirname(names[0]) or ".")


def output_kind(path) -> str:
    """The writer a path selects: ".mp4", ".gif", ".webp", ".png" (a frame pattern) or "dir" (a folder of PNGs).
    Cheap and side-effect free, so callers can refuse a bad path before any work; unknown extensions raise."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if os.path.isdir(path) or path.endswith(("/", os.sep)) or suffix == "":
        return "dir"
    if suffix in VIDEO_SUFFIXES:
        return suffix
    raise ValueError(f"path: unknown video extension {suffix!r} in {path!r}; expected one of "
                     f"{', '.join(VIDEO_SUFFIXES)} or a directory for PNG frames")


def mp4_rate_args(quality=8, crf=None, bitrate=None) -> list:
    """ffmpeg's libx264 rate-control arguments for one of crf (0..51), bitrate ("2M", 500000) or quality (0..10)."""
    if crf is not None and bitrate is not None:
        raise ValueError(f"crf and bitrate: pass one rate control, got crf={crf!r} and bitrate={bitrate!r}")
    if crf is not None:
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= int(crf) <= 51:
            raise ValueError(f"crf: expected an int in 0..51 (lower is better quality), got {crf!r}")
        return ["-crf", str(int(crf))]
    if bitrate is not None:
        text = str(bitrate)
        if not text or not (text[:-1] if text[-1] in "kKmM" else text).replace(".", "", 1).isdigit():
            raise ValueError(f"bitrate: expected bits per second such as 2000000, '2M' or '800k', got {bitrate!r}")
        return ["-b:v", text]
    if quality is None:
        return []  # ffmpeg's own default rate
    if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)) \
            or not 0 <= float(quality) <= 10:
        raise ValueError(f"quality: expected a number in 0..10, got {quality!r}")
    return ["-crf", str(int((1 - float(quality) / 10.0) * 51))]


def _float_to_uint8(frames: np.ndarray, arg: str) -> np.ndarray:
    """Float frames in [0, 1] -> uint8, rounded to the nearest level; NaN/Inf or values outside [0, 1] raise."""
    f = check_unit_interval(frames, arg, "float frames").astype(np.float32)
    return np.round(f * np.float32(255.0)).astype(np.uint8)




def _replace_frame_set(frames: np.ndarray, names: list, name_of) -> None:
    """Writes every frame to a temporary file next to its final name, and only when all are written renames them
    into place (a failure part-way leaves the old set untouched); then removes stale frames of an earlier, longer
    video: the files name_of(len(names)), name_of(len(names) + 1), ... as long as they exist."""
    targets = [_writable_target(n) for n in names]
    written = []
    try:
        for f, target in zip(frames, targets):
            written.append(_write_temporary(target, _write_png, f))
    except BaseException:
        for tmp in written:
            _remove_quietly(tmp)
        raise
    for tmp, target in zip(written, targets):
        os.replace(tmp, target)
    if name_of is not None:
        i = len(names)
        while os.path.isfile(name_of(i)) and not os.path.islink(name_of(i)):
            os.remove(name_of(i))
            i += 1
def _write_png(path: str, frame: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(frame, "RGB").save(path, format="PNG")


def _normal_mode(mode: int) -> int:
    """What open() would give a new file of `mode` (mkstemp/mkdtemp create private 0600/0700 entries)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _give_normal_permissions(path: str, mode: int) -> None:
    os.chmod(path, _normal_mode(mode))


def _writable_target(path: str) -> str:
    """The file that saving to `path` must replace: a symlink is followed (the link stays and its target gets the
    new content, as open(path, "w") would do); an existing FIFO, device, socket or folder is refused (replacing
    /dev/null or a pipe a reader waits on with a regular file would be data loss, writing a video into it is not
    what anyone means)."""
    real = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.lexists(real):
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
            raise ValueError(f"path: {path!r} is {kind}; svdc writes videos only to regular files")
    return real


def _write_temporary(target: str, write, *args) -> str:
    """Runs write(tmp, *args) on a new temporary file next to `target` and gives it the permissions `target` has
    (an existing private 0600 file stays private; a new file gets 0666 minus the umask). Returns the temporary
    path; on failure it is removed and the exception propagates."""
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(target)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.partial-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp, *args)
        if os.path.isfile(target):
            st = os.stat(target)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass  # only root may give a file away; the mode is kept regardless
        else:
            os.chmod(tmp, _normal_mode(0o666))
    except BaseException:
        _remove_quietly(tmp)
        raise
    return tmp


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _atomic(path: str, write, *args) -> str:
    """Runs write(tmp_path, *args) on a temporary file next to `path`, then renames it over `path` (over a symlink's
    target); on any failure (including KeyboardInterrupt) the temporary file is removed and `path` is untouched."""
    target = _writable_target(path)
    tmp = _write_temporary(target, write, *args)
    try:
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps: expected a number > 0, got {type(fps).__name__}")
    if not math.isfinite(float(fps)) or float(fps) <= 0:
        raise ValueError(f"fps: expected a finite number > 0, got {fps}")
    return float(fps)
