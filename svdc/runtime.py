"""Device choice ("auto" | "cpu" | "cuda[:N]"), the CUDA fallback policy, and svdc.info()/svdc.devices()."""
from __future__ import annotations

import re
import warnings

from ._native import _C

DeviceUnavailableError = _C.DeviceUnavailableError


def _load_cuda():
    """Returns (module, None) when the CUDA backend imports, else (None, reason). On the first success the CUDA
    backend table is handed to svdc._C (which never links CUDA itself) as the capsule svdc._C_cuda exports."""
    try:
        from . import _C_cuda  # noqa: F401
    except ImportError as exc:  # not built on this machine, or the CUDA runtime library is missing
        return None, f"not available ({exc})"
    if not getattr(_load_cuda, "_registered", False):
        _C._ops.set_cuda_backend(_C_cuda.backend_capsule())
        _load_cuda._registered = True
    return _C_cuda, None


def _cuda_status():
    """(usable device count, reason when 0)."""
    mod, reason = _load_cuda()
    if mod is None:
        return 0, reason
    count, error = mod.device_count()
    if count <= 0:
        return 0, f"built, no device: {error}"
    return count, None


def devices() -> list[str]:
    """The devices that really work here: always "cpu", plus "cuda:N" for each usable GPU."""
    count, _ = _cuda_status()
    return ["cpu"] + [f"cuda:{i}" for i in range(count)]


def resolve_device(device: str | None) -> str:
    """Normalises a device string. "auto" picks CUDA when it works and otherwise falls back to the CPU with one
    warning naming the reason; an explicit "cuda" that cannot work raises DeviceUnavailableError with the reason."""
    if device is None:
        device = "auto"
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string like 'auto', 'cpu' or 'cuda:0', got {type(device).__name__}")
    d = device.strip().lower()
    if d == "cpu":
        return "cpu"
    if d == "auto":
        count, reason = _cuda_status()
        if count > 0:
            return "cuda:0"
        if reason and not reason.startswith("not available"):
            warnings.warn(f"svdc: device='auto' falls back to the CPU: cuda {reason}", RuntimeWarning, stacklevel=3)
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", d)
    if not m:
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    index = int(m.group(1) or 0)
    count, reason = _cuda_status()
    if count == 0:
        raise DeviceUnavailableError(f"device={device!r}: cuda {reason}")
    if index >= count:
        raise DeviceUnavailableError(f"device={device!r}: only {count} CUDA device(s) present")
    return f"cuda:{index}"


def info() -> dict:
    """Build information plus a PASS/FAIL line per backend with the reason."""
    import numpy as np

    build = dict(_C.build_info())
    backends = {}
    try:
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        w = np.ones((2, 4), dtype=np.float32)
        y = _C._ops.linear(x, w, None)
        ok = np.allclose(y, x.sum(axis=1, keepdims=True).repeat(2, axis=1))
        backends["cpu"] = "PASS" if ok else "FAIL: linear self-check gave wrong numbers"
    except Exception as exc:  # report, never raise, from info()
        backends["cpu"] = f"FAIL: {exc}"
    mod, reason = _load_cuda()
    if mod is None:
        backends["cuda"] = f"FAIL: {reason}"
    else:
        count, error = mod.device_count()
        if count <= 0:
            backends["cuda"] = f"FAIL: built, no device: {error}"
        else:
            names = ", ".join(mod.device_name(i) for i in range(count))
            try:  # the same linear self-check as the CPU's, run on the first GPU
                y = _C._ops.linear(x, w, None, device="cuda:0")
                ok = np.allclose(y, x.sum(axis=1, keepdims=True).repeat(2, axis=1))
                backends["cuda"] = f"PASS: {count} device(s): {names}" if ok else \
                    f"FAIL: linear self-check gave wrong numbers on {names}"
            except Exception as exc:  # report, never raise, from info()
                backends["cuda"] = f"FAIL: {names}: {exc}"
    build["backends"] = backends
    return build


def format_info(data: dict) -> str:
    lines = [f"svdc {data['version']}"]
    for key in ("compiler", "blas", "openmp", "openmp_threads"):
        lines.append(f"  {key}: {data[key]}")
    lines.append(f"  blas_config: {data['blas_config'].strip()}")
    for name, status in data["backends"].items():
        lines.append(f"  backend {name}: {status}")
    return "\n".join(lines)
