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
def denoise(sampler, plan, model: Callable[[int, np.ndarray], np.ndarray], *, cfg: bool,
            guidance: np.ndarray | None, generator: Generator, callback: Optional[Callable] = None,
            progress: bool = True, desc: str = "denoising") -> np.ndarray:
    """Runs every step of `plan` (a schedules.SamplingPlan) on `sampler` (an svdc._C.Sampler holding the latents):
    model(step, model_input) -> model output, noise from `generator` where the scheduler draws it, then the step.
    The latents stay in the sampler (on its device); they come to the host only for callback(step, total,
    latents), whose exceptions propagate (the sampler is discarded, so nothing is left half-done), and at the end.
    Returns the final latents (B, F, C, h, w)."""
    total = plan.num_steps
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    try:
        for i, step in enumerate(plan.steps):
            u = _check_step(sampler.model_input(step.c_in, cfg), "the model's input (the scaled latents)", i, total,
                            guidance)
            v = _check_step(np.ascontiguousarray(model(i, u), dtype=np.float32), "the model's output", i, total,
                            guidance)
            noise = generator.randn(sampler.shape) if step.draws_noise else None
            sampler.step(v, cfg, guidance, noise, **step.coefficients())
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(i, total, sampler.latents)
    finally:
        if bar is not None:
            bar.close()
    return sampler.latents


def _check_step(a, what: str, i: int, total: int, guidance) -> np.ndarray:
    """`a`, or a ValueError saying the sampling overflowed at this step and which arguments scale it (instead of the
    C sampler's or the UNet's complaint about its internal arrays). Host (NumPy) arrays only: latents kept on a
    device are not copied back for the check (the C sampler still refuses non-finite values there)."""
    bad = count_not_finite(a) if isinstance(a, np.ndarray) else 0
    if bad:
        scale = "" if guidance is None else f"the guidance scale (up to {float(np.max(np.abs(guidance))):g}) or "
        raise ValueError(f"denoising step {i + 1} of {total}: the sampling overflowed float32 ({bad} NaN/Inf "
                         f"value(s) of {a.size} in {what}): {scale}the given latents are too large, or the weights "
                         f"are corrupt; nothing was produced")
    return a


def new_sampler(shape, device: str = "cpu", cond_channels: int | None = None):
    """An svdc._C.Sampler for latents `shape` (B, F, C, h, w) on `device` (the UNet's native device, so the
    latents live where the model runs); cond_channels None = C (concat conditioning), 0 = none."""
    b, f, c, h, w = (int(d) for d in shape)
    return _C.Sampler(b, f, c, h, w, c if cond_channels is None else int(cond_channels), device=device)


def native_device_of(model) -> str:
    """The native device string of an svdc model ("cpu", "emu:0", "cuda:0"); "cpu" for stand-ins without one."""
    native = getattr(model, "_native", None)
    return str(getattr(native, "device", "cpu") or "cpu")


# --- the staged pipeline ---------------------------------------------------------------------------------------
class VideoDiffusionPipeline:
    """An image-conditioned latent video diffusion run with an SVD-family UNet (noisy latents ⊕ the image latent on
    the channels, the CLIP image embedding as cross-attention context, v-prediction EDM sampling with per-frame
    guidance). Subclasses parse their arguments in __call__ and implement added_ids and guidance; the other
    stages are shared and may be overridden."""

    progress_desc = "denoising"

    def __init__(self, unet, vae, image_encoder, release_stages: bool = True):
        self.unet = check_component(unet, "unet")
        self.vae = check_component(vae, "vae", ("encode", "decode"))
        self.image_encoder = check_component(image_encoder, "image_encoder", ("__call__", "preprocess"))
        self.vae_scale_factor = int(getattr(vae, "down_factor", 8))
        if not isinstance(release_stages, bool):
            raise TypeError(f"release_stages: expected True or False, got {release_stages!r}")
        self.release_stages = release_stages

    # ---- memory between stages -----------------------------------------------------------------------------------
    def release(self, component, keep_packed: bool = False) -> None:
        """With release_stages, gives back what `component` holds beyond its weight block until its next use (its
        release_memory: the arena, its borrowed weights' resident pages, its packed weights unless keep_packed); so
        the process holds about one stage's model at a time instead of all three. CPU models only: a device model
        (CUDA, and the emulated device that stands in for one in tests) keeps its arena, so its calls do not
        allocate device memory again; components without release_memory (stand-ins) are left alone."""
        if (self.release_stages and hasattr(component, "release_memory")
                and native_device_of(component) == "cpu"):
            component.release_memory(keep_packed=keep_packed)

    def _decode_outweighs_unet(self, latents: np.ndarray, chunk_size: int | None) -> bool:
        """Whether the decode stage (the VAE's weights and the planned arena of its largest call) needs more memory
        than the UNet's weights: then the UNet's packed weights are released for the decode too (and packed again
        on the next call); otherwise keeping them costs no peak memory and saves the packing."""
        plan = getattr(self.vae, "planned_decode_bytes", None)
        weight_bytes = getattr(self.unet, "weight_bytes", None)
        if plan is None or weight_bytes is None:
            return True
        b, f, c, h, w = latents.shape
        rows = f if chunk_size is None else min(int(chunk_size), b * f)
        z = np.zeros((rows, c, h, w), np.float32)  # the shape of one decode call; the plan reads no values
        need = int(plan(z, rows if chunk_size is not None else f)) + int(getattr(self.vae, "weight_bytes", 0))
        return need > int(weight_bytes)

    @property
    def latent_channels(self) -> int:
        return int(getattr(self.unet, "in_channels", 8)) // 2  # noisy latents | concat condition

    # ---- stages ------------------------------------------------------------------------------------------------
    def encode_condition(self, clip_images, pixels: np.ndarray, cfg: bool):
        """(embeds (R, 1, D), cond (B, C, h, w)): the CLIP image embedding of `clip_images` (one image or a list,
        as image_encoder.preprocess takes them) with zero uncond rows first when cfg (R = 2B, else B), and the VAE
        posterior mean (unscaled) of `pixels` (B, 3, H, W) in [-1, 1]."""
        # The VAE first: it is then used again at the decode, so the image encoder is the one released here.
        cond = np.ascontiguousarray(self.vae.encode(pixels), dtype=np.float32)  # (B, C, h, w)
        embeds = np.asarray(self.image_encoder(self.image_encoder.preprocess(clip_images)), dtype=np.float32)
        self.release(self.image_encoder)
        self.release(self.vae)  # not needed until the decode
        embeds = embeds[:, None, :]  # (B, D) -> (B, 1, D)
        if cfg:
            embeds = np.concatenate([np.zeros_like(embeds), embeds])
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
        """Euler v-prediction sampling over `schedule` (a schedules.EulerSchedule) from x = x0·init_noise_sigma with
        the concat condition `cond`; CFG (uncond rows first) when `guidance` is given. -> latents (B, F, C, h, w)."""
        cfg = guidance is not None
        plan = schedule.plan("v_prediction")
        sampler = new_sampler(latent_shape, native_device_of(self.unet))
        sampler.set_latents(x0, float(plan.init_noise_sigma))
        sampler.set_cond(cond)
        rows = (2 if cfg else 1) * int(latent_shape[0])

        def model(i, u):
            t = np.full((rows,), plan.timesteps[i], dtype=np.float32)
            return self.unet(u, t, embeds, ids)

        return denoise(sampler, plan, model, cfg=cfg, guidance=guidance, generator=generator, callback=callback,
                       progress=progress, desc=self.progress_desc)

    def decode(self, latents: np.ndarray, chunk_size: int | None = None) -> np.ndarray:
        """latents (B, F, C, h, w) -> frames (B·F, 3, H, W) in about [-1, 1]: divided by the VAE scaling factor and
        decoded in chunks of `chunk_size` rows of the flattened batch (None: every video whole)."""
        b, f, c, h, w = latents.shape
        if self.release_stages:
            self.release(self.unet, keep_packed=not self._decode_outweighs_unet(latents, chunk_size))
        z = latents.reshape(b * f, c, h, w) * np.float32(1.0 / self.vae.scaling_factor)  # (B, F, ...) -> (B·F, ...)
        return np.asarray(self.vae.decode(np.ascontiguousarray(z, dtype=np.float32), num_frames=f,
                                          chunk_size=chunk_size), dtype=np.float32)
