"""`svdc info`: renders svdc.info()'s data (svdc/runtime.py) with the Python side of the installation, for bug
reports: versions, install path, the SIMD kernels built and the one selected for this CPU, BLAS and threads, the CUDA
toolkit and architectures, one line per backend and the table of which models run on which device, where a backend
this build does not contain reads "not built" rather than FAIL."""
# (Not named svdc/info.py: that module would shadow the function svdc.info.)
from __future__ import annotations

import importlib.util
import os
import platform
import sys

# Keys of svdc.info() shown as "name: value" lines, in this order, when present (newer builds report more).
_BUILD_KEYS = (
    ("compiler", "compiler"),
    ("simd", "SIMD (build)"),
    ("cpu_features", "SIMD (this CPU)"),
    ("cpu_kernels", "CPU kernels selected"),
    ("openmp", "OpenMP"),
    ("openmp_threads", "OpenMP threads"),
    ("blas", "BLAS"),
    ("blas_threads", "BLAS threads"),
    ("blas_config", "BLAS build"),
    ("cuda_toolkit", "CUDA toolkit"),
    ("cuda_archs", "CUDA archs built"),
)


def cuda_built() -> bool:
    """Whether this installation contains the CUDA extension module (svdc._C_cuda), loadable or not."""
    return importlib.util.find_spec("svdc._C_cuda") is not None


def backend_line(name: str, status: str) -> str:
    if name == "cuda" and not cuda_built():
        return ("not built (this installation has no CUDA backend; rebuild with a CUDA toolkit present, "
                "SVDC_CUDA=1 makes that a requirement)")
    return status


def render(data: dict | None = None) -> str:
    """The text of `svdc info` for svdc.info()'s dict (called when not given)."""
    import numpy

    import svdc

    if data is None:
        data = svdc.info()
    lines = [f"svdc {data.get('version', svdc.__version__)}",
             f"  install: {os.path.dirname(os.path.abspath(svdc.__file__))}",
             f"  python: {platform.python_version()} ({sys.executable})",
             f"  numpy: {numpy.__version__}",
             f"  platform: {platform.platform()} ({platform.machine()}, {os.cpu_count()} logical CPUs)"]
    for key, label in _BUILD_KEYS:
        if key in data:
            value = data[key]
            lines.append(f"  {label}: {value.strip() if isinstance(value, str) else value}")
        elif key == "cuda_toolkit" and not cuda_built():
            lines.append(f"  {label}: not built")
    lines.append("  backends:")
    for name, status in data.get("backends", {}).items():
        lines.append(f"    {name}: {backend_line(name, status)}")
    for name, line in data.get("backend_builds", {}).items():
        lines.append(f"    {name} build: {line}")
    models = data.get("models")
    if models:
        lines.append("  models (on each device, checked against the CPU with tiny random weights):")
        names = sorted({n for cells in models.values() if isinstance(cells, dict) for n in cells})
        width = max([len(d) for d in models] + [6])
        lines.append(("    " + "device".ljust(width) + "  " + "  ".join(n.ljust(12) for n in names)).rstrip())
        notes = []
        for device, cells in models.items():
            if isinstance(cells, dict):
                marks = [("ok" if cells.get(n) == "PASS" else "FAIL" if n in cells else "-").ljust(12) for n in names]
                lines.append("    " + device.ljust(width) + "  " + "  ".join(marks).rstrip())
                notes += [f"{device} {n}: {cell}" for n, cell in cells.items() if cell != "PASS"]
            else:  # the device cannot run anything: the backend's line says why
                lines.append("    " + device.ljust(width) + "  " + backend_line(device, cells))
        lines += [f"    {note}" for note in notes]
    return "\n".join(lines)
