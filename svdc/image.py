"""Image loading/conversion and the exact CLIP preprocessing of the SVD pipeline (spec §3.1), in vectorised NumPy:
[0,255] -> [-1,1], Gaussian anti-alias blur + bicubic (align_corners=True) resize, back to [0,1], CLIP mean/std."""
from __future__ import annotations

import json
import math
import os
from typing import Sequence

import numpy as np

# OpenAI CLIP normalisation constants (also what SVD's feature_extractor/preprocessor_config.json holds).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_BICUBIC_A = -0.75  # torch's cubic convolution constant


def _shape_error(message: str) -> Exception:
    """svdc.ShapeError (a ValueError) when the native module is importable, else a plain ValueError."""
    try:
        from ._native import _C

        return _C.ShapeError(message)
    except Exception:  # preprocessing needs no C; keep it usable without the extension
        return ValueError(message)


def _is_pil(obj) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(obj, Image.Image)


def to_float_images(image, arg: str = "image") -> np.ndarray:
    """Converts one image or a batch to float32 (N, H, W, 3) in [0, 1].

    Accepted:
    - a PIL image (any mode; converted to RGB first, as diffusers' load_image does),
    - a uint8 array (H, W, 3) or (N, H, W, 3): divided by 255 (exactly diffusers' pil_to_numpy),
    - a float array (H, W, 3) or (N, H, W, 3) already in [0, 1] (used as is; diffusers would divide it by 255 again,
      a quirk not reproduced here),
    - a list/tuple of the above with equal sizes (stacked into a batch).
    NaN/Inf, values outside [0, 1], other dtypes, channel counts other than 3 and non-image objects are refused.
    """
    if isinstance(image, (list, tuple)):
        if len(image) == 0:
            raise ValueError(f"{arg}: expected at least one image, got an empty {type(image).__name__}")
        parts = [to_float_images(im, f"{arg}[{i}]") for i, im in enumerate(image)]
        sizes = {p.shape[1:3] for p in parts}
        if len(sizes) != 1:
            raise _shape_error(f"{arg}: all images of a list must have the same (H, W), got {sorted(sizes)}")
        return np.ascontiguousarray(np.concatenate(parts, axis=0))
    if _is_pil(image):
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return (np.asarray(rgb, dtype=np.uint8).astype(np.float32) / np.float32(255.0))[None]
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{arg}: expected a PIL image, a uint8 or float array (H, W, 3) / (N, H, W, 3), or a list of them; "
            f"got {type(image).__name__}"
        )
    if image.ndim not in (3, 4):
        raise _shape_error(f"{arg}: expected shape (H, W, 3) or (N, H, W, 3), got {image.shape}")
    if image.shape[-1] != 3:
        raise _shape_error(f"{arg}: expected 3 channels in the last axis (H, W, 3), got shape {image.shape}")
    if image.ndim == 3:
        image = image[None]
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise _shape_error(f"{arg}: empty image, shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype in (np.float16, np.float32, np.float64):
        x = image.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{arg}: contains NaN or Inf")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{arg}: float images must be in [0, 1], got values in [{lo:g}, {hi:g}]")
        return np.ascontiguousarray(x)
    raise TypeError(f"{arg}: expected dtype uint8 or float16/32/64, got {image.dtype}")


def _reflect_index(i: np.ndarray, n: int) -> np.ndarray:
    """torch 'reflect' padding (edge not repeated); valid for pads < n, which the caller ensures."""
    i = np.abs(i)
    return np.where(i >= n, 2 * (n - 1) - i, i)


def _blur_matrix(n: int, sigma: float, k: int, arg: str) -> np.ndarray:
    """(n, n) matrix of the 1-D Gaussian blur with reflect padding, as diffusers' _gaussian_blur2d/_filter2d: taps
    exp(-x²/2σ²) at x = -k//2..k//2 (σ rounded to float32 like the reference), normalised to sum 1; the kernel is
    symmetric so correlation = convolution; padding (k-1)//2 front, the rest at the rear."""
    pad_front = (k - 1) // 2
    pad_rear = (k - 1) - pad_front
    if max(pad_front, pad_rear) >= n:
        raise _shape_error(
            f"{arg}: a side of {n} pixel(s) is too small for the anti-aliasing blur (kernel {k} needs at least "
            f"{max(pad_front, pad_rear) + 1} pixels for reflect padding)"
        )
    s = float(np.float32(sigma))
    x = np.arange(k, dtype=np.float64) - k // 2
    if k % 2 == 0:
        x = x + 0.5
    taps = np.exp(-(x**2) / (2.0 * s * s))
    taps /= taps.sum()
    m = np.zeros((n, n), dtype=np.float64)
    rows = np.arange(n)
    for t in range(k):
        # padded position o + t corresponds to source index o + t - pad_front
        np.add.at(m, (rows, _reflect_index(rows + t - pad_front, n)), taps[t])
    return m


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """torch's cubic convolution weights for offsets -1, 0, 1, 2 from floor(x), given t = x - floor(x): (len, 4)."""
    a = _BICUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of torch's bicubic interpolation with align_corners=True and clamped border indices.
    The source coordinate is computed in float32 like torch's CPU kernel."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0.0)
    x = np.float32(scale) * np.arange(n_out, dtype=np.float32)  # source coordinate of each output sample
    x0 = np.floor(x)
    t = (x - x0).astype(np.float64)
    w = _cubic_weights(t)  # (n_out, 4)
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    for j in range(4):
        idx = np.clip(x0.astype(np.int64) - 1 + j, 0, n_in - 1)
        np.add.at(m, (rows, idx), w[:, j])
    return m


def antialias_resize_matrix(n_in: int, n_out: int, arg: str = "image") -> np.ndarray:
    """(n_out, n_in) float64 operator of one axis of diffusers' _resize_with_antialiasing: the Gaussian blur
    (σ = max((n_in/n_out - 1)/2, 0.001), kernel int(max(4σ, 3)) made odd) followed by the bicubic resample."""
    factor = n_in / n_out
    sigma = max((factor - 1.0) / 2.0, 0.001)
    k = int(max(2.0 * 2 * sigma, 3))
    if k % 2 == 0:
        k += 1
    return _bicubic_matrix(n_in, n_out) @ _blur_matrix(n_in, sigma, k, arg)


def resize_with_antialiasing(x: np.ndarray, size: tuple[int, int], arg: str = "image") -> np.ndarray:
    """x (N, C, H, W) -> (N, C, size[0], size[1]) float32: blur along W, then H, then bicubic, as one separable
    linear map per axis (out = Mh · x · Mwᵀ), evaluated in float64."""
    if x.ndim != 4:
        raise _shape_error(f"{arg}: expected (N, C, H, W), got shape {x.shape}")
    h, w = x.shape[-2:]
    mh = antialias_resize_matrix(h, size[0], arg)  # (Ho, H)
    mw = antialias_resize_matrix(w, size[1], arg)  # (Wo, W)
    y = np.matmul(mh, x.astype(np.float64))  # (N, C, Ho, W)
    y = np.matmul(y, mw.T)  # (N, C, Ho, Wo)
    return y.astype(np.float32)


def clip_preprocess(
    image,
    size: int = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    arg: str = "image",
) -> np.ndarray:
    """The SVD pipeline's CLIP input (diffusers `_encode_image` for PIL/NumPy input, spec §3.1):
    [0,1] -> x·2-1 -> anti-aliased resize to size×size (an aspect-ratio squash, no crop) -> (x+1)/2 (no clamp) ->
    (x - mean)/std. Returns float32 (N, 3, size, size), C-contiguous."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (3,) or std.shape != (3,) or np.any(std <= 0) or not np.all(np.isfinite(mean)):
        raise ValueError(f"mean/std: expected 3 finite values each (std > 0), got mean={mean}, std={std}")
    x01 = to_float_images(image, arg)  # (N, H, W, 3) float32 in [0, 1]
    x = x01.transpose(0, 3, 1, 2) * np.float32(2.0) - np.float32(1.0)  # NHWC -> NCHW, [-1, 1] in float32
    y = resize_with_antialiasing(x, (int(size), int(size)), arg).astype(np.float64)
    y = (y + 1.0) / 2.0
    y = (y - mean[None, :, None, None]) / std[None, :, None, None]
    return np.ascontiguousarray(y, dtype=np.float32)


def read_clip_normalisation(path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(image_mean, image_std) from a feature extractor's preprocessor_config.json next to a checkpoint, or None.
    Looks in <path>/feature_extractor/ (pipeline folder), <path>/ (the feature_extractor folder itself) and
    <path>/../feature_extractor/ (an image_encoder/ folder inside a pipeline)."""
    if path is None or not os.path.isdir(os.fspath(path)):
        return None
    p = os.fspath(path)
    for cand in (
        os.path.join(p, "feature_extractor", "preprocessor_config.json"),
        os.path.join(p, "preprocessor_config.json"),
        os.path.join(os.path.dirname(os.path.abspath(p)), "feature_extractor", "preprocessor_config.json"),
    ):
        if os.path.isfile(cand):
            with open(cand, encoding="utf-8") as f:
                cfg = json.load(f)
            mean, std = cfg.get("image_mean"), cfg.get("image_std")
            if mean is None or std is None:
                return None
            mean = tuple(float(v) for v in mean)
            std = tuple(float(v) for v in std)
            if len(mean) != 3 or len(std) != 3 or any(not math.isfinite(v) for v in mean + std) or min(std) <= 0:
                raise ValueError(f"{cand}: image_mean/image_std must be 3 finite values (std > 0), got {mean}, {std}")
            return mean, std
    return None
