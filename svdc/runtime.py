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


def parse_device(device: str | None) -> str:
    """The syntax of a device string, without looking at any device: "auto" (also None), "cpu", "emu:N" or
    "cuda[:N]", normalised; anything else is a TypeError/ValueError naming the accepted forms. resolve_device
    starts with it; the batch runner checks its `device` option with it before any worker starts."""
    if device is None:
        return "auto"
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string like 'auto', 'cpu' or 'cuda:0', got {type(device).__name__}")
    d = device.strip().lower()
    m = re.fullmatch(r"emu(?::(\d+))?", d)
    if m:
        return f"emu:{int(m.group(1) or 0)}"
    if d not in ("auto", "cpu") and not re.fullmatch(r"cuda(?::\d+)?", d):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return d


def resolve_device(device: str | None) -> str:
    """Normalises a device string. "auto" (and None) picks CUDA when it works and otherwise the CPU, with one
    warning per process naming the reason (none when CUDA was simply not built); an explicit "cuda" that cannot work
    raises DeviceUnavailableError with the reason. "emu"/"emu:N" is the emulated device of the tests."""
    global _warned_auto
    d = parse_device(device)
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
    if d.startswith("emu"):
        return d
    index = int(d.split(":")[1]) if ":" in d else 0
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
    """Build information (compiler, SIMD kernels built and selected, the CPU's features, BLAS and threads, the CUDA
    build), a PASS/FAIL line per backend with the reason, each registered backend's build line, and the table of
    which models run on which device (svdc/selfcheck.py: tiny models against the CPU)."""
    from .selfcheck import model_table

    build = dict(_C.build_info())
    built = build.get("cpu_kernels_built", "baseline")
    build["simd"] = "any x86-64 (baseline)" + (" + an AVX2/FMA kernel variant" if "avx2" in built else "")
    reason = build.get("cpu_kernels_reason")
    build["cpu_kernels"] = build.get("cpu_kernels", "baseline") + (f" ({reason})" if reason else "")
    build["blas_threads"] = (f"1 per OpenMP thread ({build.get('openmp_threads')} threads: svdc splits each GEMM "
                             "with OpenMP)")
    mod, reason = _load_cuda()
    devices_checked = ["cpu", "emu"]
    cuda_line = None
    if mod is None:
        cuda_line = f"FAIL: {reason}"
    else:
        count, error = mod.device_count()
        if count <= 0:
            cuda_line = f"FAIL: built, no device: {error}"
        else:
            devices_checked.append("cuda:0")
    table = model_table(devices_checked)
    failed = {dev: [f"{name}: {cell}" for name, cell in cells.items() if cell != "PASS"] for dev, cells in table.items()}
    backends = {"cpu": "PASS" if not failed["cpu"] else "FAIL: " + "; ".join(failed["cpu"])}
    if cuda_line is None:
        names = ", ".join(mod.device_name(i) for i in range(mod.device_count()[0]))
        cuda_line = f"PASS: {names}" if not failed["cuda:0"] else f"FAIL: {names}: " + "; ".join(failed["cuda:0"])
    backends["cuda"] = cuda_line
    build["backends"] = backends
    build["models"] = {dev: cells for dev, cells in table.items()}
    if "cuda:0" not in table:
        build["models"]["cuda"] = cuda_line
    builds = {b["name"]: b["build_info"] for b in _C.backends()}
    cuda_build = builds.get("cuda", "")
    match = re.search(r"CUDA runtime (\d+)", cuda_build)
    if match:  # CUDART_VERSION: 1000 * major + 10 * minor
        v = int(match.group(1))
        build["cuda_toolkit"] = f"{v // 1000}.{v % 1000 // 10}" + (" + cuBLAS" if "+ cuBLAS" in cuda_build else
                                                                   " (no cuBLAS: fallback GEMM kernel)")
    match = re.search(r"archs ([0-9;]+)", cuda_build)
    if match:
        build["cuda_archs"] = ", ".join(f"sm_{a}" for a in match.group(1).split(";"))
    build["dtypes"] = weight_dtypes()
    build["backend_builds"] = {b["name"]: b["build_info"] for b in _C.backends()}
    return build
