"""Cheap checks that turn silent failures into clear errors before (or instead of) expensive work: the user's
arguments (ints, numbers, paths, mappings, latents, pipeline components), each refused with a message naming the
argument, the expected and the actual value; native config integers within C's int32, scheduler configs naming
their file, numbers and arrays representable in float32, the memory a generation needs against the memory there
is, and the decoded video (all-NaN or constant output is an error)."""
from __future__ import annotations

import math
import os
import resource
from collections.abc import Mapping

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


def check_float32_range(a: np.ndarray, name: str) -> np.ndarray:
    """Refuses a float64 (or wider) array with finite values beyond float32's range: converted for the C core they
    would become inf and be reported as NaN/Inf the user never passed. NaN/Inf input passes through (the finite
    check names it). Returns `a`."""
    if a.dtype.kind == "f" and a.dtype.itemsize > 4 and a.size:
        hi = max(float(a.max()), -float(a.min()))  # NaN propagates; an Inf shows as inf
        if math.isfinite(hi) and hi > FLOAT32_MAX:
            raise ValueError(f"{name}: values up to {hi:g} (dtype {a.dtype}) are beyond the float32 range "
                             f"(|x| <= {FLOAT32_MAX:.6g}) svdc computes in")
    return a


def count_not_finite(a: np.ndarray) -> int:
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def check_unit_interval(a: np.ndarray, name: str, what: str = "float images") -> np.ndarray:
    """Refuses floats that are NaN/Inf (naming how many) or outside [0, 1] (naming the range found), checked in
    the array's own dtype. Returns `a`."""
    bad = count_not_finite(a)
    if bad:
        raise ValueError(f"{name}: {what} must be finite, found {bad} NaN/Inf value(s) of {a.size}")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: {what} must be in [0, 1], got values in [{lo:g}, {hi:g}]")
    return a


# --- the user's arguments --------------------------------------------------------------------------------------
def check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_number(name: str, value, minimum: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ValueError(f"{name}: expected a number {'>' if strict else '>='} {minimum:g}, got {value}")
    return check_float32(name, v)


def check_int_range(name: str, value, lo: int, hi: int) -> int:
    v = check_int(name, value, lo)
    if v > hi:
        raise ValueError(f"{name}: expected an int in {lo}..{hi}, got {v}")
    return v


def check_multiple(name: str, value, multiple: int, why: str = "") -> int:
    v = check_int(name, value, multiple)
    if v % multiple:
        raise ValueError(f"{name}: expected a multiple of {multiple}{why}, got {v}")
    return v


def check_path(value, name: str) -> str:
    """A file or folder argument as a str path (os.fspath), or TypeError naming the argument."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__} {value!r:.80}")
    return os.fspath(value)


def check_mapping(value, name: str) -> dict:
    """An optional dict argument (None: empty) as a new dict, or TypeError naming the argument."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict (or None), got {type(value).__name__} {value!r:.80}")
    return dict(value)


def check_latents(latents, shape: tuple, layout: str, name: str = "latents") -> np.ndarray:
    """User-given initial latents as float32 C-contiguous: a real numeric array of exactly `shape` (`layout` says
    what the axes are), finite and within float32's range. Returns the converted array."""
    a = np.asarray(latents)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real numeric array of shape {shape} {layout}, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} {layout}, got {a.shape}")
    a = np.ascontiguousarray(check_float32_range(a, name), dtype=np.float32)
    bad = count_not_finite(a)
    if bad:
        raise ValueError(f"{name}: expected finite values, found {bad} NaN/Inf element(s) of {a.size}")
    return a


def check_component(value, name: str, methods: tuple = ()) -> object:
    """A pipeline component (a loaded svdc model, or an object with the same API): not None, callable when
    `methods` is empty, else providing each method. Returns `value`."""
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if value is None or (not methods and not callable(value)) or missing:
        what = f"with {', '.join(methods)}()" if methods else "(callable)"
        raise TypeError(f"{name}: expected a loaded model {what}, got {type(value).__name__}")
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
