"""Cheap checks that turn silent failures into clear errors before (or instead of) expensive work: native config
integers within C's int32, scheduler configs naming their file, numbers representable in float32, the memory a
generation needs against the memory there is, and the decoded video (all-NaN or constant output is an error)."""
from __future__ import annotations

import math
import os
import resource

import numpy as np

from ._native import _C

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
_SPACINGS = ("leading", "linspace", "trailing")


def check_native_ints(native: dict, what: str) -> dict:
    """Refuses (ValueError naming the key) any integer of a native config dict, or of its lists, outside int32:
    the C structs hold int, and a value such as 2**32 + 32 would silently wrap to 32. Returns `native`."""
    for key, value in native.items():
        for i, v in enumerate(value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and not _INT32_MIN <= v <= _INT32_MAX:
                where = f"{key}[{i}]" if isinstance(value, (list, tuple)) else key
                raise ValueError(f"{what}: {where} = {v} is beyond the int32 range the C core uses "
                                 f"({_INT32_MIN}..{_INT32_MAX})")
    return native


def check_scheduler_config(config: dict, path: str) -> dict:
    """A diffusers scheduler_config.json's values svdc reads, checked with the file named: sigma_min / sigma_max
    finite float32 numbers > 0 (a JSON 1e400 is inf), timestep_spacing one of diffusers' names, and the scheduler
    kind one svdc samples. Raises svdc.CheckpointError (a ValueError); returns `config`."""
    from .schedules import euler_schedule

    def fail(what):
        raise _C.CheckpointError(f"{path}: {what}")

    for key in ("sigma_min", "sigma_max"):
        v = config.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= FLOAT32_MAX:
            fail(f"{key} must be a finite number > 0 (float32), got {v!r}")
    spacing = config.get("timestep_spacing", "leading")
    if spacing not in _SPACINGS:
        fail(f"timestep_spacing must be one of {_SPACINGS}, got {spacing!r}")
    try:
        euler_schedule(1, config)
    except (ValueError, TypeError) as e:
        fail(str(e))
    return config


def check_float32(name: str, value: float) -> float:
    """Refuses a number finite in float64 but beyond float32's range, where svdc computes (it would become inf
    and surface later as a NaN/Inf in some internal array). Returns `value`."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{name}: {value:g} is beyond the float32 range (|x| <= {FLOAT32_MAX:.6g}) svdc computes in")
    return value


def available_memory() -> int:
    """Bytes this process may use at most: physical memory, lowered by an address-space limit (ulimit -v)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return min(total, soft) if soft != resource.RLIM_INFINITY else total


def check_video_memory(batch: int, num_frames: int, height: int, width: int, feature_channels: int = 0) -> None:
    """Before any allocation of a generation, a lower bound of the bytes the run holds at once must fit: the
    decoded video, float32 (B·F, 3, H, W) plus its uint8 copy (B·F, H, W, 3), and one full-resolution feature map
    of the VAE (`feature_channels`, its first block's width) as input and output of a convolution. Too much is a
    MemoryError naming the arguments and the bytes, instead of an allocation that fails late, after minutes of
    work, or a process the OS kills."""
    pixels = height * width
    need = batch * num_frames * pixels * (3 * 4 + 3) + 2 * feature_channels * pixels * 4
    have = available_memory()
    if need > have:
        raise MemoryError(f"height={height}, width={width}, num_frames={num_frames}, batch={batch}: the run needs "
                          f"at least {need} bytes ({need / 2**30:.1f} GiB) for the decoded video and the VAE's "
                          f"full-size features, more than the {have} bytes ({have / 2**30:.1f} GiB) of memory "
                          f"available")


def check_decoded_video(frames: np.ndarray) -> np.ndarray:
    """The VAE's decoded frames: NaN/Inf anywhere, or one value everywhere, is svdc.SvdcError, not a video file
    (a black or grey clip from corrupt weights or an overflow must not pass for a result). Returns `frames`."""
    lo, hi = float(frames.min()), float(frames.max())  # NaN propagates through min/max; Inf shows as an extreme
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int(frames.size - np.count_nonzero(np.isfinite(frames)))
        raise _C.SvdcError(f"the decoded video has {bad} NaN/Inf value(s) of {frames.size}: the weights are corrupt "
                           f"or an input overflowed; no video was produced")
    if lo == hi:
        raise _C.SvdcError(f"the decoded video is constant (every value {lo:g}): the weights are degenerate; no "
                           f"video was produced")
    return frames
