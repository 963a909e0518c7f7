"""Image I/O and preprocessing for every pipeline: decoding (one function), the one transparency policy
(transparent pixels become white), the VAE input of SVD, the exact CLIP preprocessing of the SVD pipeline (diffusers'
pipeline_stable_video_diffusion.py, _encode_image and _resize_with_antialiasing: [0,255] -> [-1,1], Gaussian
anti-alias blur + bicubic (align_corners=True) resize, back to [0,1], CLIP mean/std), and SV3D's object-centred
preprocessing (Stability's scripts/sampling/simple_video_sample.py)."""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from ._validate import check_unit_interval

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
    - a PIL image (any mode; converted to RGB by to_rgb_image),
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
        rgb = image if image.mode == "RGB" else to_rgb_image(image)
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
        return np.ascontiguousarray(check_unit_interval(image, arg).astype(np.float32))
    raise TypeError(f"{arg}: expected dtype uint8 or float16/32/64, got {image.dtype}")


def _blur_taps(sigma: float, k: int) -> np.ndarray:
    """The 1-D Gaussian of diffusers' _gaussian_blur2d: taps exp(-x²/2σ²) at x = -k//2..k//2 (σ rounded to float32
    like the reference), normalised to sum 1; symmetric, so correlation = convolution."""
    s = float(np.float32(sigma))
    x = np.arange(k, dtype=np.float64) - k // 2
    if k % 2 == 0:
        x = x + 0.5
    taps = np.exp(-(x**2) / (2.0 * s * s))
    return taps / taps.sum()


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """torch's cubic convolution weights for offsets -1, 0, 1, 2 from floor(x), given t = x - floor(x): (len, 4)."""
    a = _BICUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _bicubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's bicubic interpolation with align_corners=True and clamped border indices, as (source indices, weights),
    both (n_out, 4). The source coordinate is computed in float32 like torch's CPU kernel."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0.0)
    x = np.float32(scale) * np.arange(n_out, dtype=np.float32)  # source coordinate of each output sample
    x0 = np.floor(x)
    w = _cubic_weights((x - x0).astype(np.float64))  # (n_out, 4)
    idx = np.clip(x0.astype(np.int64)[:, None] - 1 + np.arange(4), 0, n_in - 1)  # (n_out, 4)
    return idx, w


def antialias_resize_matrix(n_in: int, n_out: int, arg: str = "image") -> np.ndarray:
    """(n_out, n_in) float64 operator of one axis of diffusers' _resize_with_antialiasing: the Gaussian blur
    (σ = max((n_in/n_out - 1)/2, 0.001), kernel int(max(4σ, 3)) made odd, reflect padding (k-1)//2 in front and the
    rest behind) followed by the bicubic resample. Built tap by tap (n_out·4·k entries), never as a dense
    n_in × n_in blur matrix, so a 20000-pixel side costs megabytes, not gigabytes."""
    factor = n_in / n_out
    sigma = max((factor - 1.0) / 2.0, 0.001)
    k = int(max(2.0 * 2 * sigma, 3))
    if k % 2 == 0:
        k += 1
    pad_front = (k - 1) // 2
    pad_rear = (k - 1) - pad_front
    if max(pad_front, pad_rear) >= n_in:
        raise _shape_error(
            f"{arg}: a side of {n_in} pixel(s) is too small for the anti-aliasing blur (kernel {k} needs at least "
            f"{max(pad_front, pad_rear) + 1} pixels for reflect padding)"
        )
    taps = _blur_taps(sigma, k)  # (k,)
    idx, w = _bicubic_taps(n_in, n_out)  # (n_out, 4) each
    # output o reads blurred sample idx[o, j], which reads source reflect(idx[o, j] + t - pad_front) with taps[t]
    src = idx[:, :, None] + np.arange(k) - pad_front  # (n_out, 4, k)
    src = np.abs(src)
    src = np.where(src >= n_in, 2 * (n_in - 1) - src, src)  # torch 'reflect' padding (edge not repeated)
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.broadcast_to(np.arange(n_out)[:, None, None], src.shape)
    np.add.at(m, (rows, src), w[:, :, None] * taps)
    return m


# Rows of the source converted to float64 at a time: bounds the resize's working memory for any image size.
_RESIZE_ROWS = 256


def _resize_rows(rows, shape, size: tuple[int, int], arg: str) -> np.ndarray:
    """The anti-aliased resize of an (N, C, H, W) image to (N, C, size[0], size[1]) float32: blur along W, then H,
    then bicubic, as one separable linear map per axis (out = Mh · x · Mwᵀ) in float64. The image's float64 rows
    r0:r1 come from rows(r0, r1) as (N, C, r1 - r0, W), so only one band of rows is ever converted: memory
    O(N·C·(band + Ho)·W). Each operator row touches only a few source pixels (k + 3 of them), so each band meets only
    the output rows it feeds."""
    n, c, h, w = shape
    mh = antialias_resize_matrix(h, size[0], arg)  # (Ho, H)
    mw = antialias_resize_matrix(w, size[1], arg)  # (Wo, W)
    y = np.zeros((n, c, size[0], w), dtype=np.float64)  # Mh · x, accumulated band by band
    for r0 in range(0, h, _RESIZE_ROWS):
        r1 = min(h, r0 + _RESIZE_ROWS)
        o0, o1 = _rows_reading(mh, r0, r1)
        y[:, :, o0:o1] += np.matmul(mh[o0:o1, r0:r1], rows(r0, r1))  # (o, band) · (N, C, band, W) -> (N, C, o, W)
    out = np.zeros((n, c, size[0], size[1]), dtype=np.float64)  # (Mh · x) · Mwᵀ, column band by column band
    for c0 in range(0, w, _RESIZE_ROWS):
        c1 = min(w, c0 + _RESIZE_ROWS)
        o0, o1 = _rows_reading(mw, c0, c1)
        out[..., o0:o1] += np.matmul(y[..., c0:c1], mw[o0:o1, c0:c1].T)  # (N, C, Ho, band) · (band, o)
    return out.astype(np.float32)


def _rows_reading(m: np.ndarray, c0: int, c1: int) -> tuple[int, int]:
    """The range o0:o1 of rows of `m` with a non-zero entry in columns c0:c1 (rows outside it would add zeros)."""
    hit = np.flatnonzero(np.any(m[:, c0:c1] != 0, axis=1))
    return (int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0)


def clip_preprocess(
    image,
    size: int = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    arg: str = "image",
) -> np.ndarray:
    """The SVD pipeline's CLIP input (diffusers StableVideoDiffusionPipeline._encode_image for PIL/NumPy input):
    [0,1] -> x·2-1 -> anti-aliased resize to size×size (an aspect-ratio squash, no crop) -> (x+1)/2 (no clamp) ->
    (x - mean)/std. Returns float32 (N, 3, size, size), C-contiguous."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (3,) or std.shape != (3,) or np.any(std <= 0) or not np.all(np.isfinite(mean)):
        raise ValueError(f"mean/std: expected 3 finite values each (std > 0), got mean={mean}, std={std}")
    src = _image_source(image, arg)  # (N, H, W, 3) uint8 or float32 in [0, 1], not copied when uint8

    def rows(r0, r1):  # the float32 arithmetic of the reference ([0,1] -> x·2-1), one band of rows at a time
        if src.dtype == np.uint8:  # the same values from a 256-entry table: one pass instead of four
            return _UINT8_TO_PM1[src[:, r0:r1].transpose(0, 3, 1, 2)]  # (N, band, W, 3) -> (N, 3, band, W)
        x01 = to_float_images(src[:, r0:r1], arg)  # (N, band, W, 3) float32
        x = x01.transpose(0, 3, 1, 2) * np.float32(2.0) - np.float32(1.0)  # NHWC -> NCHW, [-1, 1]
        return x.astype(np.float64, order="C")  # C order: matmul uses BLAS only on contiguous operands

    n, h, w, c = src.shape
    y = _resize_rows(rows, (n, c, h, w), (int(size), int(size)), arg).astype(np.float64)
    y = (y + 1.0) / 2.0
    y = (y - mean[None, :, None, None]) / std[None, :, None, None]
    return np.ascontiguousarray(y, dtype=np.float32)


# uint8 v -> float64 of the reference's float32 arithmetic (v / 255) * 2 - 1, for every v.
_UINT8_TO_PM1 = ((np.arange(256, dtype=np.float32) / np.float32(255.0)) * np.float32(2.0)
                 - np.float32(1.0)).astype(np.float64)


def _image_source(image, arg: str) -> np.ndarray:
    """The input of clip_preprocess as one (N, H, W, 3) array, uint8 kept as uint8 (4x smaller than float32), every
    other input validated by to_float_images."""
    if _is_pil(image):
        image = np.asarray(to_rgb_image(image), dtype=np.uint8)
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (3, 4) and image.shape[-1] == 3 \
            and min(image.shape) > 0:
        return image if image.ndim == 4 else image[None]
    return to_float_images(image, arg)


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
            from .models._loading import read_json

            cfg = read_json(cand, "the feature extractor config")  # CheckpointError naming the file
            mean, std = cfg.get("image_mean"), cfg.get("image_std")
            if mean is None or std is None:
                return None
            try:
                mean = tuple(float(v) for v in mean)
                std = tuple(float(v) for v in std)
            except (TypeError, ValueError):
                raise ValueError(f"{cand}: image_mean/image_std must be lists of 3 numbers, got {mean!r}, "
                                 f"{std!r}") from None
            if len(mean) != 3 or len(std) != 3 or any(not math.isfinite(v) for v in mean + std) or min(std) <= 0:
                raise ValueError(f"{cand}: image_mean/image_std must be 3 finite values (std > 0), got {mean}, {std}")
            return mean, std
    return None


# --- decoding and the transparency policy ----------------------------------------------------------------------
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _eight_bit(im):
    """16-bit greyscale (modes I;16*, and I holding values above 255) scaled to 8 bits (65535 -> 255), not clipped
    (a plain convert("RGB") saturates most of such a picture to white); float greyscale (mode F) taken as [0, 1] when
    its values are, else as [0, 255], clipped. Other modes are returned as they are."""
    from PIL import Image

    if im.mode in _SIXTEEN_BIT_MODES or im.mode == "I":
        a = np.asarray(im).astype(np.float64)
        if im.mode in _SIXTEEN_BIT_MODES or a.max(initial=0) > 255:
            a = a / 257.0  # 16-bit range -> 8-bit
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    return im


def decode_image(image, arg: str = "image"):
    """The one place images are decoded: a path, a PIL image or an array (H, W, 3|4) (uint8, or float in [0, 1])
    -> a loaded 8-bit PIL image in its own mode (alpha kept).

    Files are decoded like diffusers' load_image (the EXIF orientation applied, so phone photos are upright).
    Every decoding failure is a ValueError naming the argument and the file, including Pillow's decompression-bomb
    refusal (images over PIL.Image.MAX_IMAGE_PIXELS·2 pixels) and the odd exceptions corrupt files make Pillow's
    plugins raise; running out of memory is a MemoryError naming the file; other types raise TypeError."""
    from PIL import Image, ImageOps

    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.exists(path):
            raise ValueError(f"{arg}: no such image file: {path!r}")
        if not os.path.isfile(path):  # a folder, a FIFO (open() would block), a device
            raise ValueError(f"{arg}: {path!r} is not a regular file")
        try:
            with Image.open(path) as im:
                im.load()  # decode now: a truncated file fails here, not later
                return _eight_bit(ImageOps.exif_transpose(im))
        except MemoryError:
            raise MemoryError(f"{arg}: out of memory decoding {path!r}") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"{arg}: {path!r} is too large to decode safely: {e}") from None
        except Exception as e:  # Pillow's plugins raise many types on corrupt data (OSError, SyntaxError, ...)
            raise ValueError(f"{arg}: cannot read image file {path!r}: {type(e).__name__}: {e}") from None
    if _is_pil(image):
        return _eight_bit(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] not in (3, 4) or min(image.shape[:2]) < 1:
            raise ValueError(f"{arg}: expected an array of shape (H, W, 3) or (H, W, 4), got {image.shape}")
        mode = "RGB" if image.shape[-1] == 3 else "RGBA"
        if image.dtype == np.uint8:
            return Image.fromarray(np.ascontiguousarray(image), mode)
        if image.dtype.kind == "f":
            f = check_unit_interval(image, arg).astype(np.float64)
            return Image.fromarray(np.round(f * 255).astype(np.uint8), mode)
        raise TypeError(f"{arg}: expected uint8 or float array, got dtype {image.dtype}")
    raise TypeError(f"{arg}: expected a file path, a PIL image or an (H, W, 3|4) array, got {type(image).__name__}")


def has_alpha(im) -> bool:
    """Whether a PIL image carries transparency (an alpha channel or a transparent palette/colour entry)."""
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def to_rgb_image(im):
    """A PIL image -> a new RGB image; anything with transparency is composited on white: svdc's one transparency
    policy (what users of SVD and SV3D expect, rather than whatever colour hides under alpha 0)."""
    from PIL import Image

    im = _eight_bit(im)
    if has_alpha(im):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im.copy()


def load_image(image, arg: str = "image"):
    """A PIL RGB image from a file path, a PIL image or an array: decode_image, then to_rgb_image."""
    return to_rgb_image(decode_image(image, arg))


def vae_image(image, height: int, width: int) -> np.ndarray:
    """diffusers' VideoProcessor.preprocess for a PIL image: LANCZOS resize to width×height when the size differs,
    /255, ·2 − 1 -> float32 (1, 3, H, W)."""
    from PIL import Image

    if image.size != (width, height):
        image = image.resize((width, height), resample=Image.Resampling.LANCZOS)
    x = np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)  # (H, W, 3)
    x = x * np.float32(2.0) - np.float32(1.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # (H, W, 3) -> (1, 3, H, W)


def to_uint8(frames: np.ndarray, truncate: bool = False) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3): (x/2 + 0.5).clamp(0, 1)·255, rounded (diffusers) or truncated
    (sgm)."""
    x = np.clip(frames / np.float32(2.0) + np.float32(0.5), 0.0, 1.0) * np.float32(255.0)
    x = x if truncate else np.round(x)
    return np.ascontiguousarray(x.astype(np.uint8).transpose(0, 2, 3, 1))  # (N, 3, H, W) -> (N, H, W, 3)


# --- SV3D: object masks and the object-centred square input ----------------------------------------------------
WHITE_THRESHOLD = 250  # foreground = mean RGB <= 250 (Stability's scripts/demo/sv4d_helpers.py white_thresh)
SV3D_SIZE = 576


def white_background_alpha(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W) alpha of an object on a white background: 255 where the mean of R, G, B is <= 250, else 0."""
    rgb = np.asarray(rgb)
    return np.where(rgb[..., :3].mean(-1) <= WHITE_THRESHOLD, 255, 0).astype(np.uint8)


def matte(matting, rgb: np.ndarray, arg: str) -> np.ndarray:
    """Calls the user's matting hook matting(rgb uint8 (H, W, 3)) -> alpha (H, W), uint8 or float in [0, 1]."""
    if not callable(matting):
        raise TypeError(f"matting: expected a callable rgb (H, W, 3) uint8 -> alpha (H, W), got "
                        f"{type(matting).__name__}")
    alpha = np.asarray(matting(rgb))
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"matting: expected an alpha of shape {rgb.shape[:2]} for {arg}, got {alpha.shape}")
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype.kind != "f":
        raise ValueError(f"matting: expected a uint8 alpha or floats in [0, 1], got dtype {alpha.dtype}")
    check_unit_interval(alpha, "matting", "the returned alpha")
    return np.round(alpha * 255).astype(np.uint8)


def object_rgba(image, matting=None, arg: str = "image") -> np.ndarray:
    """uint8 (H, W, 4) of an object: its own alpha when the image has one (the offline default); otherwise, as
    Stability's script does before background removal, the image is first shrunk to fit 768×768 (LANCZOS), then
    the alpha comes from `matting(rgb)` (an external background remover; svdc never downloads one) or, without a
    hook, from the white-background mask. No foreground, or no background under the mask, is an error."""
    from PIL import Image

    im = decode_image(image, arg)
    if has_alpha(im):
        return np.asarray(im.convert("RGBA")).copy()
    rgb_im = im.convert("RGB")
    rgb_im.thumbnail((768, 768), Image.Resampling.LANCZOS)
    rgb = np.asarray(rgb_im)
    if matting is not None:
        alpha = matte(matting, rgb, arg)
    else:
        alpha = white_background_alpha(rgb)
        if alpha.max() == 0:
            raise ValueError(f"{arg}: no object: every pixel is white background (mean RGB > {WHITE_THRESHOLD})")
        if alpha.min() > 0:
            raise ValueError(f"{arg}: an RGB image with no white background (every pixel has mean RGB <= "
                             f"{WHITE_THRESHOLD}), so the object cannot be separated; pass an RGBA image with a "
                             f"transparent background, or matting=<a callable rgb -> alpha>")
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def sv3d_preprocess(image, size: int = SV3D_SIZE, image_frame_ratio: float | None = None, matting=None,
                    arg: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """SV3D's input exactly as Stability's simple_video_sample.py makes it -> (rgb uint8 (size, size, 3),
    alpha uint8 (size, size)):
    the tight box of alpha > 0, centred on a transparent square whose side is int(max(w, h)/image_frame_ratio)
    (without a ratio: the image height, as the script's swapped names do), resized to size×size with LANCZOS
    (Pillow resizes RGBA premultiplied), composited on white in float64 and truncated to uint8."""
    from PIL import Image

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected an int >= 1, got {size!r}")
    if image_frame_ratio is not None:
        r = float(image_frame_ratio) if isinstance(image_frame_ratio, (int, float, np.number)) else float("nan")
        if isinstance(image_frame_ratio, bool) or not math.isfinite(r) or r <= 0:
            raise ValueError(f"image_frame_ratio: expected a positive number (the object's share of the frame, "
                             f"e.g. 0.917) or None, got {image_frame_ratio!r}")
    rgba = object_rgba(image, matting, arg)
    rows = np.flatnonzero(rgba[..., 3].any(axis=1))
    cols = np.flatnonzero(rgba[..., 3].any(axis=0))
    if rows.size == 0:
        raise ValueError(f"{arg}: the image is fully transparent (alpha 0 everywhere): no object to centre")
    y, x = int(rows[0]), int(cols[0])
    h, w = int(rows[-1]) - y + 1, int(cols[-1]) - x + 1
    side = int(max(w, h) / image_frame_ratio) if image_frame_ratio is not None else rgba.shape[0]
    if side < max(w, h):
        how = ("image_frame_ratio must be <= 1" if image_frame_ratio is not None
               else "pass image_frame_ratio (e.g. 0.917) to size the square from the object")
        raise ValueError(f"{arg}: the object ({w}x{h} px) does not fit the {side}x{side} square; {how}")
    canvas = np.zeros((side, side, 4), np.uint8)
    c = side // 2
    canvas[c - h // 2:c - h // 2 + h, c - w // 2:c - w // 2 + w] = rgba[y:y + h, x:x + w]
    resized = np.asarray(Image.fromarray(canvas, "RGBA").resize((size, size), Image.Resampling.LANCZOS))
    a = resized / 255.0  # float64, as the script
    rgb = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])
    return (rgb * 255).astype(np.uint8), np.ascontiguousarray(resized[..., 3])
