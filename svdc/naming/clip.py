"""Stability single-file (sgm / open_clip) -> transformers names for the image encoder (open_clip's ViT-H-14 layout in sgm's FrozenOpenCLIPImageEmbedder): the fused
attention in_proj split by rows into q, k, v; `proj` transposed; ln_pre -> pre_layrnorm (sic); an explicit ignore
list for every other part of the checkpoint."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

import numpy as np

PREFIX = "conditioner.embedders.0.open_clip.model.visual."

# Everything in a Stability single file that is not the image tower: the UNet, the VAE, the other conditioner
# embedders (embedders.3 / .1 hold the conditioning VAE encoder of SVD / SV3D), the denoiser buffers, and the text
# side of the open_clip model (token_embedding, positional_embedding, transformer, ln_final, text_projection,
# logit_scale, attn_mask).
IGNORED_PATTERNS = (
    re.compile(r"model\.diffusion_model\."),
    re.compile(r"first_stage_model\."),
    re.compile(r"denoiser\."),
    re.compile(r"model_ema\."),
    re.compile(r"conditioner\.embedders\.(?!0\.)\d+\."),
    re.compile(r"conditioner\.embedders\.0\.open_clip\.model\.(?!visual\.)"),
)

# open_clip visual.* -> transformers, for the keys that are a plain rename.
_GLOBAL = {
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "class_embedding": "vision_model.embeddings.class_embedding",
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}
_LAYER = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_RESBLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias)$")
_IN_PROJ = re.compile(r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$")
_QKV = ("q_proj", "k_proj", "v_proj")  # in_proj rows are [q; k; v]


def is_ignored(key: str) -> bool:
    return any(p.match(key) for p in IGNORED_PATTERNS)


def _checkpoint_error(message: str) -> Exception:
    from .._native import _C

    return _C.CheckpointError(message)


def map_single_file(keys: Iterable[str], get: Callable[[str], np.ndarray], where: str = "checkpoint",
                    prefix: str = PREFIX) -> dict[str, Callable[[], np.ndarray]]:
    """Loaders by transformers name for the image encoder of a Stability single file.

    keys: every key of the file; get(key) -> float32 array of that key (called lazily). Keys on the ignore list are
    skipped; any other key that is not a known image-tower weight raises svdc.CheckpointError naming it."""
    loaders: dict[str, Callable[[], np.ndarray]] = {}
    found = False
    for key in keys:
        if not key.startswith(prefix):
            if is_ignored(key):
                continue
            raise _checkpoint_error(f"{where}: unexpected key {key!r} (not an image-encoder weight and not on the "
                                    f"single-file ignore list)")
        found = True
        name = key[len(prefix):]
        if name in _GLOBAL:
            loaders[_GLOBAL[name]] = (lambda k=key: get(k))
        elif name == "proj":  # [width, proj_dim] -> visual_projection.weight [proj_dim, width]
            loaders["visual_projection.weight"] = (lambda k=key: np.ascontiguousarray(get(k).T))
        elif m := _IN_PROJ.match(name):
            layer, kind = int(m.group(1)), m.group(2)
            for part, target in enumerate(_QKV):
                loaders[f"vision_model.encoder.layers.{layer}.self_attn.{target}.{kind}"] = (
                    lambda k=key, j=part: _row_third(get(k), j, k))
        elif (m := _RESBLOCK.match(name)) and m.group(2) in _LAYER:
            layer, module, kind = int(m.group(1)), _LAYER[m.group(2)], m.group(3)
            loaders[f"vision_model.encoder.layers.{layer}.{module}.{kind}"] = (lambda k=key: get(k))
        else:
            raise _checkpoint_error(f"{where}: unknown image-encoder key {key!r} (the map covers an OpenCLIP ViT "
                                    f"without attention pooling or layer scale)")
    if not found:
        raise _checkpoint_error(f"{where}: no image-encoder weights (keys starting with {prefix!r})")
    return loaders


def _row_third(a: np.ndarray, part: int, key: str) -> np.ndarray:
    """Rows [part·n, (part+1)·n) of the fused in_proj (3n, ...)."""
    if a.shape[0] % 3:
        raise _checkpoint_error(f"{key}: fused in_proj has {a.shape[0]} rows, not a multiple of 3")
    n = a.shape[0] // 3
    return np.ascontiguousarray(a[part * n:(part + 1) * n])


def single_file_shapes(shape_of: Callable[[str], tuple], keys: Iterable[str], prefix: str = PREFIX) -> dict:
    """The architecture a single file's shapes pin down (every config field but the head count)."""
    keys = set(keys)
    layers = {int(m.group(1)) for k in keys if k.startswith(prefix)
              and (m := _RESBLOCK.match(k[len(prefix):]))}
    need = [prefix + "conv1.weight", prefix + "positional_embedding", prefix + "proj"]
    missing = [k for k in need if k not in keys]
    if missing:
        raise _checkpoint_error(f"single file: missing image-encoder key {missing[0]!r}")
    width, channels, patch, _ = shape_of(prefix + "conv1.weight")
    tokens = shape_of(prefix + "positional_embedding")[0]
    grid = int(round((tokens - 1) ** 0.5))
    out = {
        "hidden_size": int(width),
        "num_channels": int(channels),
        "patch_size": int(patch),
        "image_size": int(grid * patch),
        "projection_dim": int(shape_of(prefix + "proj")[1]),
        "num_hidden_layers": (max(layers) + 1) if layers else 0,
    }
    fc = prefix + "transformer.resblocks.0.mlp.c_fc.weight"
    if fc in keys:
        out["intermediate_size"] = int(shape_of(fc)[0])
    return out


def to_single_file(weights: Mapping[str, np.ndarray], prefix: str = PREFIX) -> dict[str, np.ndarray]:
    """The inverse map (transformers -> open_clip single-file names), for conversion and tests: q/k/v concatenated
    by rows into in_proj, visual_projection transposed into proj. Non-weight buffers (position_ids) are dropped."""
    inv_global = {v: k for k, v in _GLOBAL.items()}
    inv_layer = {v: k for k, v in _LAYER.items()}
    out: dict[str, np.ndarray] = {}
    fused: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    layer_re = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    for name, value in weights.items():
        value = np.asarray(value)
        if name in IGNORED_TRANSFORMERS_KEYS:
            continue
        if name in inv_global:
            out[prefix + inv_global[name]] = value
        elif name == "visual_projection.weight":
            out[prefix + "proj"] = np.ascontiguousarray(value.T)
        elif m := layer_re.match(name):
            layer, module, kind = int(m.group(1)), m.group(2), m.group(3)
            if module.startswith("self_attn.") and module[len("self_attn."):] in _QKV:
                fused.setdefault((layer, kind), {})[module[len("self_attn."):]] = value
            elif module in inv_layer:
                out[f"{prefix}transformer.resblocks.{layer}.{inv_layer[module]}.{kind}"] = value
            else:
                raise KeyError(f"to_single_file: unknown transformers key {name!r}")
        else:
            raise KeyError(f"to_single_file: unknown transformers key {name!r}")
    for (layer, kind), parts in fused.items():
        if set(parts) != set(_QKV):
            raise KeyError(f"to_single_file: layer {layer} {kind}: need q, k and v, got {sorted(parts)}")
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{kind}"] = np.ascontiguousarray(
            np.concatenate([parts[p] for p in _QKV], axis=0))
    return out


# Buffers transformers may store next to the weights (older versions saved position_ids); never weights.
IGNORED_TRANSFORMERS_KEYS = frozenset({"vision_model.embeddings.position_ids"})
