"""svdc.TextToImage: Stable Diffusion 2.x text-to-image, step for step diffusers' StableDiffusionPipeline (CLIP text
embedding, classifier-free guidance, a diffusers scheduler over an SD UNet, AutoencoderKL decode). The maths lives in
the components and the C sampler; this file orchestrates."""
from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from .. import hub, schedules
from ..image import to_uint8
from . import base

# SD 2.x's scheduler settings (sgm's DiscreteSchedule: scaled_linear betas 0.00085..0.012 over 1000 steps).
SD2_SCHEDULER_CONFIG = {"_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
                        "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "steps_offset": 1,
                        "timestep_spacing": "leading", "prediction_type": "epsilon"}

# The components a cached hub snapshot of an SD pipeline must hold (config.json in each).
SD_COMPONENTS = ("unet", "vae", "text_encoder")

# diffusers' __call__ defaults.
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 7.5


def _prompt_list(prompt, name: str) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise TypeError(f"{name}: expected a str or a non-empty list of str, got {type(prompt).__name__} {prompt!r}")


class TextToImage:
    """Text-to-image with SD 2.x weights. Build with from_pretrained(path) or from_components(...), then
    ``image = pipe("a red fox in snow", seed=0)`` -> (H, W, 3) uint8 (a list for a list of prompts)."""

    progress_desc = "txt2img"

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler_config: dict | None = None,
                 text_hidden_layer: int = -1):
        if not getattr(unet, "is_2d", False):
            raise ValueError("unet: expected a UNet2DConditionModel (SD 2.x) svdc.UNet, got a spatio-temporal UNet")
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        # -1: a diffusers text_encoder/ (already cut to SD 2.x's penultimate layer); -2: a single file's full tower
        self.text_hidden_layer = int(text_hidden_layer)
        self.scheduler_config = dict(scheduler_config or {})
        self.scheduler = schedules.scheduler_from_config(self.scheduler_config)  # refuse unsupported ones now
        self.vae_scale_factor = int(getattr(vae, "down_factor", 8))

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, device: str = "auto", dtype=None, **single_file) -> "TextToImage":
        """path: a diffusers pipeline folder (model_index.json + unet/ vae/ text_encoder/ tokenizer/ scheduler/), a
        hub id "org/name" in the local Hugging Face cache, or a Stability single file (see from_single_file, which
        takes the keyword arguments `single_file`)."""
        from .. import CheckpointError, TextEncoder, UNet, VAE
        from ..models._loading import read_json
        from ..runtime import resolve_device
        from ..tokenizer import CLIPTokenizer

        p = os.fspath(path)
        if os.path.isfile(p):
            return cls.from_single_file(p, device=device, dtype=dtype, **single_file)
        if single_file:
            raise TypeError(f"from_pretrained: {sorted(single_file)} apply to single files only")
        if hub.is_hub_id(p):
            p = hub.resolve_snapshot(p, components=SD_COMPONENTS)
        if not os.path.isdir(p) or not os.path.isfile(os.path.join(p, "model_index.json")):
            raise CheckpointError(f"{p}: not a diffusers pipeline folder (no model_index.json); expected "
                                  "model_index.json with unet/, vae/, text_encoder/, tokenizer/ and scheduler/")
        sched = os.path.join(p, "scheduler", "scheduler_config.json")
        scheduler_config = read_json(sched, "the scheduler config") if os.path.isfile(sched) else None
        if scheduler_config is not None:
            try:
                schedules.scheduler_from_config(scheduler_config, sched)
            except ValueError as e:
                raise CheckpointError(str(e)) from None
        tokenizer = CLIPTokenizer.from_pretrained(p, subfolder="tokenizer")  # cheap checks before the weights
        device = resolve_device(device)
        unet = UNet.from_pretrained(p, device=device, dtype=dtype)
        vae = VAE.from_pretrained(p, device=device, dtype=dtype)
        text_encoder = TextEncoder.from_pretrained(p, device="cpu", dtype=dtype)
        return cls(unet, vae, text_encoder, tokenizer, scheduler_config=scheduler_config)

    @classmethod
    def from_single_file(cls, path, tokenizer=None, scheduler_config: dict | None = None,
                         configs: dict | None = None, device: str = "auto", dtype=None) -> "TextToImage":
        """path: an SD 2.x Stability single file (model.diffusion_model.*, first_stage_model.*,
        cond_stage_model.model.*: the whole OpenCLIP text tower, conditioned on its penultimate layer + ln_final).

        tokenizer: required, since single files carry none: a tokenizer/ folder, a pipeline folder holding one, the
        open_clip BPE file (bpe_simple_vocab_16e6.txt.gz), or a loaded svdc.CLIPTokenizer.
        scheduler_config: a diffusers scheduler config; by default SD 2.x's Euler settings with the prediction type
        from the file name ("768" -> v_prediction as v2-1_768-ema-pruned; else epsilon; "turbo" -> trailing
        spacing, as SD-Turbo's one-step recipe). configs: {"unet", "vae", "text_encoder"} configs replacing the
        full-size SD 2.x presets (for files of other sizes)."""
        from .. import CheckpointError, TextEncoder, UNet, VAE
        from ..runtime import resolve_device
        from ..tokenizer import CLIPTokenizer

        p = os.fspath(path)
        if not os.path.isfile(p):
            raise CheckpointError(f"{p}: no such file (expected an SD 2.x Stability .safetensors file)")
        configs = dict(configs or {})
        unknown = sorted(set(configs) - {"unet", "vae", "text_encoder"})
        if unknown:
            raise ValueError(f"configs: unknown component(s) {unknown}; expected keys among unet, vae, text_encoder")
        if tokenizer is None:
            raise ValueError("tokenizer: a Stability single file carries no tokenizer; pass tokenizer= a tokenizer/ "
                             "folder, the open_clip BPE file (bpe_simple_vocab_16e6.txt.gz) or an svdc.CLIPTokenizer")
        if not isinstance(tokenizer, CLIPTokenizer):
            t = os.fspath(tokenizer)
            tokenizer = CLIPTokenizer.from_pretrained(t) if os.path.isdir(t) else CLIPTokenizer.from_bpe_file(t)
        if scheduler_config is None:
            name = os.path.basename(p).lower()
            scheduler_config = {**SD2_SCHEDULER_CONFIG,
                                "prediction_type": "v_prediction" if "768" in name else "epsilon",
                                "timestep_spacing": "trailing" if "turbo" in name else "leading"}
        schedules.scheduler_from_config(scheduler_config, "scheduler_config")  # refuse before the weights load
        device = resolve_device(device)
        unet = UNet.from_pretrained(p, device=device, dtype=dtype, config=configs.get("unet"))
        vae = VAE.from_pretrained(p, device=device, dtype=dtype, config=configs.get("vae"))
        text_encoder = TextEncoder.from_pretrained(p, device="cpu", dtype=dtype, config=configs.get("text_encoder"))
        return cls(unet, vae, text_encoder, tokenizer, scheduler_config=scheduler_config, text_hidden_layer=-2)

    @classmethod
    def from_components(cls, unet, vae, text_encoder, tokenizer, scheduler_config: dict | None = None,
                        text_hidden_layer: int = -1):
        """text_hidden_layer: -1 for a diffusers text_encoder/ (already SD 2.x's penultimate layer), -2 for a full
        OpenCLIP tower (a single file's), always with the final layer norm."""
        return cls(unet, vae, text_encoder, tokenizer, scheduler_config=scheduler_config,
                   text_hidden_layer=text_hidden_layer)

    def __repr__(self) -> str:
        return (f"svdc.TextToImage(scheduler={type(self.scheduler).__name__}, "
                f"prediction_type={self.scheduler.prediction_type!r})")

    @property
    def default_size(self) -> tuple[int, int]:
        """(height, width): sample_size·8 squared as diffusers, except 1024×576 (SVD's size, the same pixel count)
        for 768-v models."""
        size = int((getattr(self.unet, "config", {}) or {}).get("sample_size") or 64) * self.vae_scale_factor
        if self.scheduler.prediction_type == "v_prediction" and size == 768:
            return 576, 1024
        return size, size

    # ---- stages ------------------------------------------------------------------------------------------------
    def encode_prompt(self, prompts: list[str], negatives: list[str] | None) -> np.ndarray:
        """(R, 77, D) text embeddings: [negatives; prompts] (uncond rows first) when `negatives` is given (CFG),
        else the prompts alone. Over-long prompts are truncated with a warning, as diffusers does."""
        rows = (negatives or []) + prompts
        ids = self.tokenizer(rows).input_ids  # (R, 77)
        out = self.text_encoder(ids, hidden_layer=self.text_hidden_layer, final_layer_norm=True)
        return np.ascontiguousarray(out["hidden_states"], dtype=np.float32)

    def sample(self, plan, x0: np.ndarray, embeds: np.ndarray, guidance_scale: float | None, generator,
               callback=None, progress: bool = True) -> np.ndarray:
        """Sampling over `plan` (a schedules.SamplingPlan) from x = x0·init_noise_sigma, CFG (uncond rows first)
        when guidance_scale is given. x0 (B, C, h, w) -> latents (B, C, h, w)."""
        b, c, h, w = x0.shape
        cfg = guidance_scale is not None
        # the image batch as B one-frame videos: (B, C, h, w) <-> (B, 1, C, h, w)
        sampler = base.new_sampler((b, 1, c, h, w), base.native_device_of(self.unet), cond_channels=0)
        sampler.set_latents(x0[:, None], float(plan.init_noise_sigma))
        rows = 2 * b if cfg else b
        guidance = np.array([guidance_scale], dtype=np.float32) if cfg else None

        def model(i, u):
            t = np.full((rows,), plan.timesteps[i], dtype=np.float32)
            out = self.unet(u[:, 0], t, embeds)  # (R, 1, C, h, w) -> (R, C, h, w): one image per row
            return np.asarray(out)[:, None]

        def on_step(i, total, latents):
            callback(i, total, latents[:, 0])

        final = base.denoise(sampler, plan, model, cfg=cfg, guidance=guidance, generator=generator,
                             callback=on_step if callback is not None else None, progress=progress,
                             desc=self.progress_desc)
        return final[:, 0]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents (B, C, h, w) -> uint8 (B, H, W, 3): vae.decode(latents / scaling_factor), (x/2 + 0.5)·255
        rounded."""
        z = latents * np.float32(1.0 / self.vae.scaling_factor)
        pixels = np.asarray(self.vae.decode(np.ascontiguousarray(z, dtype=np.float32)), dtype=np.float32)
        return to_uint8(pixels)

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, prompt, negative_prompt=None, num_inference_steps: int = DEFAULT_STEPS,
                 guidance_scale: float = DEFAULT_GUIDANCE, height: int | None = None, width: int | None = None,
                 seed=None, latents=None, callback: Optional[Callable] = None, progress: bool = True):
        """Generate an image for `prompt` (a str, or a list of str for a batch).

        Follows diffusers' StableDiffusionPipeline: prompts (and negative prompts, "" by default) tokenized to 77
        and encoded by the CLIP text encoder; CFG with uncond rows first when guidance_scale > 1; latents
        N(0, I)·init_noise_sigma of shape (B, 4, height/8, width/8); the configured scheduler; decode; uint8.
        `seed` (int) gives the same noise as diffusers with torch.Generator("cpu").manual_seed(seed); `latents`
        (B, 4, height/8, width/8) replaces the noise (multiplied by init_noise_sigma, as in diffusers).
        `callback(step, total, latents)` runs after every step. Returns (H, W, 3) uint8, a list for a list."""
        batched = not isinstance(prompt, str)
        prompts = _prompt_list(prompt, "prompt")
        negatives = None
        if negative_prompt is not None:
            negatives = _prompt_list(negative_prompt, "negative_prompt")
            if isinstance(negative_prompt, str):
                negatives = negatives * len(prompts)
            elif len(negatives) != len(prompts):
                raise ValueError(f"negative_prompt: expected {len(prompts)} prompts (one per prompt), got "
                                 f"{len(negatives)}")
        steps = base.check_int("num_inference_steps", num_inference_steps, 1)
        scale = base.check_number("guidance_scale", guidance_scale, 0.0)
        dh, dw = self.default_size
        height = base.check_multiple("height", dh if height is None else height, self.vae_scale_factor)
        width = base.check_multiple("width", dw if width is None else width, self.vae_scale_factor)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable (step, total, latents), got {type(callback).__name__}")
        b = len(prompts)
        shape = (b, int(self.unet.in_channels), height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is not None:
            latents = np.asarray(latents)
            if latents.shape != shape:
                raise ValueError(f"latents: expected shape {shape} (B, C, height/8, width/8), got {latents.shape}")
            latents = np.ascontiguousarray(latents, dtype=np.float32)
            if not np.all(np.isfinite(latents)):
                raise ValueError("latents: contains NaN or Inf")
        plan = self.scheduler.plan(steps)
        generator = base.make_generator(seed)
        cfg = scale > 1.0  # diffusers' do_classifier_free_guidance

        embeds = self.encode_prompt(prompts, (negatives or [""] * b) if cfg else None)
        x0 = generator.randn(shape) if latents is None else latents
        final = self.sample(plan, x0, embeds, scale if cfg else None, generator, callback, progress)
        images = self.decode(final)
        return list(images) if batched else images[0]
