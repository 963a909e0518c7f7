"""UNet configs: a diffusers UNetSpatioTemporalConditionModel config.json normalised with the class defaults, the sgm
presets of the Stability single files (svd, svd_xt, sv3d_u, sv3d_p), and the native dict that svdc._C.UNet takes."""
from __future__ import annotations

import copy
from typing import Any

from .._validate import check_native_ints

# diffusers UNetSpatioTemporalConditionModel.__init__ defaults (diffusers 0.42).
DIFFUSERS_DEFAULTS: dict[str, Any] = {
    "sample_size": None,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768,
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
}

# svdc extensions (not diffusers keys):
#   resnet_eps: "diffusers" (1e-6 in CrossAttnDown and all Up res blocks, 1e-5 in DownBlock and mid) or "sgm" (1e-5
#               everywhere, as the Stability checkpoints were trained);
#   added_id_widths: the sinusoid width of each added id (None: projection_dim / addition_time_embed_dim ids of
#               addition_time_embed_dim each, as diffusers does).
SVDC_DEFAULTS: dict[str, Any] = {"resnet_eps": "diffusers", "added_id_widths": None}

_DOWN_TYPES = {"CrossAttnDownBlockSpatioTemporal": 1, "DownBlockSpatioTemporal": 0}
_UP_TYPES = {"CrossAttnUpBlockSpatioTemporal": 1, "UpBlockSpatioTemporal": 0}


def _sgm_preset(projection_dim: int, widths: list[int], num_frames: int) -> dict[str, Any]:
    cfg = copy.deepcopy(DIFFUSERS_DEFAULTS)
    cfg.update(
        {
            "sample_size": 96,
            "projection_class_embeddings_input_dim": projection_dim,
            "num_frames": num_frames,
            "resnet_eps": "sgm",
            "added_id_widths": widths,
        }
    )
    return cfg


# sgm VideoUNet (model_channels 320, mult [1,2,4,4], 2 res blocks, attention at levels 0-2, 64-dim heads, context
# 1024); they differ only in adm_in_channels and what feeds it (spec §1.1, §6).
PRESETS: dict[str, dict[str, Any]] = {
    "svd": _sgm_preset(768, [256, 256, 256], 14),       # fps_id, motion_bucket_id, cond_aug
    "svd_xt": _sgm_preset(768, [256, 256, 256], 25),
    "sv3d_u": _sgm_preset(256, [256], 21),              # cond_aug
    "sv3d_p": _sgm_preset(1280, [256, 512, 512], 21),   # cond_aug, polar (rad), azimuth (rad)
}

_PRESET_BY_ADM = {768: "svd", 256: "sv3d_u", 1280: "sv3d_p"}


def preset(name: str) -> dict[str, Any]:
    """A copy of an sgm preset config (diffusers keys plus the svdc extensions)."""
    if name not in PRESETS:
        raise ValueError(f"unet preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[name])


def preset_for_adm_width(width: int) -> str:
    """The preset of a Stability single file, from label_emb.0.0.weight's input width (768 / 256 / 1280)."""
    if width not in _PRESET_BY_ADM:
        raise ValueError(
            f"unet: label_emb.0.0.weight has input width {width}; known single-file UNets have 768 (svd, svd_xt), "
            "256 (sv3d_u) or 1280 (sv3d_p)"
        )
    return _PRESET_BY_ADM[width]


def from_diffusers(config: dict[str, Any]) -> dict[str, Any]:
    """The diffusers config (unknown keys dropped, missing keys set to the class defaults) plus the svdc extensions."""
    if not isinstance(config, dict):
        raise TypeError(f"unet config: expected a dict, got {type(config).__name__}")
    out = copy.deepcopy(DIFFUSERS_DEFAULTS)
    out.update(copy.deepcopy(SVDC_DEFAULTS))
    for k, v in config.items():
        if k in out:
            out[k] = copy.deepcopy(v)
    return out


def _per_level(value, n: int, key: str) -> list[int]:
    if isinstance(value, bool):
        raise ValueError(f"unet config: {key} must be an int or a list of {n} ints, got {value!r}")
    if isinstance(value, int):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"unet config: {key} has {len(values)} entries, expected {n} (one per block)")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"unet config: {key} entries must be ints (nested per-layer lists are not supported), "
                             f"got {value!r}")
    return values


def added_id_widths(cfg: dict[str, Any]) -> list[int]:
    """The sinusoid width of each added id, in order."""
    widths = cfg.get("added_id_widths")
    proj = int(cfg["projection_class_embeddings_input_dim"])
    if widths is None:
        d = int(cfg["addition_time_embed_dim"])
        if d <= 0 or proj % d:
            raise ValueError(
                f"unet config: projection_class_embeddings_input_dim {proj} is not a multiple of "
                f"addition_time_embed_dim {d}"
            )
        return [d] * (proj // d)
    widths = [int(w) for w in widths]
    if sum(widths) != proj:
        raise ValueError(f"unet config: added_id_widths {widths} sum to {sum(widths)}, expected {proj}")
    return widths


def to_native(cfg: dict[str, Any]) -> dict[str, Any]:
    """The dict svdc._C.UNet takes (per-level lists, attention flags, id widths, eps mode), validated."""
    cfg = from_diffusers(cfg)
    blocks = [int(c) for c in cfg["block_out_channels"]]
    n = len(blocks)
    down, up = list(cfg["down_block_types"]), list(cfg["up_block_types"])
    if len(down) != n or len(up) != n:
        raise ValueError(
            f"unet config: {len(down)} down_block_types and {len(up)} up_block_types for {n} block_out_channels"
        )
    for t in down:
        if t not in _DOWN_TYPES:
            raise ValueError(f"unet config: down block type {t!r} is not one of {sorted(_DOWN_TYPES)}")
    for t in up:
        if t not in _UP_TYPES:
            raise ValueError(f"unet config: up block type {t!r} is not one of {sorted(_UP_TYPES)}")
    cross = cfg["cross_attention_dim"]
    if not isinstance(cross, int):
        cross = [int(c) for c in cross]
        if len(set(cross)) != 1:
            raise ValueError(f"unet config: cross_attention_dim {cross} differs per block; one context feeds all")
        cross = cross[0]
    eps = cfg.get("resnet_eps", "diffusers")
    if eps not in ("diffusers", "sgm"):
        raise ValueError(f"unet config: resnet_eps must be 'diffusers' or 'sgm', got {eps!r}")
    widths = added_id_widths(cfg)
    return check_native_ints({
        "in_channels": int(cfg["in_channels"]),
        "out_channels": int(cfg["out_channels"]),
        "block_out_channels": blocks,
        "down_attention": [_DOWN_TYPES[t] for t in down],
        "up_attention": [_UP_TYPES[t] for t in up],
        "layers_per_block": _per_level(cfg["layers_per_block"], n, "layers_per_block"),
        "num_attention_heads": _per_level(cfg["num_attention_heads"], n, "num_attention_heads"),
        "transformer_layers": _per_level(cfg["transformer_layers_per_block"], n, "transformer_layers_per_block"),
        "cross_attention_dim": int(cross),
        "id_widths": widths,
        "projection_input_dim": int(cfg["projection_class_embeddings_input_dim"]),
        "sgm_eps": 1 if eps == "sgm" else 0,
    }, "unet config")
