"""The staged video-diffusion pipeline that ImageToVideo and MultiView build on (encode the condition, added ids,
guidance, sample, decode: one method each), plus the shared pieces: argument checks (re-exported from
svdc/_validate.py) and the denoising loop (one bounded C call per step, so the progress bar, the callback and
Ctrl-C all work between steps)."""
from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from .._native import _C
from .._validate import (check_component, check_int, check_multiple, check_number,  # noqa: F401  (base.check_*)
                         count_not_finite)
from ..random import Generator


def make_generator(seed) -> Generator:
    """A Generator for `seed`: an int, an existing svdc.Generator (used as is), or None (a fresh random seed)."""
    if isinstance(seed, Generator):
        return seed
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    return Generator(seed)


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
            u = _check_step(sampler.model_input(i, cfg), "the model's input (the scaled latents)", i, total, guidance)
            v = _check_step(model(i, u), "the model's output", i, total, guidance)
            noise = generator.randn(sampler.shape) if sampler.gamma(i) > 0 else None
            sampler.step(i, v, cfg, guidance, noise)
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(i, total, sampler.latents)
    finally:
        if bar is not None:
            bar.close()
    return sampler.latents


def _check_step(a, what: str, i: int, total: int, guidance) -> np.ndarray:
    """`a` as float32, or a ValueError saying the sampling overflowed at this step and which arguments scale it
    (instead of the C sampler's or the UNet's complaint about its internal arrays)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = count_not_finite(a)
    if bad:
        scale = "" if guidance is None else f"the guidance scale (up to {float(np.max(np.abs(guidance))):g}) or "
        raise ValueError(f"denoising step {i + 1} of {total}: the sampling overflowed float32 ({bad} NaN/Inf "
                         f"value(s) of {a.size} in {what}): {scale}the given latents are too large, or the weights "
                         f"are corrupt; nothing was produced")
    return a


def new_sampler(shape, sigmas: np.ndarray, churn: dict | None = None):
    b, f, c, h, w = (int(d) for d in shape)
    return _C.Sampler(b, f, c, h, w, np.ascontiguousarray(sigmas, dtype=np.float32), **(churn or {}))


# --- the staged pipeline ---------------------------------------------------------------------------------------
class VideoDiffusionPipeline:
    """An image-conditioned latent video diffusion run with an SVD-family UNet (noisy latents ⊕ the image latent on
    the channels, the CLIP image embedding as cross-attention context, v-prediction EDM sampling with per-frame
    guidance). Subclasses parse their arguments in __call__ and implement added_ids and guidance; the other
    stages are shared and may be overridden."""

    progress_desc = "denoising"

    def __init__(self, unet, vae, image_encoder):
        self.unet = check_component(unet, "unet")
        self.vae = check_component(vae, "vae", ("encode", "decode"))
        self.image_encoder = check_component(image_encoder, "image_encoder", ("__call__", "preprocess"))
        self.vae_scale_factor = int(getattr(vae, "down_factor", 8))

    @property
    def latent_channels(self) -> int:
        return int(getattr(self.unet, "in_channels", 8)) // 2  # noisy latents | concat condition

    # ---- stages ------------------------------------------------------------------------------------------------
    def encode_condition(self, clip_images, pixels: np.ndarray, cfg: bool):
        """(embeds (R, 1, D), cond (B, C, h, w)): the CLIP image embedding of `clip_images` (one image or a list,
        as image_encoder.preprocess takes them) with zero uncond rows first when cfg (R = 2B, else B), and the VAE
        posterior mean (unscaled) of `pixels` (B, 3, H, W) in [-1, 1]."""
        embeds = np.asarray(self.image_encoder(self.image_encoder.preprocess(clip_images)), dtype=np.float32)
        embeds = embeds[:, None, :]  # (B, D) -> (B, 1, D)
        if cfg:
            embeds = np.concatenate([np.zeros_like(embeds), embeds])
        cond = np.ascontiguousarray(self.vae.encode(pixels), dtype=np.float32)  # (B, C, h, w)
        return embeds, cond

    def added_ids(self, *args, **kwargs) -> np.ndarray:
        """The UNet's added ids: (R, n) per video or (R, F, n) per frame, uncond rows first when cfg."""
        raise NotImplementedError

    def guidance(self, *args, **kwargs) -> np.ndarray:
        """(F,) float32 per-frame guidance scales."""
        raise NotImplementedError

    def sample(self, latent_shape, schedule, x0: np.ndarray, cond: np.ndarray, embeds: np.ndarray, ids: np.ndarray,
               guidance: np.ndarray | None, generator: Generator, callback: Optional[Callable] = None,
               progress: bool = True) -> np.ndarray:
        """Euler sampling over `schedule` (sigmas, timesteps, init_noise_sigma) from x = x0·init_noise_sigma with
        the concat condition `cond`; CFG (uncond rows first) when `guidance` is given. -> latents (B, F, C, h, w)."""
        cfg = guidance is not None
        sampler = new_sampler(latent_shape, schedule.sigmas)
        sampler.set_latents(x0, float(schedule.init_noise_sigma))
        sampler.set_cond(cond)
        rows = (2 if cfg else 1) * int(latent_shape[0])

        def model(i, u):
            t = np.full((rows,), schedule.timesteps[i], dtype=np.float32)
            return self.unet(u, t, embeds, ids)

        return denoise(sampler, model, cfg=cfg, guidance=guidance, generator=generator, callback=callback,
                       progress=progress, desc=self.progress_desc)

    def decode(self, latents: np.ndarray, chunk_size: int | None = None) -> np.ndarray:
        """latents (B, F, C, h, w) -> frames (B·F, 3, H, W) in about [-1, 1]: divided by the VAE scaling factor and
        decoded in chunks of `chunk_size` rows of the flattened batch (None: every video whole)."""
        b, f, c, h, w = latents.shape
        z = latents.reshape(b * f, c, h, w) * np.float32(1.0 / self.vae.scaling_factor)  # (B, F, ...) -> (B·F, ...)
        return np.asarray(self.vae.decode(np.ascontiguousarray(z, dtype=np.float32), num_frames=f,
                                          chunk_size=chunk_size), dtype=np.float32)
