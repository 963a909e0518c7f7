"""Loads the compiled core. OpenBLAS (from the scipy-openblas32 wheel) is loaded first with RTLD_GLOBAL, so that
svdc._C, which links against it by soname, finds it wherever pip put the wheel."""
import ctypes
import os

import scipy_openblas32


def _preload_openblas():
    path = os.path.join(scipy_openblas32.get_lib_dir(), "lib" + scipy_openblas32.get_library() + ".so")
    if os.path.exists(path):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


_preload_openblas()

from . import _C  # noqa: E402  (must follow the preload)


def _check_cpu_kernels_override():
    """SVDC_CPU_KERNELS (docs/build.md) chooses the CPU kernel variant; one the build or the CPU cannot give, or a
    value that is not a variant, falls back in C: say so once, with the reason, rather than silently."""
    wanted = os.environ.get("SVDC_CPU_KERNELS", "")
    if wanted in ("", "auto"):
        return
    info = _C.build_info()
    if info.get("cpu_kernels") != wanted:
        import warnings

        warnings.warn(f"SVDC_CPU_KERNELS={wanted!r}: running the {info.get('cpu_kernels')!r} CPU kernels instead "
                      f"({info.get('cpu_kernels_reason')})", RuntimeWarning, stacklevel=3)


_check_cpu_kernels_override()

__all__ = ["_C", "testing_ops"]


def testing_ops():
    """svdc._C_testing, the op-test surface (single ops on any backend, the emulated device's controls) that tests
    and benchmarks use; the product never loads it. It links no core: its svdc_* symbols resolve against svdc._C, so
    _C (already loaded, privately) is first re-opened with RTLD_GLOBAL, which makes its symbols visible to the
    modules loaded after it."""
    import importlib

    ctypes.CDLL(_C.__file__, mode=ctypes.RTLD_GLOBAL | getattr(os, "RTLD_NOLOAD", 0))
    return importlib.import_module("svdc._C_testing")
