"""CLIP embedding providers for curation scores: the `EmbeddingProvider` protocol (images -> image embeddings, texts
-> text embeddings, both in one joint space) and `ClipProvider`, svdc's own CLIP towers (svdc.ImageEncoder +
svdc.TextEncoder with its projection + svdc.CLIPTokenizer). `ClipProvider.from_pretrained` reads a transformers
`CLIPModel` folder (e.g. OpenAI ViT-L/14, which the public LAION aesthetic heads expect) or a folder with
image_encoder/ + text_encoder/ + tokenizer/; `ClipProvider.from_components` takes the two towers from anywhere svdc
loads them (e.g. OpenCLIP ViT-H/14: SVD's image encoder with SD 2.x's text tower and its projection)."""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np

from ..image import CLIP_MEAN, CLIP_STD

__all__ = ["EmbeddingProvider", "ClipProvider", "center_crop_preprocess", "l2_normalize"]


@runtime_checkable
class EmbeddingProvider(Protocol):
    """A CLIP-like model. `name` identifies it in the manifest (scores from different models must not be mixed);
    `embed_images` takes RGB uint8 frames (N, H, W, 3) and returns (N, dim) float32; `embed_texts` takes N strings
    and returns (N, dim) float32 in the same space. Neither needs to L2-normalise."""

    name: str
    dim: int

    def embed_images(self, frames: np.ndarray) -> np.ndarray: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Rows scaled to unit length (float64 arithmetic); a zero or non-finite row raises."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError(f"{what}: expected finite, non-zero rows to normalise")
    return x / norms


def center_crop_preprocess(frames: np.ndarray, size: int, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """CLIP's own image preprocessing (as transformers' CLIPImageProcessor and open_clip do it): bicubic resize so
    the short side is `size`, centre crop size x size, /255, (x - mean)/std. frames (N, H, W, 3) uint8 ->
    pixel_values (N, 3, size, size) float32. Unlike the SVD conditioning path it keeps the aspect ratio."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise ValueError(f"frames: expected uint8 (N, H, W, 3) with N >= 1, got {frames.dtype} {frames.shape}")
    out = np.empty((frames.shape[0], 3, size, size), np.float32)
    mean = np.asarray(mean, np.float32)[:, None, None]
    std = np.asarray(std, np.float32)[:, None, None]
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        scale = size / min(h, w)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        img = Image.fromarray(frame).resize((new_w, new_h), Image.BICUBIC)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        crop = np.asarray(img.crop((left, top, left + size, top + size)), np.float32) / 255.0
        out[i] = (crop.transpose(2, 0, 1) - mean) / std  # (size, size, 3) -> (3, size, size)
    return out


class ClipProvider:
    """svdc's CLIP towers as an EmbeddingProvider. image_encoder: svdc.ImageEncoder (with its projection);
    text_encoder: svdc.TextEncoder built with a text projection; tokenizer: svdc.CLIPTokenizer. The two
    projections must have the same width (checked here, before any scoring)."""

    def __init__(self, image_encoder, text_encoder, tokenizer, name: str = "clip"):
        image_dim = image_encoder.config["projection_dim"]
        text_dim = text_encoder.config.get("projection_dim", 0)
        if not text_dim:
            raise ValueError("text_encoder: expected a TextEncoder with a text projection (text_projection.weight), "
                             "got one without: its outputs are not in the image embedding space")
        if image_dim != text_dim:
            raise ValueError(f"text_encoder: expected projection_dim {image_dim} (the image encoder's), got {text_dim}")
        self.image_encoder, self.text_encoder, self.tokenizer = image_encoder, text_encoder, tokenizer
        self.name = name
        self.dim = int(image_dim)
        self._max_tokens = min(tokenizer.model_max_length, text_encoder.config["max_position_embeddings"])

    @classmethod
    def from_pretrained(cls, path, device: str = "auto", name: str | None = None) -> "ClipProvider":
        """path: a transformers CLIPModel folder (config.json with text_config/vision_config + model.safetensors +
        the tokenizer files), or a folder holding image_encoder/, text_encoder/ (with projection) and tokenizer/."""
        from .. import ImageEncoder, TextEncoder
        from ..tokenizer import CLIPTokenizer

        path = os.fspath(path)
        label = name or os.path.basename(os.path.normpath(path))
        if os.path.isdir(os.path.join(path, "image_encoder")):
            return cls.from_components(os.path.join(path, "image_encoder"), os.path.join(path, "text_encoder"),
                                       os.path.join(path, "tokenizer"), device=device, name=label)
        vision_cfg, text_cfg, vision_w, text_w = _split_clip_model(path)
        return cls(ImageEncoder.from_config(vision_cfg, vision_w, device=device),
                   TextEncoder.from_config(text_cfg, text_w, device=device),
                   CLIPTokenizer.from_pretrained(path, subfolder=""), name=label)

    @classmethod
    def from_components(cls, image_encoder, text_encoder, tokenizer, device: str = "auto",
                        name: str | None = None) -> "ClipProvider":
        """The two towers from anything svdc.ImageEncoder / svdc.TextEncoder.from_pretrained read, and a tokenizer
        folder. SVD's own pairing: the image encoder of an SVD checkpoint and the text tower of an SD 2.x single
        file (cond_stage_model.*, which keeps its text projection) are the same OpenCLIP ViT-H/14
        (laion2b_s32b_b79k), so their embeddings share one space."""
        from .. import ImageEncoder, TextEncoder
        from ..tokenizer import CLIPTokenizer

        label = name or os.path.basename(os.path.normpath(os.fspath(image_encoder)))
        return cls(ImageEncoder.from_pretrained(image_encoder, device=device),
                   TextEncoder.from_pretrained(text_encoder, device=device),
                   CLIPTokenizer.from_pretrained(tokenizer), name=label)

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        enc = self.image_encoder
        return center_crop_preprocess(frames, enc.config["image_size"], enc.image_mean, enc.image_std)

    def embed_images(self, frames: np.ndarray) -> np.ndarray:
        return self.image_encoder(self.preprocess(frames))

    def token_ids(self, texts: list[str]) -> np.ndarray:
        return self.tokenizer(list(texts), max_length=self._max_tokens).input_ids

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str) or not len(texts):
            raise ValueError(f"texts: expected a non-empty list of strings, got {texts!r}")
        return self.text_encoder(self.token_ids(texts))["text_embeds"]


def _split_clip_model(path: str):
    """A transformers CLIPModel folder -> (vision config, text config, vision weights, text weights). CLIPModel's
    state dict already uses the names of CLIPVisionModelWithProjection (vision_model.*, visual_projection.weight)
    and CLIPTextModelWithProjection (text_model.*, text_projection.weight); logit_scale belongs to neither."""
    from ..models._loading import read_json
    from ..weights import load_file

    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"path: expected a CLIPModel folder with config.json (or a folder with "
                                f"image_encoder/, text_encoder/, tokenizer/), got {path!r}")
    config = read_json(config_path, "config.json")
    if "vision_config" not in config or "text_config" not in config:
        raise ValueError(f"{config_path}: expected a CLIPModel config with vision_config and text_config, got keys "
                         f"{sorted(config)}")
    projection = int(config.get("projection_dim", 512))
    weights_path = os.path.join(path, "model.safetensors")
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"{path}: no model.safetensors (only safetensors is read; convert .bin first)")
    weights = load_file(weights_path)
    vision = {k: v for k, v in weights.items() if k.startswith("vision_model.") or k == "visual_projection.weight"}
    text = {k: v for k, v in weights.items() if k.startswith("text_model.") or k == "text_projection.weight"}
    vision_cfg = {**config["vision_config"], "projection_dim": projection}
    text_cfg = {**config["text_config"], "projection_dim": projection}
    return vision_cfg, text_cfg, vision, text
