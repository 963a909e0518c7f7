"""svdc.StableDiffusionPipeline: diffusers' StableDiffusionPipeline names, arguments and output over the native
svdc.TextToImage (its public API only), next to compat.StableVideoDiffusionPipeline and sharing its conventions
(memory switches accepted as no-ops, generator handling, .to() reloading). Differences, stated once:
- generator=None draws, as diffusers does, from torch's global generator when torch is imported and that generator
  is untouched since its last seeding (so torch.manual_seed(s) before the call gives diffusers' noise); otherwise
  from a fresh random seed;
- eta > 0 (DDIM's stochastic variant), prompt_embeds / negative_prompt_embeds, ip_adapter and cross_attention_kwargs
  are refused by name;
- there is no safety checker: nsfw_content_detected is None;
- output_type="np" images are the uint8 images / 255 (diffusers' floats rounded to the nearest level).
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np

from .. import hub, schedules
from . import compat
from .text_to_image import SD_COMPONENTS, TextToImage

__all__ = ["StableDiffusionPipeline", "StableDiffusionPipelineOutput"]


class StableDiffusionPipelineOutput:
    """diffusers' output: ``.images`` (a list of PIL images for "pil", (B, H, W, 3) float for "np", (B, 3, H, W) for
    "pt", the latents (B, C, h, w) for "latent") and ``.nsfw_content_detected`` (None: no safety checker);
    ``out[0]``, ``out["images"]`` and ``out.to_tuple()`` work as on diffusers' BaseOutput."""

    def __init__(self, images, nsfw_content_detected=None):
        self.images = images
        self.nsfw_content_detected = nsfw_content_detected

    def __getitem__(self, key):
        if key in (0, "images"):
            return self.images
        raise KeyError(f"StableDiffusionPipelineOutput has 'images' (index 0), got {key!r}")

    def to_tuple(self) -> tuple:
        return (self.images, self.nsfw_content_detected)

    def __repr__(self) -> str:
        return f"StableDiffusionPipelineOutput(images={type(self.images).__name__})"


def _default_seed():
    """diffusers' generator=None: torch's global generator. Its seed when torch is loaded and the generator is
    untouched since seeding (the noise is then diffusers'); else None (a fresh random seed)."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "default_generator"):
        return None
    seed = int(torch.default_generator.initial_seed())
    fresh = torch.Generator("cpu").manual_seed(seed)
    return seed if bool(torch.equal(fresh.get_state(), torch.default_generator.get_state())) else None


def _scheduler(scheduler):
    """A diffusers-named scheduler: an svdc.schedules one as is; a diffusers object or a config dict (with
    _class_name) through scheduler_from_config, which refuses what svdc does not implement."""
    if isinstance(scheduler, schedules._DiscreteScheduler):
        return scheduler
    if scheduler is None:
        raise TypeError("scheduler: expected a scheduler (svdc's or diffusers') or a scheduler config dict, got None")
    config = dict(getattr(scheduler, "config", scheduler) or {})
    if not isinstance(scheduler, dict):
        config["_class_name"] = type(scheduler).__name__
    return schedules.scheduler_from_config(config, "scheduler")


class StableDiffusionPipeline:
    """diffusers.StableDiffusionPipeline over svdc.TextToImage (see the module docstring for the differences).
    Build with from_pretrained(path or hub id) or from loaded svdc components."""

    _callback_tensor_inputs = ["latents"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, safety_checker=None, feature_extractor=None,
                 image_encoder=None, requires_safety_checker: bool = False):
        """vae / text_encoder / unet: loaded svdc.VAE / svdc.TextEncoder / svdc.UNet (SD 2.x); tokenizer: an
        svdc.CLIPTokenizer; scheduler: an svdc scheduler, a diffusers scheduler or a config dict. The safety
        checker, feature extractor and image encoder are accepted and unused."""
        self._native = TextToImage.from_components(unet, vae, text_encoder, tokenizer)
        self.scheduler = scheduler
        self._source = None  # (path, dtype) when loaded from a path: .to(other device) reloads from there
        self._device = getattr(unet, "device", "cpu")
        self._dtype = None
        self._progress = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, torch_dtype=None, dtype=None,
                        local_files_only: bool | None = None, cache_dir=None, revision: str | None = None,
                        use_safetensors: bool | None = None, device: str = "cpu", safety_checker=None,
                        requires_safety_checker: bool | None = None, **ignored) -> "StableDiffusionPipeline":
        """pretrained_model_name_or_path: a diffusers SD 2.x pipeline folder or a hub id "org/name" in the local
        Hugging Face cache (downloaded only with local_files_only=False). torch_dtype/dtype map to svdc's weight
        storage; a half-precision storage the device does not offer yet loads in fp32 with a warning."""
        if use_safetensors is False:
            raise ValueError("use_safetensors=False: svdc reads only .safetensors weights (pickle files can run code)")
        unknown = sorted(set(ignored) - compat._IGNORED_LOAD_OPTIONS)
        if unknown:
            raise TypeError(f"from_pretrained: unexpected argument(s) {unknown}")
        storage = compat.native_dtype(torch_dtype, dtype)
        path = pretrained_model_name_or_path
        if hub.is_hub_id(path):
            path = hub.resolve_snapshot(path, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only, components=SD_COMPONENTS)
        elif not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"pretrained_model_name_or_path: expected a path or a hub id 'org/name', got "
                            f"{type(path).__name__}")
        native, storage = _load_native(path, device, storage)
        self = cls.__new__(cls)
        self._native, self._device, self._dtype, self._progress = native, str(device), storage, True
        self._source = (os.fspath(path), storage)
        return self

    # ---- diffusers' attributes and switches --------------------------------------------------------------------
    @property
    def scheduler(self):
        return self._native.scheduler

    @scheduler.setter
    def scheduler(self, scheduler) -> None:
        """pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config) works as in diffusers."""
        sched = _scheduler(scheduler)
        self._native.scheduler = sched
        self._native.scheduler_config = {"_class_name": type(sched).__name__, **sched.config}

    unet = property(lambda self: self._native.unet)
    vae = property(lambda self: self._native.vae)
    text_encoder = property(lambda self: self._native.text_encoder)
    tokenizer = property(lambda self: self._native.tokenizer)
    vae_scale_factor = property(lambda self: self._native.vae_scale_factor)
    device = property(lambda self: self._device)
    dtype = property(lambda self: self._dtype or "fp32")
    native = property(lambda self: self._native, doc="The svdc.TextToImage underneath.")

    @property
    def components(self) -> dict:
        return {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder, "tokenizer": self.tokenizer,
                "scheduler": self.scheduler}

    def set_progress_bar_config(self, disable: bool = False, **kwargs) -> None:
        """Only `disable` has an effect (tqdm's other options are accepted)."""
        self._progress = not disable

    def to(self, *args, **kwargs) -> "StableDiffusionPipeline":
        """pipe.to(device) / pipe.to(dtype): the same one is a no-op; another reloads the weights there from the
        path the pipeline came from, keeping the scheduler."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
        if kwargs:
            raise TypeError(f"to: unexpected argument(s) {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str) or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        device = self._device if device is None else compat._device_name(device)
        storage = self._dtype if dtype is None else compat.native_dtype(dtype)
        if device == self._device and (storage or "fp32") == (self._dtype or "fp32"):
            return self
        if self._source is None:
            raise ValueError(f"to({device!r}): this pipeline was built from loaded components; load the components "
                             "on that device (device=...) and build it again")
        scheduler = self.scheduler
        self._native, storage = _load_native(self._source[0], device, storage)
        self.scheduler = scheduler
        self._device, self._dtype = device, storage
        return self

    def __getattr__(self, name):
        if name in compat._NO_OPS:
            return compat._no_op
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"svdc.StableDiffusionPipeline({self._native!r}, device={self._device!r})"

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, prompt=None, height: int | None = None, width: int | None = None,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, negative_prompt=None,
                 num_images_per_prompt: int | None = 1, eta: float = 0.0, generator=None, latents=None,
                 prompt_embeds=None, negative_prompt_embeds=None, output_type: str | None = "pil",
                 return_dict: bool = True, callback_on_step_end: Callable | None = None,
                 callback_on_step_end_tensor_inputs: list[str] = ("latents",), **unsupported):
        """diffusers' StableDiffusionPipeline.__call__; returns StableDiffusionPipelineOutput (or the tuple
        (images, None) with return_dict=False)."""
        from . import base

        for name, value in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if value is not None:
                raise ValueError(f"{name}: precomputed embeddings are not supported by svdc; pass the text prompt")
        if unsupported:
            raise TypeError(f"StableDiffusionPipeline: unsupported argument(s) {sorted(unsupported)}")
        if float(eta) != 0.0:
            raise ValueError(f"eta: svdc implements DDIM with eta = 0 only, got {eta}")
        output_type = "pil" if output_type is None else output_type
        if output_type not in compat.OUTPUT_TYPES:
            raise ValueError(f"output_type: expected one of {compat.OUTPUT_TYPES}, got {output_type!r}")
        tensor_inputs = list(callback_on_step_end_tensor_inputs or [])
        bad = [k for k in tensor_inputs if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback_on_step_end_tensor_inputs: expected names among "
                             f"{self._callback_tensor_inputs}, got {bad}")
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise TypeError(f"callback_on_step_end: expected a callable, got {type(callback_on_step_end).__name__}")
        if prompt is None:
            raise ValueError("prompt: expected a str or a list of str, got None")
        per_prompt = base.check_int("num_images_per_prompt", 1 if num_images_per_prompt is None
                                    else num_images_per_prompt, 1)
        prompts = [prompt] if isinstance(prompt, str) else prompt
        negatives = negative_prompt
        if isinstance(prompts, (list, tuple)) and per_prompt > 1:  # diffusers' order: each prompt n times in a row
            prompts = [p for p in prompts for _ in range(per_prompt)]
            if isinstance(negatives, (list, tuple)):
                negatives = [n for n in negatives for _ in range(per_prompt)]
        default = int((self.unet.config or {}).get("sample_size") or 64) * self.vae_scale_factor  # diffusers'
        height, width = height or default, width or default
        seed = compat.seed_from_generator(generator) if generator is not None else _default_seed()
        steps = base.check_int("num_inference_steps", num_inference_steps, 1)
        timesteps = self.scheduler.plan(steps).timesteps

        def step_callback(i, total, lat):
            if callback_on_step_end is not None:
                returned = callback_on_step_end(self, i, float(timesteps[i]), {k: lat for k in tensor_inputs})
                if isinstance(returned, dict) and "latents" in returned and \
                        not np.array_equal(compat._to_numpy(returned["latents"], "callback latents"), lat):
                    raise ValueError("callback_on_step_end: returned changed latents; svdc's sampler keeps its own "
                                     "state and does not take tensors back from the callback")
            if output_type == "latent" and i == total - 1:
                raise compat._StopBeforeDecode(lat)

        if latents is not None:
            latents = compat._to_numpy(latents, "latents")
        try:
            images = self._native(list(prompts) if not isinstance(prompts, str) else prompts,
                                  negative_prompt=negatives, num_inference_steps=steps,
                                  guidance_scale=guidance_scale, height=height, width=width, seed=seed,
                                  latents=latents, callback=step_callback, progress=self._progress)
            out = _images(images if isinstance(images, list) else [images], output_type)
        except compat._StopBeforeDecode as stop:
            out = compat._maybe_tensor(stop.latents, output_type)
        return StableDiffusionPipelineOutput(out) if return_dict else (out, None)


def _load_native(path, device: str, storage) -> tuple:
    """(TextToImage.from_pretrained, the storage used): torch_dtype's storage keeps the weights in 16 bits in memory
    and computes in fp32 on every device, so the numbers are fp32 math on the rounded weights."""
    from ..runtime import resolve_device

    return TextToImage.from_pretrained(path, device=resolve_device(device), dtype=storage), storage


def _images(images: list, output_type: str):
    """uint8 (H, W, 3) images -> diffusers' images for output_type."""
    if output_type == "pil":
        from PIL import Image

        return [Image.fromarray(im) for im in images]
    stacked = np.stack(images).astype(np.float32) / np.float32(255.0)  # (B, H, W, 3)
    if output_type == "pt":
        return compat._maybe_tensor(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)), "pt")  # (B, 3, H, W)
    return stacked
