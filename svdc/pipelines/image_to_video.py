"""svdc.ImageToVideo: SVD / SVD-XT image-to-video, step for step diffusers' StableVideoDiffusionPipeline (diffusers
pipelines/stable_video_diffusion/pipeline_stable_video_diffusion.py), with a preset of Stability's defaults
(generative-models scripts/sampling/simple_video_sample.py). The maths lives in the components and the C sampler;
this file orchestrates."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Callable, Optional

import numpy as np

from .. import hub, schedules
from ..image import load_image, to_uint8, vae_image
from .._validate import (check_decoded_video, check_int, check_latents, check_mapping, check_path,
                         check_scheduler_config, check_video_memory)
from ..video import Video
from . import base

PRESETS = (None, "diffusers", "sgm")

# diffusers' __call__ defaults; with preset="sgm" an argument left at its diffusers default takes the sgm value.
_DIFFUSERS_DEFAULTS = dict(num_inference_steps=25, fps=7, min_guidance_scale=1.0, max_guidance_scale=3.0,
                           decode_chunk_size=None)
# sgm scripts/sampling/simple_video_sample.py per model (keyed by the UNet's frame count); fps is fps_id there.
_SGM_DEFAULTS = {
    14: dict(num_inference_steps=25, fps=6, min_guidance_scale=1.0, max_guidance_scale=2.5, decode_chunk_size=14),
    25: dict(num_inference_steps=30, fps=6, min_guidance_scale=1.5, max_guidance_scale=3.0, decode_chunk_size=14),
}

_COMPONENTS = ("unet", "vae", "image_encoder")


def _check_configs(configs) -> dict:
    """from_pretrained's `configs`: None or a mapping with keys among _COMPONENTS and dict values."""
    if configs is None:
        return {}
    if not isinstance(configs, Mapping):
        raise TypeError(f"configs: expected a mapping {{component: config dict}}, got {type(configs).__name__}")
    unknown = sorted(set(configs) - set(_COMPONENTS))
    if unknown:
        raise ValueError(f"configs: unknown component(s) {unknown}; expected keys among {list(_COMPONENTS)}")
    out = {}
    for k, v in configs.items():
        if v is None:
            continue
        if not isinstance(v, Mapping):
            raise TypeError(f"configs[{k!r}]: expected a config dict, got {type(v).__name__}")
        out[k] = dict(v)
    return out


class ImageToVideo(base.VideoDiffusionPipeline):
    """Image-to-video with SVD-family weights. Build with from_pretrained(path) or from_components(...), then
    ``video = pipe(image, ...)`` -> svdc.Video."""

    progress_desc = "img2vid"

    def __init__(self, unet, vae, image_encoder, scheduler_config: dict | None = None, preset: str | None = None,
                 default_num_frames: int | None = None, release_stages: bool = True):
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
        super().__init__(unet, vae, image_encoder, release_stages=release_stages)
        self.scheduler_config = check_mapping(scheduler_config, "scheduler_config")
        schedules.euler_schedule(1, self.scheduler_config)  # refuse an unsupported scheduler now, not mid-call
        self.preset = preset
        cfg = getattr(unet, "config", {}) or {}
        self.default_num_frames = int(cfg.get("num_frames") or 14) if default_num_frames is None else \
            check_int("num_frames", default_num_frames, 1)

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, device: str = "auto", dtype=None, preset: str | None = None,
                        configs: Mapping[str, dict] | None = None, release_stages: bool = True) -> "ImageToVideo":
        """path: a diffusers pipeline folder (model_index.json + unet/ vae/ image_encoder/ [scheduler/]), a
        Stability single file (svd.safetensors, svd_xt.safetensors, svd_xt_1_1.safetensors), or a hub id
        "org/name" in the local Hugging Face cache.

        configs: optional component configs {"unet": ..., "vae": ..., "image_encoder": ...} (any subset), each
        passed to that component's from_pretrained(config=...): it replaces the full-size SVD preset of a single
        file (or a folder's config.json). This is how to load a single file of a non-standard size. A UNet config
        for a single file takes the sgm res-block epsilon unless it says "resnet_eps": "diffusers" (see
        svdc/configs/unet.py); its num_frames, when given, is the default frame count.

        release_stages (default True): each CPU component gives back what it holds beyond its weight block while the
        other stages run (VAE.release_memory etc.: its arena, its resident pages of the checkpoint's mapping, its
        packed weights), so a call's peak memory is about the largest stage's (the UNet's) rather than all three
        models'. The cost is packing the VAE's weights again before the decode (and the UNet's too when the
        decode needs more memory than the UNet's weights) and faulting the file pages back in from the page cache;
        the frames are the same. False keeps every component whole between stages (docs/performance.md)."""
        from .. import CheckpointError, ImageEncoder, UNet, VAE

        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
        configs = _check_configs(configs)
        p = check_path(path, "path")
        if hub.is_hub_id(p):  # "org/name": its snapshot in the local Hugging Face cache (svdc/hub.py)
            p = hub.resolve_snapshot(p)
        if not os.path.exists(p):
            raise CheckpointError(f"{p}: no such file or folder (expected a diffusers pipeline folder or a Stability "
                                  "single .safetensors file)")
        scheduler_config = None
        num_frames = None
        if os.path.isfile(p):
            # svd.safetensors and svd_xt*.safetensors hold the same architecture; only the name says 14 or 25 frames
            num_frames = 25 if "xt" in os.path.basename(p).lower() else 14
            if configs.get("unet", {}).get("num_frames") is not None:
                num_frames = int(configs["unet"]["num_frames"])
        if os.path.isdir(p):
            if not os.path.isfile(os.path.join(p, "model_index.json")):
                raise CheckpointError(f"{p}: not a diffusers pipeline folder (no model_index.json); expected "
                                      "model_index.json with unet/, vae/ and image_encoder/ subfolders")
            sched = os.path.join(p, "scheduler", "scheduler_config.json")
            if os.path.isfile(sched):
                from ..models._loading import read_json

                scheduler_config = check_scheduler_config(read_json(sched, "the scheduler config"), sched)
        from ..runtime import resolve_device

        device = resolve_device(device)  # once, so "auto" warns once rather than per component
        unet = UNet.from_pretrained(p, device=device, dtype=dtype, config=configs.get("unet"))
        vae = VAE.from_pretrained(p, device=device, dtype=dtype, config=configs.get("vae"))
        image_encoder = ImageEncoder.from_pretrained(p, device=device, dtype=dtype, config=configs.get("image_encoder"))
        return cls(unet, vae, image_encoder, scheduler_config=scheduler_config, preset=preset,
                   default_num_frames=num_frames, release_stages=release_stages)

    @classmethod
    def from_components(cls, unet, vae, image_encoder, scheduler_config: dict | None = None,
                        preset: str | None = None, num_frames: int | None = None,
                        release_stages: bool = True) -> "ImageToVideo":
        """Assemble from loaded svdc.UNet, svdc.VAE and svdc.ImageEncoder (or objects with the same API);
        release_stages as in from_pretrained."""
        return cls(unet, vae, image_encoder, scheduler_config=scheduler_config, preset=preset,
                   default_num_frames=num_frames, release_stages=release_stages)

    def __repr__(self) -> str:
        return f"svdc.ImageToVideo(num_frames={self.default_num_frames}, preset={self.preset!r})"

    # ---- stages (the others come from base.VideoDiffusionPipeline) -------------------------------------------
    def added_ids(self, fps_id: float, motion_bucket_id: float, noise_aug_strength: float, batch: int,
                  cfg: bool) -> np.ndarray:
        """(R, 3) per video: [fps_id, motion_bucket_id, noise_aug_strength]; the uncond rows get the same ids."""
        ids = np.tile(np.array([[fps_id, motion_bucket_id, noise_aug_strength]], dtype=np.float32), (batch, 1))
        return np.concatenate([ids, ids]) if cfg else ids

    def guidance(self, min_guidance_scale: float, max_guidance_scale: float, num_frames: int) -> np.ndarray:
        """(F,) linspace(min, max, F), the diffusers and sgm SVD schedule."""
        return schedules.linear_guidance(min_guidance_scale, max_guidance_scale, num_frames)

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, image, num_frames: int | None = None, num_inference_steps: int = 25, fps: float = 7,
                 motion_bucket_id: float = 127, noise_aug_strength: float = 0.02, min_guidance_scale: float = 1.0,
                 max_guidance_scale: float = 3.0, decode_chunk_size: int | None = None, seed=None, latents=None,
                 height: int = 576, width: int = 1024, callback: Optional[Callable] = None,
                 progress: bool = True):
        """Generate a video from `image` (a path, a PIL image, an (H, W, 3) array, or a list of them for a batch).

        Follows diffusers' StableVideoDiffusionPipeline: CLIP embedding of the image; the image LANCZOS-resized to
        width×height, in [-1, 1], plus noise_aug_strength·N(0, I) (drawn first from the seed's generator); its VAE
        latent (unscaled) as the concat condition; added ids [fps − 1, motion_bucket_id, noise_aug_strength];
        Karras/Euler sampling with guidance linear in the frame index from min to max (CFG only when max > 1);
        decode in chunks of decode_chunk_size frames (None: all at once); uint8 frames.
        `seed` (int) gives the same noise as diffusers with torch.Generator("cpu").manual_seed(seed); `latents`
        (B, F, 4, H/8, W/8) replaces the initial noise (it is multiplied by init_noise_sigma, as in diffusers).
        `callback(step, total, latents)` runs after every step. Returns svdc.Video (a list for a list of images).
        With preset="sgm", arguments left at their diffusers defaults take sgm's values (steps, guidance, decode
        chunk 14) and `fps` is sgm's fps_id (default 6) fed to the model directly; frames are truncated to uint8.
        """
        sgm = self.preset == "sgm"
        num_frames = self.default_num_frames if num_frames is None else base.check_int("num_frames", num_frames, 1)
        if sgm:
            chosen = _SGM_DEFAULTS[25 if self.default_num_frames >= 25 else 14]
            given = dict(num_inference_steps=num_inference_steps, fps=fps, min_guidance_scale=min_guidance_scale,
                         max_guidance_scale=max_guidance_scale, decode_chunk_size=decode_chunk_size)
            for k, v in given.items():
                if v == _DIFFUSERS_DEFAULTS[k]:
                    given[k] = chosen[k]
            num_inference_steps, fps = given["num_inference_steps"], given["fps"]
            min_guidance_scale, max_guidance_scale = given["min_guidance_scale"], given["max_guidance_scale"]
            decode_chunk_size = given["decode_chunk_size"]
        steps = base.check_int("num_inference_steps", num_inference_steps, 1)
        fps = base.check_number("fps", fps, 0.0, strict=not sgm)  # fps_id 0 is legal in sgm, fps 0 is not
        motion = base.check_number("motion_bucket_id", motion_bucket_id, 0.0)
        aug = base.check_number("noise_aug_strength", noise_aug_strength, 0.0)
        gmin = base.check_number("min_guidance_scale", min_guidance_scale)
        gmax = base.check_number("max_guidance_scale", max_guidance_scale)
        if gmin > gmax:
            raise ValueError(f"min_guidance_scale ({gmin:g}) must be <= max_guidance_scale ({gmax:g})")
        multiple = 64 if sgm else self.vae_scale_factor
        why = " (the sgm preset rounds to multiples of 64)" if sgm else ""
        height = base.check_multiple("height", height, multiple, why)
        width = base.check_multiple("width", width, multiple, why)
        chunk = num_frames if decode_chunk_size is None else base.check_int("decode_chunk_size", decode_chunk_size, 1)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable (step, total, latents), got {type(callback).__name__}")

        batched = isinstance(image, (list, tuple))
        images = [load_image(im, f"image[{i}]") for i, im in enumerate(image)] if batched else [load_image(image)]
        if not images:
            raise ValueError("image: expected at least one image, got an empty list")
        b = len(images)
        check_video_memory(b, num_frames, height, width, self.vae.config["block_out_channels"][0])
        h, w = height // self.vae_scale_factor, width // self.vae_scale_factor
        latent_shape = (b, num_frames, self.latent_channels, h, w)
        if latents is not None:
            latents = check_latents(latents, latent_shape, "(B, F, C, height/8, width/8)")
        generator = base.make_generator(seed)
        cfg = gmax > 1.0  # diffusers' do_classifier_free_guidance with the scalar max_guidance_scale

        # 1.-4. the noise-augmented image (noise drawn BEFORE the latents), its VAE latent and the CLIP embedding.
        pix = np.concatenate([vae_image(im, height, width) for im in images])  # (B, 3, H, W)
        pix = pix + np.float32(aug) * generator.randn(pix.shape)
        embeds, cond = self.encode_condition(images if b > 1 else images[0], pix, cfg)
        # 5. added ids [fps_id, motion_bucket_id, noise_aug_strength] (sgm feeds fps_id, diffusers fps − 1).
        ids = self.added_ids(fps if sgm else fps - 1, motion, aug, b, cfg)
        # 6.-8. Karras/Euler sampling from x = N(0, I)·init_noise_sigma, guidance linspace(min, max, F).
        sched = schedules.euler_schedule(steps, self.scheduler_config)
        x0 = generator.randn(latent_shape) if latents is None else latents
        final = self.sample(latent_shape, sched, x0, cond, embeds, ids,
                            self.guidance(gmin, gmax, num_frames) if cfg else None, generator, callback, progress)
        # 9. decode in chunks of `chunk` rows, as diffusers' decode_latents.
        frames = self.decode(final, chunk)
        check_decoded_video(frames)
        uint8 = to_uint8(frames, truncate=sgm).reshape(b, num_frames, height, width, 3)
        video_fps = fps + 1 if sgm else fps
        videos = [Video(uint8[i], fps=video_fps) for i in range(b)]
        return videos if batched else videos[0]
