"""The diffusers-compatible surface: svdc.StableVideoDiffusionPipeline with diffusers' names, arguments and output
layout, as a thin layer over the native svdc.ImageToVideo (its public API only). Differences, stated once:
- the memory switches (enable_model_cpu_offload, enable_sequential_cpu_offload, enable_vae_slicing,
  enable_attention_slicing, enable_forward_chunking, enable_xformers_memory_efficient_attention and their disable_
  twins) are accepted and do nothing: svdc loads each model once on its device, and decode_chunk_size is the VAE's
  memory switch;
- generator: an int, an svdc.Generator, or a CPU torch.Generator whose seed is read (a torch generator that was
  already used is restarted from its seed, with a warning); the noise is then the same as diffusers';
- num_videos_per_prompt > 1 gives that many videos per image, but not diffusers' noise for them (svdc draws the
  image noise per video);
- output_type="np" frames are the uint8 frames / 255 (diffusers' float frames rounded to the nearest level);
- tensors returned by callback_on_step_end are not fed back into the sampler (a changed "latents" is an error);
- variant selects (and, through the hub, downloads) the weight files; a folder that holds both the full-precision
  and the variant files is read from the full-precision ones.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from .. import hub
from ..random import Generator
from .image_to_video import ImageToVideo

__all__ = ["StableVideoDiffusionPipeline", "StableVideoDiffusionPipelineOutput"]

OUTPUT_TYPES = ("pil", "np", "pt", "latent")
_NO_OPS = ("enable_model_cpu_offload", "enable_sequential_cpu_offload", "enable_vae_slicing", "disable_vae_slicing",
           "enable_vae_tiling", "disable_vae_tiling", "enable_attention_slicing", "disable_attention_slicing",
           "enable_forward_chunking", "disable_forward_chunking", "enable_xformers_memory_efficient_attention",
           "disable_xformers_memory_efficient_attention", "remove_all_hooks", "reset_device_map")


class StableVideoDiffusionPipelineOutput:
    """diffusers' output: ``.frames`` with the batch axis first (a list of lists of PIL images for "pil", an array
    (B, F, H, W, 3) for "np", a tensor (B, F, 3, H, W) for "pt", the latents (B, F, C, h, w) for "latent");
    ``out[0]``, ``out["frames"]`` and ``out.to_tuple()`` work as on diffusers' BaseOutput."""

    def __init__(self, frames):
        self.frames = frames

    def __getitem__(self, key):
        if key in (0, "frames"):
            return self.frames
        raise KeyError(f"StableVideoDiffusionPipelineOutput has only 'frames' (index 0), got {key!r}")

    def to_tuple(self) -> tuple:
        return (self.frames,)

    def keys(self):
        return ["frames"]

    def __repr__(self) -> str:
        return f"StableVideoDiffusionPipelineOutput(frames={type(self.frames).__name__})"


class _StopBeforeDecode(Exception):
    """Raised from the step callback after the last step when output_type="latent", carrying the final latents,
    so the native pipeline ends there and no decode is spent."""

    def __init__(self, latents):
        super().__init__("latents ready")
        self.latents = latents


def native_dtype(torch_dtype=None, dtype=None):
    """torch_dtype / dtype (torch dtypes, NumPy dtypes or names such as "fp16", "float16", "bf16", "auto") -> the
    native "fp32" | "fp16" | "bf16", or None for the default."""
    if torch_dtype is not None and dtype is not None and _dtype_name(torch_dtype, "torch_dtype") != \
            _dtype_name(dtype, "dtype"):
        raise ValueError(f"torch_dtype and dtype disagree: {torch_dtype!r} vs {dtype!r}; pass one of them")
    value, arg = (dtype, "dtype") if dtype is not None else (torch_dtype, "torch_dtype")
    return None if value is None else _dtype_name(value, arg)


def _dtype_name(value, arg: str):
    from ..runtime import dtype_name

    return dtype_name(value, arg)


def seed_from_generator(generator):
    """diffusers' generator argument -> what ImageToVideo takes as seed (None, an int or an svdc.Generator)."""
    if generator is None or isinstance(generator, Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return int(generator)
    if isinstance(generator, (list, tuple)):
        if len(generator) != 1:
            raise ValueError(f"generator: svdc draws all noise from one stream; pass one generator, got a list of "
                             f"{len(generator)}")
        return seed_from_generator(generator[0])
    if type(generator).__module__.startswith("torch") and hasattr(generator, "initial_seed"):
        device = str(getattr(generator, "device", "cpu"))
        if device != "cpu":
            raise ValueError(f"generator: a torch.Generator on {device!r} draws different noise than the CPU one; "
                             "pass torch.Generator('cpu').manual_seed(seed) or an int seed")
        seed = int(generator.initial_seed())
        if not _torch_generator_is_fresh(generator, seed):
            warnings.warn(f"svdc: the torch.Generator was already used; svdc restarts its stream from its seed "
                          f"({seed}), so the noise equals a freshly seeded generator's", RuntimeWarning, stacklevel=3)
        return seed
    raise TypeError(f"generator: expected None, an int, an svdc.Generator or a CPU torch.Generator, got "
                    f"{type(generator).__name__}")


def _torch_generator_is_fresh(generator, seed: int) -> bool:
    import torch

    fresh = torch.Generator("cpu").manual_seed(seed)
    return bool(torch.equal(fresh.get_state(), generator.get_state()))


def _to_numpy(x, arg: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().float().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{arg}: expected a numpy array or a torch tensor, got {type(x).__name__}")
    return x


def _images(image) -> list:
    """diffusers' image argument -> a list of images the native pipeline reads: a PIL image, a path, an array
    (H, W, 3) or (B, H, W, 3) in [0, 1] or uint8, a tensor (B, 3, H, W) / (3, H, W) in [0, 1], or a list of these."""
    if isinstance(image, (list, tuple)):
        if not image:
            raise ValueError("image: expected at least one image, got an empty list")
        return [im for part in image for im in _images(part)]
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # torch: (B, 3, H, W) or (3, H, W) in [0, 1]
        x = _to_numpy(image, "image")
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"image: expected a tensor (B, 3, H, W) or (3, H, W), got shape {tuple(x.shape)}")
        return list(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # (B, 3, H, W) -> B x (H, W, 3)
    if isinstance(image, np.ndarray) and image.ndim == 4:
        return list(image)  # (B, H, W, 3) -> B x (H, W, 3)
    return [image]


def _decoded_images(image) -> list:
    """_images(image), each decoded now so a bad one is named as the user gave it: "image" alone, "image[i]" the
    i-th of a batch (the native pipeline would call a lone image "image[0]")."""
    from ..image import load_image

    images = _images(image)
    return [load_image(im, "image" if len(images) == 1 else f"image[{i}]") for i, im in enumerate(images)]


class StableVideoDiffusionPipeline:
    """diffusers.StableVideoDiffusionPipeline over svdc.ImageToVideo (see the module docstring for the few
    differences). Build with from_pretrained(path or hub id) or from the components."""

    _callback_tensor_inputs = ["latents"]

    def __init__(self, vae, image_encoder, unet, scheduler=None, feature_extractor=None):
        """vae / image_encoder / unet: loaded svdc.VAE / svdc.ImageEncoder / svdc.UNet; scheduler: a scheduler
        config dict or an object with a .config mapping (a diffusers EulerDiscreteScheduler works); the feature
        extractor is accepted and unused (svdc applies SVD's CLIP preprocessing itself)."""
        config = getattr(scheduler, "config", scheduler)
        self._native = ImageToVideo.from_components(unet, vae, image_encoder,
                                                    scheduler_config=dict(config) if config is not None else None)
        self._source = None  # (path, dtype) when loaded from a path: .to(other device) reloads from there
        self._device = getattr(unet, "device", "cpu")
        self._dtype = None
        self._progress = True

    @classmethod
    def from_native(cls, pipe: ImageToVideo, device: str = "cpu", dtype=None) -> "StableVideoDiffusionPipeline":
        """Wrap an existing svdc.ImageToVideo."""
        self = cls.__new__(cls)
        self._native, self._source, self._device, self._dtype, self._progress = pipe, None, device, dtype, True
        return self

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, torch_dtype=None, dtype=None, variant: str | None = None,
                        local_files_only: bool | None = None, cache_dir=None, revision: str | None = None,
                        use_safetensors: bool | None = None, device: str = "cpu", **ignored):
        """pretrained_model_name_or_path: a diffusers pipeline folder, a Stability single file, or a hub id
        "org/name" found in the local Hugging Face cache (downloaded through huggingface_hub only when
        local_files_only=False). torch_dtype/dtype map to svdc's weight storage dtype ("fp32" | "fp16" | "bf16";
        computing is in fp32 on every device). The model loads on the CPU, as in diffusers; .to("cuda") moves it.
        Other diffusers loading options (low_cpu_mem_usage, token, ...) are accepted and ignored."""
        if use_safetensors is False:
            raise ValueError("use_safetensors=False: svdc reads only .safetensors weights (pickle files can run code)")
        if variant is not None and (not isinstance(variant, str) or not variant.isidentifier()):
            raise ValueError(f"variant: expected a name such as 'fp16', got {variant!r}")
        unknown = sorted(set(ignored) - _IGNORED_LOAD_OPTIONS)
        if unknown:
            raise TypeError(f"from_pretrained: unexpected argument(s) {unknown}")
        storage = native_dtype(torch_dtype, dtype)
        path = pretrained_model_name_or_path
        if hub.is_hub_id(path):
            path = hub.resolve_snapshot(path, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only, variant=variant)
        elif not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"pretrained_model_name_or_path: expected a path or a hub id 'org/name', got "
                            f"{type(path).__name__}")
        self = cls.from_native(_load_native(path, device, storage), device=device, dtype=storage)
        self._source = (os.fspath(path), storage)
        return self

    # ---- diffusers' attributes and switches --------------------------------------------------------------------
    @property
    def unet(self):
        return self._native.unet

    @property
    def vae(self):
        return self._native.vae

    @property
    def image_encoder(self):
        return self._native.image_encoder

    @property
    def scheduler_config(self) -> dict:
        return dict(self._native.scheduler_config)

    @property
    def vae_scale_factor(self) -> int:
        return self._native.vae_scale_factor

    @property
    def device(self) -> str:
        return self._device

    @property
    def dtype(self) -> str:
        """The weight storage dtype the models were loaded with ("fp32" | "fp16" | "bf16")."""
        return self._native.unet.dtype

    @property
    def native(self) -> ImageToVideo:
        """The svdc.ImageToVideo underneath (returns svdc.Video objects)."""
        return self._native

    @property
    def components(self) -> dict:
        return {"unet": self.unet, "vae": self.vae, "image_encoder": self.image_encoder}

    def set_progress_bar_config(self, disable: bool = False, **kwargs) -> None:
        """Only `disable` has an effect (tqdm's other options are accepted)."""
        self._progress = not disable

    def to(self, *args, **kwargs) -> "StableVideoDiffusionPipeline":
        """pipe.to(device), pipe.to(dtype), pipe.to(device, dtype): the same device and dtype is a no-op; another
        one reloads the weights there from the path the pipeline came from (svdc models are built for a device)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
        if kwargs:
            raise TypeError(f"to: unexpected argument(s) {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str) or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        device = self._device if device is None else _device_name(device)
        storage = self._dtype if dtype is None else native_dtype(dtype)
        if device == self._device and (storage or "fp32") == (self._dtype or "fp32"):
            return self
        if self._source is None:
            raise ValueError(f"to({device!r}): this pipeline was built from loaded components; load the components "
                             "on that device (device=...) and build it again")
        self._native = _load_native(self._source[0], device, storage)
        self._device, self._dtype = device, storage
        return self

    def __getattr__(self, name):
        if name in _NO_OPS:
            return _no_op
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"svdc.StableVideoDiffusionPipeline({self._native!r}, device={self._device!r})"

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, image, height: int | None = 576, width: int | None = 1024, num_frames: int | None = None,
                 num_inference_steps: int = 25, sigmas=None, min_guidance_scale: float = 1.0,
                 max_guidance_scale: float = 3.0, fps: int = 7, motion_bucket_id: int = 127,
                 noise_aug_strength: float = 0.02, decode_chunk_size: int | None = None,
                 num_videos_per_prompt: int | None = 1, generator=None, latents=None, output_type: str | None = "pil",
                 callback_on_step_end: Callable | None = None,
                 callback_on_step_end_tensor_inputs: list[str] = ("latents",), return_dict: bool = True):
        """diffusers' StableVideoDiffusionPipeline.__call__; returns StableVideoDiffusionPipelineOutput (or the
        tuple (frames,) with return_dict=False) whose frames have the batch axis first."""
        from .. import schedules
        from . import base

        output_type = "pil" if output_type is None else output_type
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type: expected one of {OUTPUT_TYPES}, got {output_type!r}")
        if sigmas is not None:
            raise ValueError("sigmas: custom sigma lists are not supported by svdc; use num_inference_steps")
        per_image = base.check_int("num_videos_per_prompt", 1 if num_videos_per_prompt is None
                                   else num_videos_per_prompt, 1)
        tensor_inputs = list(callback_on_step_end_tensor_inputs or [])
        bad = [k for k in tensor_inputs if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback_on_step_end_tensor_inputs: expected names among "
                             f"{self._callback_tensor_inputs}, got {bad}")
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise TypeError(f"callback_on_step_end: expected a callable, got {type(callback_on_step_end).__name__}")
        default_size = int((self.unet.config or {}).get("sample_size") or 0) * self.vae_scale_factor
        height = height or default_size
        width = width or default_size
        images = [im for im in _decoded_images(image) for _ in range(per_image)]  # each image per_image times, in order
        seed = seed_from_generator(generator)
        steps = base.check_int("num_inference_steps", num_inference_steps, 1)
        timesteps = schedules.euler_schedule(steps, self._native.scheduler_config).timesteps

        def step_callback(i, total, lat):
            if callback_on_step_end is not None:
                given = {k: lat for k in tensor_inputs}
                returned = callback_on_step_end(self, i, float(timesteps[i]), given)
                if isinstance(returned, dict) and "latents" in returned and \
                        not np.array_equal(_to_numpy(returned["latents"], "callback latents"), lat):
                    raise ValueError("callback_on_step_end: returned changed latents; svdc's sampler keeps its own "
                                     "state and does not take tensors back from the callback")
            if output_type == "latent" and i == total - 1:
                raise _StopBeforeDecode(lat)

        if latents is not None:
            latents = _to_numpy(latents, "latents")
        try:
            videos = self._native(images, num_frames=num_frames, num_inference_steps=steps, fps=fps,
                                  motion_bucket_id=motion_bucket_id, noise_aug_strength=noise_aug_strength,
                                  min_guidance_scale=min_guidance_scale, max_guidance_scale=max_guidance_scale,
                                  decode_chunk_size=decode_chunk_size, seed=seed, latents=latents, height=height,
                                  width=width, callback=step_callback, progress=self._progress)
            frames = _frames(videos, output_type)
        except _StopBeforeDecode as stop:
            frames = _maybe_tensor(stop.latents, output_type)
        return StableVideoDiffusionPipelineOutput(frames) if return_dict else (frames,)


_IGNORED_LOAD_OPTIONS = {"low_cpu_mem_usage", "token", "use_auth_token", "force_download", "proxies",
                         "resume_download", "output_loading_info", "device_map", "max_memory", "offload_folder",
                         "offload_state_dict", "mirror", "custom_pipeline", "custom_revision", "subfolder"}


def _no_op(*args, **kwargs) -> None:
    """Accepted for diffusers compatibility; svdc has nothing to switch (see the module docstring)."""


def _device_name(device) -> str:
    return str(device)  # torch.device("cpu") -> "cpu", torch.device("cuda", 0) -> "cuda:0"


def _load_native(path, device: str, storage) -> ImageToVideo:
    """ImageToVideo.from_pretrained with torch_dtype's storage: torch.float16 keeps the weights in fp16 in memory
    (half of fp32's) and computes in fp32 on every device, so the numbers are fp32 math on fp16-rounded weights."""
    from ..runtime import resolve_device

    return ImageToVideo.from_pretrained(path, device=resolve_device(device), dtype=storage)


def _frames(videos, output_type: str):
    """list of svdc.Video (one per batch row) -> diffusers' frames for output_type."""
    if output_type == "pil":
        return [v.to_pil() for v in videos]
    stacked = np.stack([v.frames for v in videos]).astype(np.float32) / np.float32(255.0)  # (B, F, H, W, 3)
    if output_type == "pt":
        return _maybe_tensor(np.ascontiguousarray(stacked.transpose(0, 1, 4, 2, 3)), "pt")  # -> (B, F, 3, H, W)
    return stacked


def _maybe_tensor(array: np.ndarray, output_type: str):
    if output_type != "pt":
        return array
    try:
        import torch
    except ImportError:
        raise ValueError("output_type='pt' needs torch installed; use 'np' or 'pil'") from None
    return torch.from_numpy(array)
