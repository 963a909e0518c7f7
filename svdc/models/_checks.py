"""Input checks shared by the model wrappers (svdc.UNet, svdc.VAE, svdc.ImageEncoder): device/dtype choice, array
conversion to float32 C-contiguous, NaN/Inf refusal of inputs and the float32 view of weight mappings. Every message names
the argument, what was expected and what was given."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from .._native import _C
from .. import runtime
from .._validate import check_float32_range


def model_device(device, dtype, model: str) -> str:
    """The resolved device for `model` ("cpu", "cuda:N", "emu:N"; "auto"/None pick as runtime.resolve_device does),
    after checking that `dtype` is a storage dtype the model supports there (runtime.resolve_dtype)."""
    dev = runtime.resolve_device(device)
    runtime.resolve_dtype(dtype, dev, model)
    return dev


def native_device(device: str) -> str:
    """The device string the C model is built on (runtime.native_device: the identity outside tests)."""
    return runtime.native_device(device)


def native_placement(device: str, dtype, model: str) -> dict:
    """The device= and dtype= keywords of a C model's constructor for the resolved `device` and the requested
    storage `dtype` (None: the device's default, runtime.default_dtype)."""
    return {"device": runtime.native_device(device), "dtype": runtime.resolve_dtype(dtype, device, model)}


def as_float32(x, name: str, *, integers: bool = False, ndarray_only: bool = False,
               dtype_error: type = TypeError) -> np.ndarray:
    """`x` as a float32, C-contiguous, aligned array; float16/float64 and non-contiguous input are converted
    explicitly (integers too when `integers`). Other dtypes raise `dtype_error`; with `ndarray_only`, anything but
    a numpy.ndarray raises TypeError."""
    if ndarray_only and not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of floats, got {type(x).__name__}")
    a = np.asarray(x)
    if a.dtype.kind not in ("fiu" if integers else "f"):
        what = "a real numeric" if integers else "a floating-point"
        raise dtype_error(f"{name}: expected {what} array (computed in float32), got dtype {a.dtype}")
    check_float32_range(a, name)
    if a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.aligned:
        a = np.array(a, dtype=np.float32, order="C")
    return a


def check_finite(a: np.ndarray, name: str) -> np.ndarray:
    """Refuses NaN/Inf with a ValueError naming the argument and the count; returns `a`."""
    finite = np.isfinite(a)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(f"{name}: expected finite values, found {bad} NaN/Inf element(s)")
    return a


def check_mapping(weights) -> Mapping:
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights: expected a Mapping of name -> numpy array, got {type(weights).__name__}")
    return weights


class Float32Weights(Mapping):
    """A read-only view of a weight mapping that converts floating arrays (float16/float64, non-contiguous) to
    float32 C-contiguous on access, refuses other dtypes with svdc.CheckpointError, and hides the `ignored` names
    (buffers a checkpoint may carry that are not weights). The C loader refuses NaN/Inf (svdc.weights.CHECK_FINITE)
    and takes file tensors through file_view when the wrapped mapping has one (svdc.weights.LazyWeights)."""

    def __init__(self, weights: Mapping, ignored: frozenset = frozenset()):
        self._w = check_mapping(weights)
        self._ignored = ignored
        self._keys = [k for k in weights.keys() if k not in ignored] if ignored else None

    def __getitem__(self, name):
        if name in self._ignored:
            raise KeyError(name)
        a = self._w[name]
        if hasattr(a, "detach"):  # a torch tensor passed by mistake: say how to convert it
            raise TypeError(f"weights[{name!r}]: expected a numpy array, got a torch tensor (use .numpy())")
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise _C.CheckpointError(f"weights[{name!r}]: expected a floating array, got dtype {a.dtype}")
        if a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.aligned:
            a = np.array(a, dtype=np.float32, order="C")
        return a

    def file_view(self, name):
        """The wrapped mapping's file_view(name) (None when it has none, or for an ignored name)."""
        view = getattr(self._w, "file_view", None)
        return None if view is None or name in self._ignored else view(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys if self._keys is not None else self._w)

    def __len__(self) -> int:
        return len(self._keys) if self._keys is not None else len(self._w)

    def __contains__(self, name) -> bool:
        return name in self._w and name not in self._ignored
