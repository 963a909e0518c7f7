"""VAE configs: the diffusers AutoencoderKLTemporalDecoder class defaults, normalisation of a config.json, and the
SVD preset used for Stability single-file checkpoints (spec §2)."""
from __future__ import annotations

import copy
import numbers

__all__ = ["DEFAULTS", "SVD", "normalize", "preset"]

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

# The VAE of svd / svd_xt / svd_xt_1_1 (diffusers vae/config.json; spec §2).
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

# Every group norm of this model has 32 groups in diffusers (hard-coded there, so not a config key).
NORM_NUM_GROUPS = 32


def _int(config, key, lo):
    v = config[key]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"VAE config: {key} must be an integer >= {lo}, got {v!r}")
    return int(v)


def normalize(config: dict) -> dict:
    """The config with diffusers defaults filled in and checked; the returned dict is a new object."""
    if not isinstance(config, dict):
        raise TypeError(f"VAE config: expected a dict, got {type(config).__name__}")
    out = copy.deepcopy(DEFAULTS)
    out.update({k: copy.deepcopy(v) for k, v in config.items()})
    for key in ("in_channels", "out_channels", "layers_per_block", "latent_channels"):
        out[key] = _int(out, key, 1)
    boc = out["block_out_channels"]
    if isinstance(boc, (str, bytes)) or not hasattr(boc, "__len__") or len(boc) < 1:
        raise ValueError(f"VAE config: block_out_channels must be a non-empty list of integers, got {boc!r}")
    boc = list(boc)
    for i, c in enumerate(boc):
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1 or c % NORM_NUM_GROUPS:
            raise ValueError(f"VAE config: block_out_channels[{i}] must be a positive multiple of "
                             f"{NORM_NUM_GROUPS} (the group norms have {NORM_NUM_GROUPS} groups), got {c!r}")
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
    """The VAE config of a Stability checkpoint family: "svd" (svd, svd_xt, svd_xt_1_1), "sv3d" (same sizes)."""
    if name in ("svd", "svd_xt", "svd_xt_1_1", "sv3d", "sv3d_u", "sv3d_p"):
        return copy.deepcopy(SVD)
    raise ValueError(f"VAE preset: unknown name {name!r} (expected 'svd', 'svd_xt', 'sv3d_u' or 'sv3d_p')")
