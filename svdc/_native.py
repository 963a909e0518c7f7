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

__all__ = ["_C"]
