"""Shared pieces of the svdc pipelines: argument checks with clear messages, image loading, and the denoising loop
(one bounded C call per step, so the progress bar, the callback and Ctrl-C all work between steps)."""
from __future__ import annotations

import math
import os
from typing import Callable, Optional

import numpy as np

from .._native import _C
from ..image import load_image  # noqa: F401  (decoding lives in svdc/image.py)
from ..random import Generator


# --- argument checks -------------------------------------------------------------------------------------------
def check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_number(name: str, value, minimum: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ValueError(f"{name}: expected a number {'>' if strict else '>='} {minimum:g}, got {value}")
    return v


def check_multiple(name: str, value, multiple: int, why: str = "") -> int:
    v = check_int(name, value, multiple)
    if v % multiple:
        raise ValueError(f"{name}: expected a multiple of {multiple}{why}, got {v}")
    return v


def make_generator(seed) -> Generator:
    """A Generator for `seed`: an int, an existing svdc.Generator (used as is), or None (a fresh random seed)."""
    if isinstance(seed, Generator):
        return seed
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    return Generator(seed)


# --- images ----------------------------------------------------------------------------------------------------
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


# --- the denoising loop ----------------------------------------------------------------------------------------
def denoise(sampler, model: Callable[[int, np.ndarray], np.ndarray], *, cfg: bool, guidance: np.ndarray | None,
            generator: Generator, callback: Optional[Callable] = None, progress: bool = True,
            desc: str = "denoising") -> np.ndarray:
    """Runs every step of `sampler` (an svdc._C.Sampler): model(step, model_input) -> v, then the Euler step.
    callback(step, total, latents) runs after each step; its exceptions propagate (the sampler is discarded, so
    nothing is left half-done). Returns the final latents (B, F, C, h, w)."""
    total = sampler.num_steps
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    try:
        for i in range(total):
            u = sampler.model_input(i, cfg)
            v = model(i, u)
            noise = generator.randn(sampler.shape) if sampler.gamma(i) > 0 else None
            sampler.step(i, np.ascontiguousarray(v, dtype=np.float32), cfg, guidance, noise)
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(i, total, sampler.latents)
    finally:
        if bar is not None:
            bar.close()
    return sampler.latents


def new_sampler(shape, sigmas: np.ndarray, churn: dict | None = None):
    b, f, c, h, w = (int(d) for d in shape)
    return _C.Sampler(b, f, c, h, w, np.ascontiguousarray(sigmas, dtype=np.float32), **(churn or {}))
