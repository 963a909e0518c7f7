"""Device choice ("auto" | "cpu" | "cuda[:N]" | "emu"), dtype choice, the CUDA fallback policy, and
svdc.info()/svdc.devices(). The backends themselves live in the C core's device registry (csrc/core/device.h):
"cpu" and "emu" (the CPU kernels behind device semantics, used by the tests) are built in; the CUDA module
(svdc._C_cuda) is registered here the first time it is needed."""
from __future__ import annotations

import re
import warnings

from ._native import _C

DeviceUnavailableError = _C.DeviceUnavailableError

DTYPES = ("fp32", "fp16", "bf16")
_DTYPE_ALIASES = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "bf16": "bf16",
                  "bfloat16": "bf16"}


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


# Storage dtypes the model code supports on each backend. 16-bit storage needs dtype-aware views in the model code
# (csrc/models), which still addresses activations as float32; until then every backend stores float32.
_MODEL_DTYPES = {"cpu": ("fp32",), "emu": ("fp32",), "cuda": ("fp32",)}


def resolve_dtype(dtype, device: str, model: str) -> str:
    """The storage dtype for `model` on the resolved `device`: None picks the backend's default (fp32 on the CPU;
    on CUDA bf16 once the model code supports 16-bit storage, fp32 until then); an unsupported dtype raises a
    ValueError naming the device and what it supports."""
    kind = device.split(":")[0]
    supported = _MODEL_DTYPES[kind]
    if dtype is None:
        return supported[-1]
    name = _DTYPE_ALIASES.get(dtype) if isinstance(dtype, str) else None
    if name is None:
        raise ValueError(f"dtype: expected None, 'fp32', 'fp16' or 'bf16', got {dtype!r}")
    if name not in supported:
        raise ValueError(f"dtype={dtype!r}: {model} on {device} stores {' or '.join(supported)} only (16-bit model "
                         f"storage is not implemented yet); use dtype='fp32' or None")
    return name


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
    build["backend_builds"] = {b["name"]: b["build_info"] for b in _C.backends()}
    return build
