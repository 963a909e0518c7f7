"""svdc.TextToVideo: prompt -> image (svdc.TextToImage, an SD 2.x model) -> video (svdc.ImageToVideo, SVD) in one
call, as diffusers' StableDiffusionPipeline -> PIL image -> StableVideoDiffusionPipeline would chain them. The two
stages' seeds derive reproducibly from one seed; stage 1 is released before stage 2 loads unless asked to keep it."""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .._validate import check_path
from ..video import Video
from . import base


def stage_seeds(seed: int) -> tuple[int, int]:
    """(image seed, video seed) for one seed: the first two 63-bit words of numpy's SeedSequence(seed), so each
    stage gets its own stream and the pair is the same on every machine."""
    words = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint64)
    return int(words[0] >> np.uint64(1)), int(words[1] >> np.uint64(1))


def check_video_arguments(num_frames, video_num_inference_steps, fps, motion_bucket_id, noise_aug_strength,
                          min_guidance_scale, max_guidance_scale, decode_chunk_size) -> None:
    """Stage 2's arguments, checked under the names TextToVideo takes them before stage 1 spends its time (stage 2
    checks them again with its preset's rules, e.g. fps > 0 unless sgm)."""
    if num_frames is not None:
        base.check_int("num_frames", num_frames, 1)
    base.check_int("video_num_inference_steps", video_num_inference_steps, 1)
    base.check_number("fps", fps, 0.0)
    base.check_number("motion_bucket_id", motion_bucket_id, 0.0)
    base.check_number("noise_aug_strength", noise_aug_strength, 0.0)
    if base.check_number("min_guidance_scale", min_guidance_scale) > base.check_number("max_guidance_scale",
                                                                                       max_guidance_scale):
        raise ValueError(f"min_guidance_scale ({min_guidance_scale:g}) must be <= max_guidance_scale "
                         f"({max_guidance_scale:g})")
    if decode_chunk_size is not None:
        base.check_int("decode_chunk_size", decode_chunk_size, 1)


@dataclass
class TextToVideoOutput:
    """What TextToVideo returns: the video(s), the intermediate image(s) (H, W, 3) uint8, and the two stages'
    seeds (pass image_seed to TextToImage and video_seed to ImageToVideo to redo a stage alone)."""

    video: Video | list[Video]
    image: np.ndarray | list[np.ndarray]
    image_seed: int
    video_seed: int


class TextToVideo:
    """Text-to-video: ``out = pipe("a red fox running in snow", seed=0)``; out.video (svdc.Video), out.image.

    Build with from_pretrained(image_model=..., video_model=...) (each stage loaded when needed; with
    keep_image_model=False, the default, only one stage is held at a time) or from_components(text_to_image,
    image_to_video) (both held by the caller)."""

    def __init__(self, text_to_image=None, image_to_video=None, *, image_model=None, video_model=None,
                 device: str = "auto", dtype=None, keep_image_model: bool = False):
        if (text_to_image is None) == (image_model is None):
            raise ValueError("TextToVideo: give either text_to_image (a loaded svdc.TextToImage) or image_model (a "
                             "path), not both and not neither")
        if (image_to_video is None) == (video_model is None):
            raise ValueError("TextToVideo: give either image_to_video (a loaded svdc.ImageToVideo) or video_model "
                             "(a path), not both and not neither")
        from .image_to_video import ImageToVideo
        from .text_to_image import TextToImage

        for name, value, kind in (("text_to_image", text_to_image, TextToImage),
                                  ("image_to_video", image_to_video, ImageToVideo)):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name}: expected a loaded svdc.{kind.__name__}, got {type(value).__name__}")
        self.image_pipeline = text_to_image
        self.video_pipeline = image_to_video
        self._image_model = None if image_model is None else os.fspath(image_model)
        self._video_model = None if video_model is None else os.fspath(video_model)
        self._device, self._dtype = device, dtype
        self.keep_image_model = bool(keep_image_model)

    @classmethod
    def from_pretrained(cls, image_model, video_model, device: str = "auto", dtype=None,
                        keep_image_model: bool = False) -> "TextToVideo":
        """image_model: an SD 2.x diffusers pipeline folder (TextToImage.from_pretrained); video_model: an SVD
        folder or single file (ImageToVideo.from_pretrained). Both are checked to exist now; the weights load on
        the first call."""
        from .. import CheckpointError
        from .. import hub

        for name, p in (("image_model", image_model), ("video_model", video_model)):
            p = check_path(p, name)
            if not hub.is_hub_id(p) and not os.path.exists(p):
                raise CheckpointError(f"{name}: {p}: no such file or folder")
        return cls(image_model=image_model, video_model=video_model, device=device, dtype=dtype,
                   keep_image_model=keep_image_model)

    @classmethod
    def from_components(cls, text_to_image, image_to_video) -> "TextToVideo":
        return cls(text_to_image, image_to_video)

    def __repr__(self) -> str:
        return f"svdc.TextToVideo(keep_image_model={self.keep_image_model})"

    # ---- stage loading ---------------------------------------------------------------------------------------
    def _release(self, attr: str) -> None:
        setattr(self, attr, None)
        gc.collect()  # the C models free their weights when the Python objects go

    def _image_stage(self):
        if self.image_pipeline is None:
            from .text_to_image import TextToImage

            if not self.keep_image_model and self._video_model is not None:
                self._release("video_pipeline")  # one stage in memory at a time
            self.image_pipeline = TextToImage.from_pretrained(self._image_model, device=self._device,
                                                              dtype=self._dtype)
        return self.image_pipeline

    def _video_stage(self):
        if not self.keep_image_model and self._image_model is not None:
            self._release("image_pipeline")  # stage 1 goes before stage 2 loads
        if self.video_pipeline is None:
            from .image_to_video import ImageToVideo

            self.video_pipeline = ImageToVideo.from_pretrained(self._video_model, device=self._device,
                                                               dtype=self._dtype)
        return self.video_pipeline

    # ---- the call ----------------------------------------------------------------------------------------------
    def __call__(self, prompt, negative_prompt=None, seed=None, height: int = 576, width: int = 1024,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, num_frames: int | None = None,
                 video_num_inference_steps: int = 25, fps: float = 7, motion_bucket_id: float = 127,
                 noise_aug_strength: float = 0.02, min_guidance_scale: float = 1.0,
                 max_guidance_scale: float = 3.0, decode_chunk_size: int | None = None,
                 callback: Optional[Callable] = None, progress: bool = True) -> TextToVideoOutput:
        """Generate a video for `prompt` (a str, or a list for a batch).

        Stage 1 (TextToImage): prompt, negative_prompt, num_inference_steps, guidance_scale at height×width
        (default 1024×576, SVD's size, so no resize happens between the stages). Stage 2 (ImageToVideo): the uint8
        image with num_frames, video_num_inference_steps, fps, motion_bucket_id, noise_aug_strength,
        min/max_guidance_scale, decode_chunk_size. `seed` (int; None = random) gives both stages' seeds through
        stage_seeds. callback(stage, step, total, latents), stage "image" or "video", runs after every step."""
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") >> 1
        seed = base.check_int("seed", seed, 0)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable (stage, step, total, latents), got "
                            f"{type(callback).__name__}")
        check_video_arguments(num_frames, video_num_inference_steps, fps, motion_bucket_id, noise_aug_strength,
                              min_guidance_scale, max_guidance_scale, decode_chunk_size)
        image_seed, video_seed = stage_seeds(seed)

        def staged(stage):
            return None if callback is None else (lambda i, n, x: callback(stage, i, n, x))

        images = self._image_stage()(prompt, negative_prompt=negative_prompt,
                                     num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                     height=height, width=width, seed=image_seed, callback=staged("image"),
                                     progress=progress)
        video = self._video_stage()(images, num_frames=num_frames, num_inference_steps=video_num_inference_steps,
                                    fps=fps, motion_bucket_id=motion_bucket_id,
                                    noise_aug_strength=noise_aug_strength, min_guidance_scale=min_guidance_scale,
                                    max_guidance_scale=max_guidance_scale, decode_chunk_size=decode_chunk_size,
                                    seed=video_seed, height=height, width=width, callback=staged("video"),
                                    progress=progress)
        return TextToVideoOutput(video=video, image=images, image_seed=image_seed, video_seed=video_seed)
