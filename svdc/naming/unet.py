"""UNet checkpoint naming: Stability single-file (sgm VideoUNet / openaimodel UNetModel, `model.diffusion_model.*`)
<-> diffusers UNetSpatioTemporalConditionModel / UNet2DConditionModel names. The block index maps are derived from the
config, so any number of levels / layers works. Shapes are identical in both layouts (proj_in/out are linears in both
where the config says use_linear_projection, 1x1 convs in both otherwise)."""
from __future__ import annotations

from typing import Any

from ..configs.unet import KIND_2D, to_native

SGM_PREFIX = "model.diffusion_model."

# Everything of a Stability single file that is not the UNet: the conditioner embedders (CLIP, the conditioning VAE),
# the first-stage VAE, the denoiser's sigma buffers and EMA copies of training checkpoints.
# SD 2.x files add the text encoder (cond_stage_model) and the DDPM schedule buffers at the top level.
IGNORE_PREFIXES = ("conditioner.", "first_stage_model.", "denoiser.", "model_ema.", "cond_stage_model.")
IGNORE_NAMES = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar", "lvlb_weights",
})

# Inside a res block (VideoResBlock), sgm suffix -> diffusers suffix.
_RES_SUFFIXES = [
    ("time_stack.in_layers.0.", "temporal_res_block.norm1."),
    ("time_stack.in_layers.2.", "temporal_res_block.conv1."),
    ("time_stack.emb_layers.1.", "temporal_res_block.time_emb_proj."),
    ("time_stack.out_layers.0.", "temporal_res_block.norm2."),
    ("time_stack.out_layers.3.", "temporal_res_block.conv2."),
    ("in_layers.0.", "spatial_res_block.norm1."),
    ("in_layers.2.", "spatial_res_block.conv1."),
    ("emb_layers.1.", "spatial_res_block.time_emb_proj."),
    ("out_layers.0.", "spatial_res_block.norm2."),
    ("out_layers.3.", "spatial_res_block.conv2."),
    ("skip_connection.", "spatial_res_block.conv_shortcut."),
    ("time_mixer.", "time_mixer."),
]

# Inside a 2-D res block (ResBlock of openaimodel), sgm suffix -> diffusers ResnetBlock2D suffix.
_RES_2D_SUFFIXES = [(src, dst.replace("spatial_res_block.", "")) for src, dst in _RES_SUFFIXES
                    if dst.startswith("spatial_res_block.")]

# Inside a transformer (SpatialVideoTransformer); everything else keeps its name.
_ATTN_SUFFIXES = [
    ("time_stack.", "temporal_transformer_blocks."),
    ("time_pos_embed.0.", "time_pos_embed.linear_1."),
    ("time_pos_embed.2.", "time_pos_embed.linear_2."),
]


def module_map(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """sgm module prefix -> (diffusers module prefix, kind), kind in {"plain", "res", "attn"}, for this config."""
    native = to_native(config)
    res = "res2d" if native["kind"] == KIND_2D else "res"
    levels = native["block_out_channels"]
    n = len(levels)
    layers = native["layers_per_block"]
    m: dict[str, tuple[str, str]] = {
        "input_blocks.0.0": ("conv_in", "plain"),
        "time_embed.0": ("time_embedding.linear_1", "plain"),
        "time_embed.2": ("time_embedding.linear_2", "plain"),
        "out.0": ("conv_norm_out", "plain"),
        "out.2": ("conv_out", "plain"),
        "middle_block.0": ("mid_block.resnets.0", res),
        "middle_block.1": ("mid_block.attentions.0", "attn"),
        "middle_block.2": ("mid_block.resnets.1", res),
    }
    if native["id_widths"]:
        m["label_emb.0.0"] = ("add_embedding.linear_1", "plain")
        m["label_emb.0.2"] = ("add_embedding.linear_2", "plain")
    k = 1
    for i in range(n):
        for j in range(layers[i]):
            m[f"input_blocks.{k}.0"] = (f"down_blocks.{i}.resnets.{j}", res)
            if native["down_attention"][i]:
                m[f"input_blocks.{k}.1"] = (f"down_blocks.{i}.attentions.{j}", "attn")
            k += 1
        if i < n - 1:
            m[f"input_blocks.{k}.0.op"] = (f"down_blocks.{i}.downsamplers.0.conv", "plain")
            k += 1
    k = 0
    for i in range(n):  # up block i works at level n-1-i
        nl = layers[n - 1 - i] + 1
        has_attn = native["up_attention"][i]
        for j in range(nl):
            m[f"output_blocks.{k}.0"] = (f"up_blocks.{i}.resnets.{j}", res)
            if has_attn:
                m[f"output_blocks.{k}.1"] = (f"up_blocks.{i}.attentions.{j}", "attn")
            if i < n - 1 and j == nl - 1:  # the upsampler follows the last layer's modules
                m[f"output_blocks.{k}.{2 if has_attn else 1}.conv"] = (f"up_blocks.{i}.upsamplers.0.conv", "plain")
            k += 1
    return m


def _map_suffix(suffix: str, kind: str, table_index: int) -> str | None:
    if kind == "plain":
        return suffix
    table = {"res": _RES_SUFFIXES, "res2d": _RES_2D_SUFFIXES}.get(kind, _ATTN_SUFFIXES)
    for pair in table:
        src, dst = pair[table_index], pair[1 - table_index]
        if suffix.startswith(src):
            return dst + suffix[len(src):]
    if kind != "attn":
        return None  # every res-block weight is in the table
    return suffix


class UNetNames:
    """Both directions of the name map for one config. Names here exclude the `model.diffusion_model.` prefix on the
    sgm side unless stated."""

    def __init__(self, config: dict[str, Any]):
        self._fwd = module_map(config)
        self._inv = {d: (s, kind) for s, (d, kind) in self._fwd.items()}

    @staticmethod
    def _lookup(name: str, table: dict[str, tuple[str, str]]):
        parts = name.split(".")
        for depth in range(min(len(parts) - 1, 5), 0, -1):
            prefix = ".".join(parts[:depth])
            if prefix in table:
                return prefix, name[len(prefix) + 1:]
        return None, None

    def to_diffusers(self, sgm_name: str) -> str | None:
        """diffusers name of an sgm UNet weight (without `model.diffusion_model.`), or None if it is not part of
        this config's UNet."""
        prefix, suffix = self._lookup(sgm_name, self._fwd)
        if prefix is None:
            return None
        target, kind = self._fwd[prefix]
        mapped = _map_suffix(suffix, kind, 0)
        return None if mapped is None else f"{target}.{mapped}"

    def to_sgm(self, diffusers_name: str) -> str | None:
        """sgm name (without `model.diffusion_model.`) of a diffusers UNet weight, or None."""
        prefix, suffix = self._lookup(diffusers_name, self._inv)
        if prefix is None:
            return None
        source, kind = self._inv[prefix]
        mapped = _map_suffix(suffix, kind, 1)
        return None if mapped is None else f"{source}.{mapped}"


def is_ignored(key: str) -> bool:
    """True for single-file keys that belong to other components (explicit ignore list)."""
    return key.startswith(IGNORE_PREFIXES) or key in IGNORE_NAMES


def single_file_names(keys, config: dict[str, Any]) -> dict[str, str]:
    """diffusers name -> single-file key for every UNet tensor of a Stability checkpoint. Raises ValueError naming the
    first key that is neither a UNet weight of this config nor on the ignore list."""
    names = UNetNames(config)
    out: dict[str, str] = {}
    for key in keys:
        if is_ignored(key):
            continue
        if not key.startswith(SGM_PREFIX):
            raise ValueError(f"unexpected tensor {key!r}: not under {SGM_PREFIX!r} nor on the ignore list "
                             f"{list(IGNORE_PREFIXES)}")
        target = names.to_diffusers(key[len(SGM_PREFIX):])
        if target is None:
            raise ValueError(f"unexpected UNet tensor {key!r}: it has no diffusers name for this config")
        if target in out:
            raise ValueError(f"tensors {out[target]!r} and {key!r} both map to {target!r}")
        out[target] = key
    return out


def to_single_file(weights: dict, config: dict[str, Any]) -> dict:
    """diffusers-named weights -> Stability single-file names (`model.diffusion_model.*`): the inverse map, used to
    write test checkpoints and for conversion."""
    names = UNetNames(config)
    out = {}
    for k, v in weights.items():
        s = names.to_sgm(k)
        if s is None:
            raise ValueError(f"weight {k!r} has no single-file name for this config")
        out[SGM_PREFIX + s] = v
    return out
