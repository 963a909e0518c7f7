"""Image-encoder configs: transformers CLIPVisionConfig keys normalised with the class defaults, and the OpenCLIP
ViT-H/14 preset (spec §3) that Stability single files (svd*.safetensors, sv3d*.safetensors) use."""
from __future__ import annotations

import math
from typing import Mapping

# transformers.CLIPVisionConfig class defaults (transformers 5.x); a config.json overrides any of them.
CLIP_VISION_DEFAULTS = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "projection_dim": 512,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}

# OpenCLIP ViT-H/14 (laion2b_s32b_b79k) as SVD's image_encoder/config.json has it.
VIT_H_14 = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "projection_dim": 1024,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}

_INT_KEYS = ("hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
             "num_channels", "image_size", "patch_size")
_ACTIVATIONS = ("gelu", "quick_gelu")


def _as_int(key, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"image encoder config: {key} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"image encoder config: {key} must be >= {minimum}, got {value}")
    return value


def _square(key, value):
    """transformers types image_size/patch_size as int | [h, w]; only square values are usable by CLIPVision."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"image encoder config: {key} must be an int or a square [n, n], got {value!r}")
        value = value[0]
    return value


def normalize_config(config: Mapping) -> dict:
    """A complete, validated config dict for svdc._C.ImageEncoder from a CLIPVisionConfig-style mapping (a
    config.json as saved by transformers; unknown keys ignored, missing ones take the class defaults). A full
    CLIPConfig (with a "vision_config" sub-dict) is accepted too."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    if "vision_config" in config and isinstance(config["vision_config"], Mapping):
        config = config["vision_config"]
    out = dict(CLIP_VISION_DEFAULTS)
    out.update({k: config[k] for k in CLIP_VISION_DEFAULTS if k in config and config[k] is not None})
    for key in ("image_size", "patch_size"):
        out[key] = _square(key, out[key])
    for key in _INT_KEYS:
        out[key] = _as_int(key, out[key], 0 if key == "num_hidden_layers" else 1)
    if out["hidden_size"] % out["num_attention_heads"]:
        raise ValueError(f"image encoder config: hidden_size ({out['hidden_size']}) must be a multiple of "
                         f"num_attention_heads ({out['num_attention_heads']})")
    if out["patch_size"] > out["image_size"]:
        raise ValueError(f"image encoder config: patch_size ({out['patch_size']}) exceeds image_size "
                         f"({out['image_size']})")
    eps = out["layer_norm_eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"image encoder config: layer_norm_eps must be a positive number, got {eps!r}")
    out["layer_norm_eps"] = float(eps)
    if out["hidden_act"] not in _ACTIVATIONS:
        raise ValueError(f"image encoder config: hidden_act must be one of {_ACTIVATIONS} (exact-erf 'gelu' or "
                         f"'quick_gelu'), got {out['hidden_act']!r}")
    return out
