"""VAE configs: the diffusers AutoencoderKLTemporalDecoder and AutoencoderKL class defaults, normalisation of a
config.json (the class picks the decoder kind), and the presets used for Stability single-file checkpoints."""
from __future__ import annotations

import copy
import numbers

__all__ = ["DEFAULTS", "SVD", "SV3D", "normalize", "preset", "with_2d_decoder"]

# diffusers AutoencoderKLTemporalDecoder.__init__ defaults (unknown keys in a config.json are ignored).
DEFAULTS = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"],
    "block_out_channels": [64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "sample_size": 32,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

# diffusers AutoencoderKL.__init__ defaults; the keys of KL_FIXED must keep their value (other values are features
# svdc does not have, refused by name).
KL_DEFAULTS = {
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"],
    "block_out_channels": [64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 32,
    "scaling_factor": 0.18215,
    "force_upcast": True,
    "use_post_quant_conv": True,
}
KL_FIXED = {"act_fn": "silu", "use_quant_conv": True, "mid_block_add_attention": True, "shift_factor": None,
            "latents_mean": None, "latents_std": None}

# The VAE of SD 2.x (v2-inference.yaml first_stage_config; diffusers vae/config.json of stable-diffusion-2-1).
SD2 = {**KL_DEFAULTS, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "sample_size": 768,
       "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}

# The VAE of svd / svd_xt / svd_xt_1_1 (stabilityai/stable-video-diffusion-img2vid vae/config.json).
SVD = {
    "_class_name": "AutoencoderKLTemporalDecoder",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

# The VAE of sv3d_u / sv3d_p: the SVD sizes with a plain 2-D decoder (scripts/sampling/configs/sv3d_{u,p}.yaml in
# Stability's generative-models: sgm.modules.diffusionmodules.model.Decoder inside an AutoencodingEngine, whose decode
# applies no post_quant_conv), i.e. an AutoencoderKL without post_quant_conv.
SV3D = {**KL_DEFAULTS, "block_out_channels": SVD["block_out_channels"], "layers_per_block": 2, "sample_size": 576,
        "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
        "use_post_quant_conv": False}

# Every group norm of this model has 32 groups in diffusers (hard-coded there, so not a config key).
NORM_NUM_GROUPS = 32


def _int(config, key, lo):
    v = config[key]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"VAE config: {key} must be an integer >= {lo}, got {v!r}")
    return int(v)


def is_kl(config: dict) -> bool:
    """True for an AutoencoderKL config (2-D decoder), False for AutoencoderKLTemporalDecoder (the default)."""
    return config.get("_class_name") == "AutoencoderKL"


def normalize(config: dict) -> dict:
    """The config with diffusers defaults filled in and checked; the returned dict is a new object."""
    if not isinstance(config, dict):
        raise TypeError(f"VAE config: expected a dict, got {type(config).__name__}")
    out = copy.deepcopy(KL_DEFAULTS if is_kl(config) else DEFAULTS)
    out.update({k: copy.deepcopy(v) for k, v in config.items()})
    if is_kl(out):
        for key, value in KL_FIXED.items():
            if out.get(key, value) != value:
                raise ValueError(f"VAE config: {key} = {out[key]!r} is not supported (svdc runs {key} = {value!r})")
        out["norm_num_groups"] = _int(out, "norm_num_groups", 1)
        ubt = out["up_block_types"]
        if isinstance(ubt, str) or list(ubt) != ["UpDecoderBlock2D"] * len(out["block_out_channels"]):
            raise ValueError(f"VAE config: up_block_types must be {len(out['block_out_channels'])} x "
                             f"'UpDecoderBlock2D', got {ubt!r}")
        out["use_post_quant_conv"] = bool(out["use_post_quant_conv"])
    groups = out["norm_num_groups"] if is_kl(out) else NORM_NUM_GROUPS
    for key in ("in_channels", "out_channels", "layers_per_block", "latent_channels"):
        out[key] = _int(out, key, 1)
    boc = out["block_out_channels"]
    if isinstance(boc, (str, bytes)) or not hasattr(boc, "__len__") or len(boc) < 1:
        raise ValueError(f"VAE config: block_out_channels must be a non-empty list of integers, got {boc!r}")
    boc = list(boc)
    for i, c in enumerate(boc):
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1 or c % groups:
            raise ValueError(f"VAE config: block_out_channels[{i}] must be a positive multiple of "
                             f"{groups} (the group norms have {groups} groups), got {c!r}")
    out["block_out_channels"] = [int(c) for c in boc]
    dbt = out["down_block_types"]
    if isinstance(dbt, str) or list(dbt) != ["DownEncoderBlock2D"] * len(boc):
        raise ValueError(f"VAE config: down_block_types must be {len(boc)} x 'DownEncoderBlock2D' (one per entry of "
                         f"block_out_channels), got {dbt!r}")
    out["down_block_types"] = list(dbt)
    sf = out["scaling_factor"]
    if isinstance(sf, bool) or not isinstance(sf, numbers.Real) or not sf > 0:
        raise ValueError(f"VAE config: scaling_factor must be a positive number, got {sf!r}")
    out["scaling_factor"] = float(sf)
    return out


def preset(name: str = "svd") -> dict:
    """The VAE config of a Stability checkpoint family: "svd" (svd, svd_xt, svd_xt_1_1: the temporal decoder), "sv3d"
    (sv3d_u, sv3d_p: the same sizes with a 2-D decoder), "sd2"."""
    if name in ("svd", "svd_xt", "svd_xt_1_1"):
        return copy.deepcopy(SVD)
    if name in ("sv3d", "sv3d_u", "sv3d_p"):
        return copy.deepcopy(SV3D)
    if name == "sd2":
        return copy.deepcopy(SD2)
    raise ValueError(f"VAE preset: unknown name {name!r} (expected 'svd', 'svd_xt', 'sv3d_u', 'sv3d_p' or 'sd2')")


def with_2d_decoder(config: dict) -> dict:
    """The AutoencoderKL form (2-D decoder, no post_quant_conv) of a VAE config's sizes: what a Stability single file
    whose first-stage decoder has no temporal parts (SV3D's) holds, whatever decoder class the sizes came with."""
    levels = len(config.get("block_out_channels", DEFAULTS["block_out_channels"]))
    out = {**copy.deepcopy(config), "_class_name": "AutoencoderKL", "up_block_types": ["UpDecoderBlock2D"] * levels,
           "use_post_quant_conv": False}
    out.setdefault("norm_num_groups", NORM_NUM_GROUPS)
    return out
