"""svdc.MultiView: SV3D_u / SV3D_p orbits of 21 views around an object from one image, step for step Stability's
scripts/sampling/simple_video_sample.py (generative-models); the result is an svdc.Orbit with cameras for NeRF/3DGS.

What differs from image-to-video (facts and sources in docs/workflows/multiview.md): the object-centred 576×576
input; cond_aug 1e-5 as pixel noise on the VAE input and as a per-frame added id; sv3d_p's per-frame camera ids
(polar, azimuth in radians); EDM sigmas computed in float32 as sgm does; triangle guidance 1 -> max -> 1; the last
frame (the input view) replaced by the input; uint8 by truncation."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Callable, Optional

import numpy as np

from .. import orbits, schedules
from ..image import matte, sv3d_preprocess, white_background_alpha
from . import base

KINDS = {"sv3d_u": [256], "sv3d_p": [256, 512, 512]}  # the UNet's added-id sinusoid widths per model kind
COND_AUG = 1e-5  # sgm forces it for both SV3D models
EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO = 0.002, 700.0, 7.0  # sv3d_{u,p}.yaml EDMDiscretization


def kind_of(id_widths) -> str:
    """"sv3d_u" or "sv3d_p" from a UNet's added-id widths; anything else is not an SV3D model."""
    for kind, widths in KINDS.items():
        if list(id_widths) == widths:
            return kind
    raise ValueError(f"not an SV3D UNet: its added ids have sinusoid widths {list(id_widths)}; sv3d_u has [256] "
                     f"(cond_aug) and sv3d_p [256, 512, 512] (cond_aug, polar, azimuth); SVD models ([256, 256, "
                     f"256]: fps, motion, cond_aug) go to svdc.ImageToVideo")


def edm_sigmas(num_steps: int) -> schedules.EulerSchedule:
    """sgm's EDMDiscretization of the sv3d configs (schedules.sgm_edm_schedule)."""
    base.check_int("num_inference_steps", num_steps, 1)
    return schedules.sgm_edm_schedule(num_steps, EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO)


def _unet_config_for(path: str, configs: dict) -> dict | None:
    """The UNet config to load a diffusers folder with: its config.json, with the SV3D id widths filled in when it
    does not name them (a 1280-wide projection is sv3d_p's [256, 512, 512], not five 256-wide ids)."""
    if "unet" in configs or not os.path.isdir(path):
        return configs.get("unet")
    from ..configs import unet as unet_configs
    from ..models import _loading

    with _loading.resolve(path, "unet") as src:
        cfg = dict(src.config)
    if cfg.get("added_id_widths") is None:
        proj = cfg.get("projection_class_embeddings_input_dim")
        widths = {1280: KINDS["sv3d_p"], 256: KINDS["sv3d_u"]}.get(proj)
        if widths is not None:
            cfg["added_id_widths"] = widths
    kind_of(unet_configs.added_id_widths(unet_configs.from_diffusers(cfg)))  # refuse a non-SV3D folder early
    return cfg


def _check_single_file_kind(path: str) -> None:
    """Refuses a single file whose UNet is not SV3D's before anything heavy is loaded."""
    from .. import CheckpointError
    from ..models.unet import _SGM_ADM_KEY
    from ..weights import SafetensorsFile

    f = SafetensorsFile(path)
    try:
        if _SGM_ADM_KEY not in f:
            raise CheckpointError(f"{path}: no tensor {_SGM_ADM_KEY!r}: not a Stability SV3D checkpoint")
        width = int(f.shape_of(_SGM_ADM_KEY)[1])
    finally:
        f.close()
    if width not in (256, 1280):
        raise CheckpointError(f"{path}: not an SV3D checkpoint (label_emb input width {width}; sv3d_u has 256, "
                              f"sv3d_p 1280); an SVD file (768) goes to svdc.ImageToVideo")


class MultiView(base.VideoDiffusionPipeline):
    """SV3D multi-view synthesis. ``orbit = MultiView.from_pretrained("sv3d_p.safetensors")(rgba_image,
    elevations=10)`` -> svdc.Orbit (21 views, the input view last, cameras, save())."""

    progress_desc = "multiview"

    def __init__(self, unet, vae, image_encoder, size: int = orbits.SIZE):
        super().__init__(unet, vae, image_encoder)
        from ..configs import unet as unet_configs

        self.kind = kind_of(unet_configs.added_id_widths(unet.config))
        self.size = base.check_multiple("size", size, self.vae_scale_factor)

    @classmethod
    def from_pretrained(cls, path, device: str = "auto", dtype=None, configs: Mapping[str, dict] | None = None,
                        size: int = orbits.SIZE) -> "MultiView":
        """path: a Stability single file (sv3d_u.safetensors, sv3d_p.safetensors) or a diffusers-layout pipeline
        folder (model_index.json + unet/ vae/ image_encoder/) whose UNet is SV3D's. The model kind comes from the
        UNet's added-id width (label_emb / projection_class_embeddings_input_dim: 256 = sv3d_u, 1280 = sv3d_p).
        configs: optional component configs as for ImageToVideo.from_pretrained (non-standard sizes)."""
        from .. import CheckpointError, ImageEncoder, UNet, VAE
        from ..configs import unet as unet_configs
        from ..runtime import resolve_device
        from .image_to_video import _check_configs

        configs = _check_configs(configs)
        p = os.fspath(path)
        if not os.path.exists(p):
            raise CheckpointError(f"{p}: no such file or folder (expected sv3d_u/sv3d_p .safetensors or a diffusers "
                                  "pipeline folder)")
        if os.path.isfile(p) and "unet" not in configs:
            _check_single_file_kind(p)
        try:
            unet_config = _unet_config_for(p, configs)
        except ValueError as e:
            raise CheckpointError(f"{p}: {e}") from None
        device = resolve_device(device)
        unet = UNet.from_pretrained(p, device=device, dtype=dtype, config=unet_config)
        try:
            kind_of(unet_configs.added_id_widths(unet.config))
        except ValueError as e:
            raise CheckpointError(f"{p}: {e}") from None
        vae = VAE.from_pretrained(p, device=device, dtype=dtype, config=configs.get("vae"))
        image_encoder = ImageEncoder.from_pretrained(p, device=device, dtype=dtype, config=configs.get("image_encoder"))
        return cls(unet, vae, image_encoder, size=size)

    @classmethod
    def from_components(cls, unet, vae, image_encoder, size: int = orbits.SIZE) -> "MultiView":
        """Assemble from loaded svdc.UNet (an SV3D one), svdc.VAE and svdc.ImageEncoder."""
        return cls(unet, vae, image_encoder, size=size)

    def __repr__(self) -> str:
        return f"svdc.MultiView(kind={self.kind!r}, size={self.size})"

    # ---- stages ------------------------------------------------------------------------------------------------
    def added_ids(self, elevations_deg: np.ndarray, azimuths_deg: np.ndarray, cond_aug: float = COND_AUG,
                  cfg: bool = True) -> np.ndarray:
        """(R, 21, n) float32 per-frame ids, R = 2 with cfg (the uncond row gets the same ids): sv3d_p
        [cond_aug, polar_rad, azimuth_rad], sv3d_u [cond_aug]. The UNet embeds each id with a cos-first sinusoid of
        its width (256 | 512 | 512), so row f of the vector is [E256(cond_aug) | E512(polar_f) | E512(azimuth_f)]."""
        n = len(elevations_deg)
        cols = [np.full(n, cond_aug)]
        if self.kind == "sv3d_p":
            cols += list(orbits.polars_azimuths_rad(elevations_deg, azimuths_deg))
        ids = np.stack(cols, axis=-1).astype(np.float32)[None]  # float64 angles -> float32, as sgm: (1, 21, n)
        return np.concatenate([ids, ids]) if cfg else ids

    def guidance(self, min_guidance_scale: float, max_guidance_scale: float, num_frames: int) -> np.ndarray:
        """(F,) triangle min -> max at the middle frame -> min (sgm TrianglePredictionGuider)."""
        return schedules.triangle_guidance(min_guidance_scale, max_guidance_scale, num_frames)

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, image, elevations=None, azimuths=None, orbit: str = "static", num_inference_steps: int = 50,
                 max_guidance_scale: float = 2.5, min_guidance_scale: float = 1.0, seed=None,
                 image_frame_ratio: float | None = None, matting: Optional[Callable] = None,
                 decode_chunk_size: int | None = None, latents=None, callback: Optional[Callable] = None,
                 progress: bool = True) -> orbits.Orbit:
        """21 views of the object in `image` (a path, PIL image or (H, W, 3|4) array; RGBA with a transparent
        background is the offline default, RGB needs a white background or a `matting` hook rgb -> alpha).

        elevations: the input view's elevation in degrees (default 10), or 21 values; azimuths: 21 values (made
        relative to the last, the input view), orbit: "static" (sgm default), "sine" (±30°), "dynamic" (the sgm
        demo's, drawn from `seed`) or "comfyui". sv3d_u takes no camera input: only a static orbit, whose
        elevation is recorded for export. seed: an int gives the noise of torch.manual_seed(seed) on the CPU
        (sgm's default is 23); image_frame_ratio: the object's share of the frame (None: the script's default);
        latents (1, 21, 4, size/8, size/8) replaces the initial noise. Returns svdc.Orbit."""
        steps = base.check_int("num_inference_steps", num_inference_steps, 1)
        gmin = base.check_number("min_guidance_scale", min_guidance_scale)
        gmax = base.check_number("max_guidance_scale", max_guidance_scale)
        if gmin > gmax:
            raise ValueError(f"min_guidance_scale ({gmin:g}) must be <= max_guidance_scale ({gmax:g})")
        chunk = None if decode_chunk_size is None else base.check_int("decode_chunk_size", decode_chunk_size, 1)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable (step, total, latents), got {type(callback).__name__}")
        if matting is not None and not callable(matting):
            raise TypeError(f"matting: expected a callable rgb (H, W, 3) uint8 -> alpha (H, W), got "
                            f"{type(matting).__name__}")
        if self.kind == "sv3d_u" and (azimuths is not None or orbit != "static" or np.size(elevations) > 1):
            raise ValueError("sv3d_u takes no camera input: only orbit='static' with one elevation (an estimate of "
                             "the input view's, used for the exported cameras); use sv3d_p for other orbits")
        orbit_seed = seed if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
        elev, azim = orbits.build_orbit(orbit, elevations, azimuths, seed=orbit_seed)
        frames = orbits.NUM_FRAMES
        size, h = self.size, self.size // self.vae_scale_factor
        latent_shape = (1, frames, self.latent_channels, h, h)
        if latents is not None:
            latents = np.ascontiguousarray(np.asarray(latents), dtype=np.float32)
            if latents.shape != latent_shape:
                raise ValueError(f"latents: expected shape {latent_shape} (1, 21, C, size/8, size/8), got "
                                 f"{latents.shape}")
            if not np.all(np.isfinite(latents)):
                raise ValueError("latents: contains NaN or Inf")

        rgb, alpha = sv3d_preprocess(image, size, image_frame_ratio, matting)  # cheap checks done: now the work
        generator = base.make_generator(seed)
        cfg = True  # sgm always runs the guider (a scale of 1 at both ends)
        # 1. the clean image in [-1, 1] feeds CLIP; the image plus cond_aug pixel noise (drawn first) feeds the VAE.
        clean = np.ascontiguousarray((rgb.astype(np.float32) / np.float32(255.0) * np.float32(2.0)
                                      - np.float32(1.0)).transpose(2, 0, 1)[None])  # (H, W, 3) -> (1, 3, H, W)
        noisy = clean + np.float32(COND_AUG) * generator.randn(clean.shape)
        embeds, cond = self.encode_condition(rgb, noisy, cfg)
        # 2.-4. per-frame ids, triangle guidance, Euler-EDM over float32 sgm sigmas.
        ids = self.added_ids(elev, azim, COND_AUG, cfg)
        sched = edm_sigmas(steps)
        x0 = generator.randn(latent_shape) if latents is None else latents
        final = self.sample(latent_shape, sched, x0, cond, embeds, ids, self.guidance(gmin, gmax, frames),
                            generator, callback, progress)
        # 5. decode (SV3D's 2-D decoder), (x + 1)/2 clamped, ×255 truncated; the input view replaces the last frame.
        x = self.decode(final, chunk)
        views = (np.clip((x + np.float32(1.0)) / np.float32(2.0), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
        views = np.ascontiguousarray(views.transpose(0, 2, 3, 1))  # (21, 3, H, W) -> (21, H, W, 3)
        views[-1] = rgb
        mattes = np.stack([self._alpha(v, matting) for v in views[:-1]] + [alpha])
        return orbits.Orbit(views, elev, azim, alpha=mattes)

    @staticmethod
    def _alpha(view: np.ndarray, matting) -> np.ndarray:
        """uint8 (H, W) alpha of a generated view: the user's matting hook, else the white-background mask."""
        if matting is None:
            return white_background_alpha(view)
        return matte(matting, view, "a generated view")
