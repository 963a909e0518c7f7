"""CLIP configs: transformers CLIPVisionConfig / CLIPTextConfig keys normalised with the class defaults, and the
OpenCLIP ViT-H/14 presets that Stability single files use (the image tower of svd*/sv3d*, the text tower of SD 2.x)."""
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


def _as_int(key, value, minimum, what="image encoder"):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{what} config: {key} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} config: {key} must be >= {minimum}, got {value}")
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


# ---- the text tower (svdc.TextEncoder) ---------------------------------------------------------------------------

# transformers.CLIPTextConfig class defaults (transformers 5.x) that svdc reads; a config.json overrides any of them.
CLIP_TEXT_DEFAULTS = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "projection_dim": 512,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "eos_token_id": 49407,
}

# SD 2.x's OpenCLIP ViT-H/14 text tower as the Stability single files hold it (all 24 layers; diffusers' converted
# text_encoder/ drops the last one and keeps 23, svdc runs 24 - 1 with hidden_layer=-2).
OPENCLIP_VIT_H_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "projection_dim": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "eos_token_id": 49407,
}

_TEXT_INT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "max_position_embeddings")


def normalize_text_config(config: Mapping, with_projection: bool) -> dict:
    """A CLIPTextConfig dict (a CLIPConfig's text_config is accepted too) with the class defaults filled in, checked,
    and reduced to the keys svdc._C.TextEncoder reads (projection_dim 0 without a text_projection)."""
    if not isinstance(config, Mapping):
        raise TypeError(f"text encoder config: expected a dict, got {type(config).__name__}")
    if "text_config" in config and isinstance(config["text_config"], Mapping):
        config = {**config["text_config"], "projection_dim": config.get("projection_dim",
                                                                         config["text_config"].get("projection_dim"))}
    out = {k: config.get(k, v) for k, v in CLIP_TEXT_DEFAULTS.items()}
    if out["eos_token_id"] is None:
        out["eos_token_id"] = CLIP_TEXT_DEFAULTS["eos_token_id"]
    for key in _TEXT_INT_KEYS:
        out[key] = _as_int(key, out[key], 1, "text encoder")
    out["eos_token_id"] = _as_int("eos_token_id", out["eos_token_id"], 0, "text encoder")
    out["projection_dim"] = _as_int("projection_dim", out["projection_dim"], 1, "text encoder") if with_projection else 0
    if out["hidden_size"] % out["num_attention_heads"]:
        raise ValueError(f"text encoder config: hidden_size {out['hidden_size']} is not a multiple of "
                         f"num_attention_heads {out['num_attention_heads']}")
    if out["hidden_act"] not in _ACTIVATIONS:
        raise ValueError(f"text encoder config: hidden_act must be one of {_ACTIVATIONS}, got {out['hidden_act']!r}")
    eps = out["layer_norm_eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"text encoder config: layer_norm_eps must be a positive number, got {eps!r}")
    out["layer_norm_eps"] = float(eps)
    return out
