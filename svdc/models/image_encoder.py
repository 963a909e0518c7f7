"""svdc.ImageEncoder: CLIPVisionModelWithProjection semantics (SVD's OpenCLIP ViT-H/14 image tower + projection) over
svdc._C.ImageEncoder, with loading from diffusers/transformers folders and Stability single files, and the exact SVD
CLIP preprocessing (svdc.image)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .._native import _C
from ..configs.clip import VIT_H_14, normalize_config
from ..image import CLIP_MEAN, CLIP_STD, clip_preprocess, read_clip_normalisation
from ..naming import clip as naming
from ._checks import Float32Weights, as_float32, check_finite, model_device, native_placement
from ._memory import ReleasableMemory
from ._descriptors import instance_or_class_method

__all__ = ["ImageEncoder"]


class ImageEncoder(ReleasableMemory):
    """CLIPVisionModelWithProjection: pixel_values (N, 3, S, S) float32, CLIP-normalised -> image_embeds
    (N, projection_dim), not L2-normalised. `preprocess(image)` produces pixel_values from images exactly as the
    diffusers SVD pipeline does."""

    def __init__(self, native, config: dict, device: str = "cpu", image_mean=CLIP_MEAN, image_std=CLIP_STD):
        self._native = native
        self._config = dict(config)
        self.device = device
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping, weights: Mapping, device: str = "auto", dtype=None,
                    image_mean=CLIP_MEAN, image_std=CLIP_STD) -> "ImageEncoder":
        """config: a CLIPVisionConfig-style dict (transformers keys; missing keys take the class defaults).
        weights: name -> float array under transformers names (float16/float64 converted to float32;
        vision_model.embeddings.position_ids ignored). Missing, unknown or mis-shaped weights raise
        svdc.CheckpointError naming the tensor."""
        dev = model_device(device, dtype, "ImageEncoder")
        cfg = normalize_config(config)
        native = _C.ImageEncoder(cfg, Float32Weights(weights, naming.IGNORED_TRANSFORMERS_KEYS),
                                 **native_placement(dev, dtype, "ImageEncoder"))
        return cls(native, cfg, dev, image_mean, image_std)

    @classmethod
    def from_pretrained(cls, path, device: str = "auto", dtype=None, config: Mapping | None = None,
                        variant: str | None = None) -> "ImageEncoder":
        """path: an image_encoder/ folder (config.json + model.safetensors, as save_pretrained writes it), a
        pipeline folder (its image_encoder/ subfolder; feature_extractor/preprocessor_config.json supplies the
        normalisation when present), or a Stability single file (conditioner.embedders.0.open_clip.model.visual.*).
        A single file is read with the ViT-H/14 preset unless `config` gives another architecture."""
        from . import _loading

        dev = model_device(device, dtype, "ImageEncoder")
        norm = read_clip_normalisation(path) or (CLIP_MEAN, CLIP_STD)
        source = _loading.resolve(path, "image_encoder", variant=variant)
        try:
            if source.kind == "folder":
                cfg = normalize_config(config if config is not None else source.config)
                native = _C.ImageEncoder(cfg, Float32Weights(source.weights, naming.IGNORED_TRANSFORMERS_KEYS),
                                         **native_placement(dev, dtype, "ImageEncoder"))
            else:
                cfg = _single_file_config(source, config)
                from ..weights import LazyWeights

                f = source.file
                loaders = naming.map_single_file(f.keys(), f.get_float32, where=str(source.path))
                native = _C.ImageEncoder(cfg, LazyWeights(loaders), **native_placement(dev, dtype, "ImageEncoder"))
        finally:
            source.close()
        return cls(native, cfg, dev, *norm)

    # ---- inference ----------------------------------------------------------------------------------------------
    def __call__(self, pixel_values) -> np.ndarray:
        """pixel_values (N, num_channels, image_size, image_size) -> image_embeds (N, projection_dim) float32."""
        return self._native(self._check_pixels(pixel_values))

    forward = __call__

    def encode_image(self, image) -> np.ndarray:
        """preprocess + forward: images (PIL / uint8 / [0,1] float arrays) -> image_embeds (N, projection_dim)."""
        return self(self.preprocess(image))

    @instance_or_class_method
    def preprocess(self_or_cls, image) -> np.ndarray:
        """The SVD pipeline's CLIP input: [0,255] -> [-1,1], anti-aliased resize to image_size², (x+1)/2, CLIP
        mean/std (see svdc.image.clip_preprocess). Returns float32 (N, 3, image_size, image_size).
        On an instance it uses the encoder's image_size and the feature extractor's mean/std; called on the class
        (ImageEncoder.preprocess(image)) it uses SVD's defaults: 224 and the OpenAI CLIP constants."""
        if isinstance(self_or_cls, type):
            return clip_preprocess(image, 224, CLIP_MEAN, CLIP_STD)
        cfg = self_or_cls._config
        if cfg["num_channels"] != 3:
            raise ValueError(f"preprocess: the SVD image path makes 3-channel input; this encoder expects "
                             f"{cfg['num_channels']} channels")
        return clip_preprocess(image, cfg["image_size"], self_or_cls.image_mean, self_or_cls.image_std)

    def _check_pixels(self, x) -> np.ndarray:
        c, s = self._config["num_channels"], self._config["image_size"]
        x = as_float32(x, "pixel_values", ndarray_only=True, dtype_error=_C.ShapeError)
        if x.ndim != 4 or x.shape[0] < 1 or x.shape[1:] != (c, s, s):
            raise _C.ShapeError(f"pixel_values: expected shape (N, {c}, {s}, {s}) with N >= 1, got {x.shape}")
        return check_finite(x, "pixel_values")

    # ---- introspection ------------------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """Weight storage dtype, "fp32" | "fp16" | "bf16" (compute is float32 either way)."""
        return self._native.dtype

    @property
    def config(self) -> dict:
        return dict(self._config)

    @property
    def last_peak_bytes(self) -> int:
        """Activation arena high-water mark of the last call, in bytes."""
        return self._native.last_peak_bytes

    @property
    def num_parameters(self) -> int:
        return self._native.num_parameters

    @instance_or_class_method
    def weight_shapes(self_or_cls, config: Mapping | None = None) -> dict:
        """{transformers name: shape} of the declared weight table: ImageEncoder.weight_shapes(config) for a
        CLIPVisionConfig-style dict (no weights needed), encoder.weight_shapes() for this encoder's."""
        if isinstance(self_or_cls, type):
            if config is None:
                raise TypeError("ImageEncoder.weight_shapes(config): config is required when called on the class")
            return _C.ImageEncoder.weight_shapes(normalize_config(config))
        return _C.ImageEncoder.weight_shapes(self_or_cls._config)

    def __repr__(self):
        c = self._config
        return (f"ImageEncoder(hidden_size={c['hidden_size']}, layers={c['num_hidden_layers']}, "
                f"heads={c['num_attention_heads']}, image_size={c['image_size']}, patch_size={c['patch_size']}, "
                f"projection_dim={c['projection_dim']}, device={self.device!r})")


def _single_file_config(source, config) -> dict:
    """The config for a single file: `config` when given, else the ViT-H/14 preset; either must match the shapes
    the file holds (the head count cannot be read from shapes)."""
    f = source.file
    found = naming.single_file_shapes(f.shape_of, f.keys())
    cfg = normalize_config(config if config is not None else VIT_H_14)
    diff = {k: (cfg[k], v) for k, v in found.items() if cfg[k] != v}
    if diff:
        what = ", ".join(f"{k}: config {a} vs file {b}" for k, (a, b) in sorted(diff.items()))
        hint = "" if config is not None else " (the preset is OpenCLIP ViT-H/14; pass config=... for another model)"
        raise _C.CheckpointError(f"{source.path}: the image tower does not match the config: {what}{hint}")
    return cfg
