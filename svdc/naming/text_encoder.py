"""Stability single-file (SD 2.x: open_clip text tower under `cond_stage_model.model.`) -> transformers
CLIPTextModelWithProjection names: the fused attention in_proj split by rows into q, k, v; text_projection
transposed; an explicit ignore list for every other part of the checkpoint."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

import numpy as np

from .clip import _IN_PROJ, _LAYER, _QKV, _RESBLOCK, _checkpoint_error, _row_third

PREFIX = "cond_stage_model.model."

# Everything that is not the text tower: the UNet, the VAE, EMA copies, the DDPM buffers, open_clip's logit scale and
# causal-mask buffer, and a visual tower if the file carries one.
IGNORED_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "model_ema.", PREFIX + "visual.")
IGNORED_NAMES = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar", "lvlb_weights",
    PREFIX + "logit_scale", PREFIX + "attn_mask",
})

_GLOBAL = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
}


def is_ignored(key: str) -> bool:
    return key.startswith(IGNORED_PREFIXES) or key in IGNORED_NAMES


def map_single_file(keys: Iterable[str], get: Callable[[str], np.ndarray], where: str = "checkpoint"
                    ) -> dict[str, Callable[[], np.ndarray]]:
    """Loaders by transformers name for the text tower of an SD 2.x single file; any key that is neither a known
    text-tower weight nor on the ignore list raises svdc.CheckpointError naming it."""
    loaders: dict[str, Callable[[], np.ndarray]] = {}
    for key in keys:
        if is_ignored(key):
            continue
        if not key.startswith(PREFIX):
            raise _checkpoint_error(f"{where}: unexpected key {key!r} (not a text-encoder weight and not on the "
                                    "single-file ignore list)")
        name = key[len(PREFIX):]
        if name in _GLOBAL:
            loaders[_GLOBAL[name]] = (lambda k=key: get(k))
        elif name == "text_projection":  # (width, proj) -> text_projection.weight (proj, width)
            loaders["text_projection.weight"] = (lambda k=key: np.ascontiguousarray(get(k).T))
        elif m := _IN_PROJ.match(name):
            layer, kind = int(m.group(1)), m.group(2)
            for part, target in enumerate(_QKV):
                loaders[f"text_model.encoder.layers.{layer}.self_attn.{target}.{kind}"] = (
                    lambda k=key, j=part: _row_third(get(k), j, k))
        elif (m := _RESBLOCK.match(name)) and m.group(2) in _LAYER:
            layer, module, kind = int(m.group(1)), _LAYER[m.group(2)], m.group(3)
            loaders[f"text_model.encoder.layers.{layer}.{module}.{kind}"] = (lambda k=key: get(k))
        else:
            raise _checkpoint_error(f"{where}: unknown text-encoder key {key!r}")
    if not loaders:
        raise _checkpoint_error(f"{where}: no text-encoder weights (keys starting with {PREFIX!r})")
    return loaders


def num_layers(keys: Iterable[str]) -> int:
    """The number of resblocks of the text tower in a single file."""
    layers = {int(m.group(1)) for k in keys if k.startswith(PREFIX) and (m := _RESBLOCK.match(k[len(PREFIX):]))}
    return max(layers) + 1 if layers else 0


def to_single_file(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse map (transformers -> SD 2.x single-file names), for conversion and tests."""
    inv_global = {v: k for k, v in _GLOBAL.items()}
    inv_layer = {v: k for k, v in _LAYER.items()}
    layer_re = re.compile(r"text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    out: dict[str, np.ndarray] = {}
    fused: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        value = np.asarray(value)
        if name == "text_model.embeddings.position_ids":
            continue
        if name in inv_global:
            out[PREFIX + inv_global[name]] = value
        elif name == "text_projection.weight":
            out[PREFIX + "text_projection"] = np.ascontiguousarray(value.T)
        elif m := layer_re.match(name):
            layer, module, kind = int(m.group(1)), m.group(2), m.group(3)
            if module.startswith("self_attn.") and module[len("self_attn."):] in _QKV:
                fused.setdefault((layer, kind), {})[module[len("self_attn."):]] = value
            else:
                out[f"{PREFIX}transformer.resblocks.{layer}.{inv_layer[module]}.{kind}"] = value
        else:
            raise ValueError(f"weight {name!r} has no single-file name")
    for (layer, kind), parts in fused.items():
        out[f"{PREFIX}transformer.resblocks.{layer}.attn.in_proj_{kind}"] = np.concatenate([parts[q] for q in _QKV])
    return out
