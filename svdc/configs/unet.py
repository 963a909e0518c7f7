"""UNet configs: a diffusers UNetSpatioTemporalConditionModel or UNet2DConditionModel config.json normalised with its
class defaults, the sgm presets of the Stability single files (svd, svd_xt, sv3d_u, sv3d_p), and the native dict that
svdc._C.UNet takes (the block kind, per-level lists and attention flags that the block-type strings mean)."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

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

# diffusers UNet2DConditionModel.__init__ defaults (diffusers 0.42) that svdc reads; the keys in _2D_FIXED must keep
# the value given there (anything else is a feature svdc does not have, refused by name).
DIFFUSERS_2D_DEFAULTS: dict[str, Any] = {
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1280,
    "transformer_layers_per_block": 1,
    "attention_head_dim": 8,
    "num_attention_heads": None,
    "use_linear_projection": False,
    "upcast_attention": False,  # no effect in svdc: attention scores are float32 already
}
_2D_FIXED: dict[str, Any] = {
    "center_input_sample": False, "flip_sin_to_cos": True, "freq_shift": 0, "only_cross_attention": False,
    "downsample_padding": 1, "mid_block_scale_factor": 1, "act_fn": "silu", "norm_num_groups": 32,
    "encoder_hid_dim": None, "encoder_hid_dim_type": None, "dual_cross_attention": False, "class_embed_type": None,
    "addition_embed_type": None, "num_class_embeds": None, "resnet_time_scale_shift": "default",
    "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0, "time_embedding_type": "positional",
    "time_embedding_dim": None, "time_embedding_act_fn": None, "timestep_post_act": None,
    "time_cond_proj_dim": None, "conv_in_kernel": 3, "conv_out_kernel": 3, "attention_type": "default",
    "class_embeddings_concat": False, "mid_block_only_cross_attention": None, "cross_attention_norm": None,
    "reverse_transformer_layers_per_block": None, "projection_class_embeddings_input_dim": None,
}

# Block kinds of the native config (csrc/models/blocks/common.h svdc_block_kind).
KIND_2D = 0
KIND_SPATIO_TEMPORAL = 1

# svdc extensions (not diffusers keys):
#   resnet_eps: "diffusers" (1e-6 in CrossAttnDown and all Up res blocks, 1e-5 in DownBlock and mid) or "sgm" (1e-5
#               everywhere, as the Stability checkpoints were trained);
#   added_id_widths: the sinusoid width of each added id (None: projection_dim / addition_time_embed_dim ids of
#               addition_time_embed_dim each, as diffusers does).
SVDC_DEFAULTS: dict[str, Any] = {"resnet_eps": "diffusers", "added_id_widths": None}

# diffusers block-type string -> has attention, per kind
_DOWN_TYPES = {"CrossAttnDownBlockSpatioTemporal": 1, "DownBlockSpatioTemporal": 0}
_UP_TYPES = {"CrossAttnUpBlockSpatioTemporal": 1, "UpBlockSpatioTemporal": 0}
_DOWN_TYPES_2D = {"CrossAttnDownBlock2D": 1, "DownBlock2D": 0}
_UP_TYPES_2D = {"CrossAttnUpBlock2D": 1, "UpBlock2D": 0}


def is_2d(config: dict[str, Any]) -> bool:
    """True for a UNet2DConditionModel config (by _class_name, else by its block types), False for the
    spatio-temporal UNet (the default)."""
    name = config.get("_class_name")
    if name is not None:
        return name == "UNet2DConditionModel"
    types = list(config.get("down_block_types") or []) + list(config.get("up_block_types") or [])
    return any(isinstance(t, str) and t.endswith("2D") for t in types)


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
# 1024); they differ only in adm_in_channels and what feeds it (generative-models configs/inference/svd.yaml and sv3d_*.yaml).
PRESETS: dict[str, dict[str, Any]] = {
    "svd": _sgm_preset(768, [256, 256, 256], 14),       # fps_id, motion_bucket_id, cond_aug
    "svd_xt": _sgm_preset(768, [256, 256, 256], 25),
    "sv3d_u": _sgm_preset(256, [256], 21),              # cond_aug
    "sv3d_p": _sgm_preset(1280, [256, 512, 512], 21),   # cond_aug, polar (rad), azimuth (rad)
}

# SD 2.x (sgm openaimodel UNetModel of v2-inference(-v).yaml: model_channels 320, mult [1,2,4,4], 2 res blocks,
# attention at levels 0-2 with 64-dim heads, context 1024, linear projections).
PRESETS["sd2"] = {
    **copy.deepcopy(DIFFUSERS_2D_DEFAULTS), "_class_name": "UNet2DConditionModel", "sample_size": 96,
    "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": True,
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
    if is_2d(config):
        out = copy.deepcopy(DIFFUSERS_2D_DEFAULTS)
        out["_class_name"] = "UNet2DConditionModel"
        out.update(copy.deepcopy(_2D_FIXED))
        for k, v in config.items():
            if k in out:
                out[k] = copy.deepcopy(v)
        return out
    out = copy.deepcopy(DIFFUSERS_DEFAULTS)
    out.update(copy.deepcopy(SVDC_DEFAULTS))
    for k, v in config.items():
        if k in out:
            out[k] = copy.deepcopy(v)
    return out


# The integer settings to_native reads, by form; each is checked before use so a wrong type names its key.
_INT_KEYS = ("in_channels", "out_channels", "projection_class_embeddings_input_dim", "addition_time_embed_dim")
_INT_LIST_KEYS = ("block_out_channels", "added_id_widths")
_INT_OR_LIST_KEYS = ("layers_per_block", "num_attention_heads", "attention_head_dim", "transformer_layers_per_block",
                     "cross_attention_dim")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_int_settings(cfg: dict[str, Any]) -> None:
    """ValueError naming the key and its value for an integer setting of the wrong type (a string, a float, a
    nested list), instead of a bare int() or iteration error later. None (a class default) is left to the reader."""
    for key in _INT_KEYS + _INT_LIST_KEYS + _INT_OR_LIST_KEYS:
        v = cfg.get(key)
        if v is None:
            continue
        is_list = isinstance(v, (list, tuple)) and all(_is_int(x) for x in v)
        if key in _INT_KEYS and not _is_int(v):
            raise ValueError(f"unet config: {key} must be an int, got {v!r}")
        if key in _INT_LIST_KEYS and not is_list:
            raise ValueError(f"unet config: {key} must be a list of ints, got {v!r}")
        if key in _INT_OR_LIST_KEYS and not (_is_int(v) or is_list):
            raise ValueError(f"unet config: {key} must be an int or a list of ints (one per block; nested per-layer "
                             f"lists are not supported), got {v!r}")


def _per_level(value, n: int, key: str) -> list[int]:
    if isinstance(value, bool):
        raise ValueError(f"unet config: {key} must be an int or a list of {n} ints, got {value!r}")
    if isinstance(value, int):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"unet config: {key} has {len(values)} entries, expected {n} (one per block), got {value!r}")
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


def _one_cross_attention_dim(cross) -> int:
    if not isinstance(cross, int):
        cross = [int(c) for c in cross]
        if len(set(cross)) != 1:
            raise ValueError(f"unet config: cross_attention_dim {cross} differs per block; one context feeds all")
        cross = cross[0]
    return int(cross)


def _block_flags(types: list, table: dict, n: int, what: str) -> list[int]:
    if len(types) != n:
        raise ValueError(f"unet config: {len(types)} {what}_block_types for {n} block_out_channels")
    for t in types:
        if t not in table:
            raise ValueError(f"unet config: {what} block type {t!r} is not one of {sorted(table)}")
    return [table[t] for t in types]


def _to_native_2d(cfg: dict[str, Any]) -> dict[str, Any]:
    for key, value in _2D_FIXED.items():
        if cfg.get(key) != value and not (value is False and cfg.get(key) is None):
            raise ValueError(f"unet config: {key} = {cfg.get(key)!r} is not supported (svdc runs {key} = {value!r})")
    if cfg["mid_block_type"] != "UNetMidBlock2DCrossAttn":
        raise ValueError(f"unet config: mid_block_type {cfg['mid_block_type']!r} is not supported "
                         "(expected 'UNetMidBlock2DCrossAttn')")
    blocks = [int(c) for c in cfg["block_out_channels"]]
    n = len(blocks)
    # diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the SD 2.x configs name the head
    # count "attention_head_dim"); the transformer's inner width is the level's channel count.
    heads = cfg["num_attention_heads"] if cfg["num_attention_heads"] is not None else cfg["attention_head_dim"]
    eps = float(cfg["norm_eps"])
    return check_native_ints({
        "kind": KIND_2D,
        "in_channels": int(cfg["in_channels"]),
        "out_channels": int(cfg["out_channels"]),
        "block_out_channels": blocks,
        "down_attention": _block_flags(list(cfg["down_block_types"]), _DOWN_TYPES_2D, n, "down"),
        "up_attention": _block_flags(list(cfg["up_block_types"]), _UP_TYPES_2D, n, "up"),
        "layers_per_block": _per_level(cfg["layers_per_block"], n, "layers_per_block"),
        "num_attention_heads": _per_level(heads, n, "num_attention_heads / attention_head_dim"),
        "transformer_layers": _per_level(cfg["transformer_layers_per_block"], n, "transformer_layers_per_block"),
        "cross_attention_dim": _one_cross_attention_dim(cfg["cross_attention_dim"]),
        "linear_projection": 1 if cfg["use_linear_projection"] else 0,
        "norm_eps": eps,
        "id_widths": [],
        "projection_input_dim": 0,
        "sgm_eps": 0,
    }, "unet config")


def to_native(cfg: dict[str, Any]) -> dict[str, Any]:
    """The dict svdc._C.UNet takes (block kind, per-level lists, attention flags, id widths, eps mode), validated."""
    cfg = from_diffusers(cfg)
    _check_int_settings(cfg)
    if cfg.get("_class_name") == "UNet2DConditionModel":
        return _to_native_2d(cfg)
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
        "kind": KIND_SPATIO_TEMPORAL,
        "in_channels": int(cfg["in_channels"]),
        "out_channels": int(cfg["out_channels"]),
        "block_out_channels": blocks,
        "down_attention": [_DOWN_TYPES[t] for t in down],
        "up_attention": [_UP_TYPES[t] for t in up],
        "layers_per_block": _per_level(cfg["layers_per_block"], n, "layers_per_block"),
        "num_attention_heads": _per_level(cfg["num_attention_heads"], n, "num_attention_heads"),
        "transformer_layers": _per_level(cfg["transformer_layers_per_block"], n, "transformer_layers_per_block"),
        "cross_attention_dim": int(cross),
        "linear_projection": 1,
        "norm_eps": 1e-5,  # unused by this kind (sgm_eps chooses)
        "id_widths": widths,
        "projection_input_dim": int(cfg["projection_class_embeddings_input_dim"]),
        "sgm_eps": 1 if eps == "sgm" else 0,
    }, "unet config")
