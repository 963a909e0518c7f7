"""Device choice ("auto" | "cpu" | "cuda[:N]" | "emu"), dtype choice, the CUDA fallback policy, and
svdc.info()/svdc.devices(). The backends themselves live in the C core's device registry (csrc/core/device.h):
"cpu" and "emu" (the CPU kernels behind device semantics, used by the tests) are built in; the CUDA module
(svdc._C_cuda) is registered here the first time it is needed."""
from __future__ import annotations

import re
import warnings

import numpy as np

from ._native import _C

DeviceUnavailableError = _C.DeviceUnavailableError

DTYPES = ("fp32", "fp16", "bf16")
_DTYPE_ALIASES = {"fp32": "fp32", "float32": "fp32", "float": "fp32", "fp16": "fp16", "float16": "fp16",
                  "half": "fp16", "bf16": "bf16", "bfloat16": "bf16"}


def _load_cuda():
    """Returns (module, None) when the CUDA backend imports and joins the core's registry, else (None, reason)."""
    cached = getattr(_load_cuda, "_result", None)
    if cached is not None:
        return cached
    try:
        from . import _C_cuda
    except ImportError as exc:  # not built on this machine, or the CUDA runtime library is missing
        return None, f"not available ({exc})"
    try:
        _C._register_backend(_C_cuda.backend_capsule())
    except DeviceUnavailableError as exc:  # a module from another build: refuse it with the reason
        _load_cuda._result = (None, f"not available ({exc})")
        return _load_cuda._result
    _load_cuda._result = (_C_cuda, None)
    return _load_cuda._result


def _cuda_status():
    """(usable device count, reason when 0)."""
    mod, reason = _load_cuda()
    if mod is None:
        return 0, reason
    count, error = mod.device_count()
    if count <= 0:
        return 0, f"built, no device: {error}"
    return count, None


def native_device(device: str) -> str:
    """The registry's device string for a resolved device name (the identity; tests replace it to run the CUDA
    choice on the emulated device)."""
    return device


def devices() -> list[str]:
    """The devices that really work here: always "cpu", plus "cuda:N" for each usable GPU ("emu", the test device,
    is accepted by every device= argument but not listed)."""
    count, _ = _cuda_status()
    return ["cpu"] + [f"cuda:{i}" for i in range(count)]


_warned_auto = False


def resolve_device(device: str | None) -> str:
    """Normalises a device string. "auto" (and None) picks CUDA when it works and otherwise the CPU, with one
    warning per process naming the reason (none when CUDA was simply not built); an explicit "cuda" that cannot work
    raises DeviceUnavailableError with the reason. "emu"/"emu:N" is the emulated device of the tests."""
    global _warned_auto
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
        if reason and not reason.startswith("not available") and not _warned_auto:
            _warned_auto = True
            warnings.warn(f"svdc: device='auto' falls back to the CPU: cuda {reason}", RuntimeWarning, stacklevel=3)
        return "cpu"
    m = re.fullmatch(r"emu(?::(\d+))?", d)
    if m:
        return f"emu:{int(m.group(1) or 0)}"
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


# Weight storage dtypes every model supports on each backend: weights are kept in this dtype and each op widens
# the ones it uses to float32 just before it runs (csrc/core/ops.c, widen_weights); compute is float32 everywhere.
_MODEL_DTYPES = {"cpu": DTYPES, "emu": DTYPES, "cuda": DTYPES}


def dtype_name(value, arg: str = "dtype") -> str | None:
    """A storage dtype given as "fp32" | "fp16" | "bf16" (or "float32", "float16", "bfloat16", "half", "float"), a
    NumPy float dtype, or a torch dtype (read through its str, torch.float16 -> "float16"; torch is never imported)
    -> "fp32" | "fp16" | "bf16"; None (and "auto") -> None, the device's default. Anything else is a ValueError
    naming `arg` and the accepted values."""
    if value is None:
        return None
    if isinstance(value, str):
        key = value.strip().lower()
    elif isinstance(value, (type, np.dtype)):
        try:
            key = np.dtype(value).name
        except TypeError:
            key = str(value)
    else:
        key = str(value).rsplit(".", 1)[-1].lower()  # torch.bfloat16 -> "bfloat16"
    if key == "auto":
        return None
    if key not in _DTYPE_ALIASES:
        raise ValueError(f"{arg}: expected None, 'fp32', 'fp16' or 'bf16' (or 'float32', 'float16', 'bfloat16', "
                         f"numpy.float32/float16, torch.float32/float16/bfloat16), got {value!r}")
    return _DTYPE_ALIASES[key]


def _cuda_supports_bf16(device: str) -> bool:
    """Whether the GPU has native bfloat16 (compute capability 8.0 or newer, read from the CUDA module's device
    name 'NAME (sm_XY, ...)'); False when it cannot be told."""
    mod, _ = _load_cuda()
    try:
        name = mod.device_name(int(device.split(":")[1]) if ":" in device else 0)
        m = re.search(r"sm_(\d+)", name)
        return bool(m) and int(m.group(1)) >= 80
    except Exception:  # no module, no such device, an unexpected name: fp16 is the safe default
        return False


def default_dtype(device: str) -> str:
    """dtype=None: fp32 on the CPU and the emulated device; on CUDA bf16 where the GPU has it (sm_80+), else fp16."""
    if device.split(":")[0] != "cuda":
        return "fp32"
    return "bf16" if _cuda_supports_bf16(device) else "fp16"


def resolve_dtype(dtype, device: str, model: str) -> str:
    """The weight storage dtype for `model` on the resolved `device` ("fp32" | "fp16" | "bf16"): None picks
    default_dtype(device); an unknown or unsupported dtype raises a ValueError naming the argument and the accepted
    values."""
    name = dtype_name(dtype)
    supported = _MODEL_DTYPES[device.split(":")[0]]
    if name is None:
        return default_dtype(device)
    if name not in supported:
        raise ValueError(f"dtype={dtype!r}: {model} on {device} stores {' or '.join(supported)} only")
    return name


def weight_dtypes() -> dict[str, str]:
    """Per device kind: the weight storage dtypes every model supports there and the default (for svdc info)."""
    count, _ = _cuda_status()
    cuda_default = default_dtype("cuda:0") if count > 0 else "bf16 on sm_80+, else fp16"
    defaults = {"cpu": "fp32", "emu": "fp32", "cuda": cuda_default}
    return {kind: f"{', '.join(dts)} (default {defaults[kind]}; compute in fp32)" for kind, dts in _MODEL_DTYPES.items()}


def info() -> dict:
    """Build information plus a PASS/FAIL line per backend with the reason; each registered backend's build line."""
    build = dict(_C.build_info())
    backends = {}
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    w = np.ones((2, 4), dtype=np.float32)
    expected = x.sum(axis=1, keepdims=True).repeat(2, axis=1)
    try:
        ok = np.allclose(_C._ops.linear(x, w, None), expected)
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
                ok = np.allclose(_C._ops.linear(x, w, None, device="cuda:0"), expected)
                backends["cuda"] = f"PASS: {count} device(s): {names}" if ok else \
                    f"FAIL: linear self-check gave wrong numbers on {names}"
            except Exception as exc:  # report, never raise, from info()
                backends["cuda"] = f"FAIL: {names}: {exc}"
    build["backends"] = backends
    build["dtypes"] = weight_dtypes()
    build["backend_builds"] = {b["name"]: b["build_info"] for b in _C.backends()}
    return build
