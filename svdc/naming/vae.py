"""VAE names: Stability single-file (sgm) -> diffusers AutoencoderKLTemporalDecoder (SVD files), AutoencoderKL with
the conditioner's encoder (SV3D files: a 2-D first-stage decoder) and AutoencoderKL (SD 2.x files: everything under
first_stage_model.), the explicit ignore lists, and the inverse maps
(diffusers -> sgm) used to write single-file layouts for tests and conversion."""
from __future__ import annotations

import re

import numpy as np

__all__ = [
    "DECODER_PREFIX",
    "ENCODER_PREFIXES",
    "IGNORED_PREFIXES",
    "find_encoder_prefix",
    "has_temporal_decoder",
    "sgm_to_diffusers",
    "diffusers_to_sgm",
    "map_single_file",
    "to_single_file",
    "kl_sgm_to_diffusers",
    "map_kl_single_file",
    "kl_to_single_file",
]

DECODER_PREFIX = "first_stage_model.decoder."
# The full SD 2.1 VAE used to encode the conditioning frame: SVD files hold it in embedders.3, SV3D files in
# embedders.1. Only its encoder and quant_conv are used.
ENCODER_PREFIXES = ("conditioner.embedders.3.encoder.", "conditioner.embedders.1.encoder.")

# Tensors of a Stability single file that are not part of the VAE (or are parts of it nothing uses).
IGNORED_PREFIXES = (
    "model.diffusion_model.",  # the UNet
    "model_ema.",  # EMA copies, when a training checkpoint is given
    "conditioner.embedders.0.",  # the OpenCLIP image encoder (and leftover text-tower tensors)
    "first_stage_model.encoder.",  # the training-time encoder; the conditioning path uses the embedder's
    "first_stage_model.quant_conv.",
    "first_stage_model.post_quant_conv.",  # not on the decode path (sgm's decode path does not use it)
    "first_stage_model.loss.",
    "denoiser.",  # discretisation buffers (sigmas)
) + tuple(p + s for p in ENCODER_PREFIXES for s in ("decoder.", "post_quant_conv."))

# Inside a decoder VideoResBlock (sgm) -> inside a diffusers SpatioTemporalResBlock.
_DEC_RES = {
    "norm1": "spatial_res_block.norm1",
    "conv1": "spatial_res_block.conv1",
    "norm2": "spatial_res_block.norm2",
    "conv2": "spatial_res_block.conv2",
    "nin_shortcut": "spatial_res_block.conv_shortcut",
    "time_stack.in_layers.0": "temporal_res_block.norm1",
    "time_stack.in_layers.2": "temporal_res_block.conv1",
    "time_stack.out_layers.0": "temporal_res_block.norm2",
    "time_stack.out_layers.3": "temporal_res_block.conv2",
}
# A 2-D decoder's res block is the spatial half of the temporal decoder's: the same names without this level.
_SPATIAL = "spatial_res_block."
# Inside an encoder ResnetBlock.
_ENC_RES = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
# AttnBlock (1x1 convs) -> diffusers Attention (linears).
_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _inverse(d):
    return {v: k for k, v in d.items()}


_DEC_RES_INV, _ENC_RES_INV, _ATTN_INV = _inverse(_DEC_RES), _inverse(_ENC_RES), _inverse(_ATTN)


def _split_param(rest: str):
    """'a.b.weight' -> ('a.b', 'weight')."""
    module, _, param = rest.rpartition(".")
    return module, param


def _map_res(rest: str, table: dict, extra: dict | None = None) -> str | None:
    if extra and rest in extra:
        return extra[rest]
    module, param = _split_param(rest)
    return f"{table[module]}.{param}" if module in table else None


def _map_attn(rest: str) -> str | None:
    module, param = _split_param(rest)
    return f"{_ATTN[module]}.{param}" if module in _ATTN else None


def sgm_to_diffusers(name: str, encoder_prefix: str, num_levels: int) -> str | None:
    """The diffusers name of a single-file tensor, None when it is on the ignore list. Raises KeyError for a name
    under a VAE prefix that the map does not know."""
    if name.startswith(DECODER_PREFIX):
        r = name[len(DECODER_PREFIX):]
        m = re.fullmatch(r"(conv_in|norm_out|conv_out)\.(weight|bias)", r)
        if m:
            return f"decoder.{'conv_norm_out' if m[1] == 'norm_out' else m[1]}.{m[2]}"
        m = re.fullmatch(r"conv_out\.time_mix_conv\.(weight|bias)", r)
        if m:
            return f"decoder.time_conv_out.{m[1]}"
        m = re.fullmatch(r"mid\.block_([12])\.(.+)", r)
        if m:
            inner = _map_res(m[2], _DEC_RES, {"mix_factor": "time_mixer.mix_factor"})
            if inner:
                return f"decoder.mid_block.resnets.{int(m[1]) - 1}.{inner}"
        m = re.fullmatch(r"mid\.attn_1\.(.+)", r)
        if m and _map_attn(m[1]):
            return f"decoder.mid_block.attentions.0.{_map_attn(m[1])}"
        m = re.fullmatch(r"up\.(\d+)\.block\.(\d+)\.(.+)", r)
        if m and int(m[1]) < num_levels:
            inner = _map_res(m[3], _DEC_RES, {"mix_factor": "time_mixer.mix_factor"})
            if inner:
                # sgm numbers the levels from the highest resolution; diffusers from the lowest (diffusers single_file_utils.convert_ldm_vae_checkpoint).
                return f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.resnets.{m[2]}.{inner}"
        m = re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(weight|bias)", r)
        if m and int(m[1]) < num_levels:
            return f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"
        raise KeyError(name)
    for p in IGNORED_PREFIXES:
        if name.startswith(p):
            return None
    if name.startswith(encoder_prefix):
        r = name[len(encoder_prefix):]
        m = re.fullmatch(r"quant_conv\.(weight|bias)", r)
        if m:
            return f"quant_conv.{m[1]}"
        m = re.fullmatch(r"encoder\.(conv_in|norm_out|conv_out)\.(weight|bias)", r)
        if m:
            return f"encoder.{'conv_norm_out' if m[1] == 'norm_out' else m[1]}.{m[2]}"
        m = re.fullmatch(r"encoder\.down\.(\d+)\.block\.(\d+)\.(.+)", r)
        if m and _map_res(m[3], _ENC_RES):
            return f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{_map_res(m[3], _ENC_RES)}"
        m = re.fullmatch(r"encoder\.down\.(\d+)\.downsample\.conv\.(weight|bias)", r)
        if m:
            return f"encoder.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}"
        m = re.fullmatch(r"encoder\.mid\.block_([12])\.(.+)", r)
        if m and _map_res(m[2], _ENC_RES):
            return f"encoder.mid_block.resnets.{int(m[1]) - 1}.{_map_res(m[2], _ENC_RES)}"
        m = re.fullmatch(r"encoder\.mid\.attn_1\.(.+)", r)
        if m and _map_attn(m[1]):
            return f"encoder.mid_block.attentions.0.{_map_attn(m[1])}"
        raise KeyError(name)
    # Parameter-free embedders (fps, motion, cond_aug, camera) have no tensors; any other name is unknown.
    raise KeyError(name)


def diffusers_to_sgm(name: str, encoder_prefix: str, num_levels: int) -> str:
    """The inverse of sgm_to_diffusers for every VAE weight name."""
    def res(rest, table_inv, extra_inv=None):
        if extra_inv and rest in extra_inv:
            return extra_inv[rest]
        module, param = _split_param(rest)
        return f"{table_inv[module]}.{param}"

    def attn(rest):
        module, param = _split_param(rest)
        return f"{_ATTN_INV[module]}.{param}"

    mix_inv = {"time_mixer.mix_factor": "mix_factor"}
    if name.startswith("decoder."):
        r = name[len("decoder."):]
        m = re.fullmatch(r"(conv_in|conv_norm_out|conv_out)\.(weight|bias)", r)
        if m:
            return f"{DECODER_PREFIX}{'norm_out' if m[1] == 'conv_norm_out' else m[1]}.{m[2]}"
        m = re.fullmatch(r"time_conv_out\.(weight|bias)", r)
        if m:
            return f"{DECODER_PREFIX}conv_out.time_mix_conv.{m[1]}"
        m = re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", r)
        if m:
            return f"{DECODER_PREFIX}mid.block_{int(m[1]) + 1}.{res(m[2], _DEC_RES_INV, mix_inv)}"
        m = re.fullmatch(r"mid_block\.attentions\.0\.(.+)", r)
        if m:
            return f"{DECODER_PREFIX}mid.attn_1.{attn(m[1])}"
        m = re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", r)
        if m:
            return f"{DECODER_PREFIX}up.{num_levels - 1 - int(m[1])}.block.{m[2]}.{res(m[3], _DEC_RES_INV, mix_inv)}"
        m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)", r)
        if m:
            return f"{DECODER_PREFIX}up.{num_levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
    elif name.startswith("quant_conv."):
        return encoder_prefix + name
    elif name.startswith("encoder."):
        r = name[len("encoder."):]
        e = encoder_prefix + "encoder."
        m = re.fullmatch(r"(conv_in|conv_norm_out|conv_out)\.(weight|bias)", r)
        if m:
            return f"{e}{'norm_out' if m[1] == 'conv_norm_out' else m[1]}.{m[2]}"
        m = re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", r)
        if m:
            return f"{e}down.{m[1]}.block.{m[2]}.{res(m[3], _ENC_RES_INV)}"
        m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)", r)
        if m:
            return f"{e}down.{m[1]}.downsample.conv.{m[2]}"
        m = re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", r)
        if m:
            return f"{e}mid.block_{int(m[1]) + 1}.{res(m[2], _ENC_RES_INV)}"
        m = re.fullmatch(r"mid_block\.attentions\.0\.(.+)", r)
        if m:
            return f"{e}mid.attn_1.{attn(m[1])}"
    raise KeyError(name)


def _is_attn_linear(diffusers_name: str) -> bool:
    return bool(re.search(r"mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$", diffusers_name))


def find_encoder_prefix(keys) -> str:
    """Which embedder holds the conditioning VAE: SVD files use embedders.3, SV3D files embedders.1."""
    keys = list(keys)
    for p in ENCODER_PREFIXES:
        if any(k.startswith(p + "encoder.") for k in keys):
            return p
    from ..weights import CheckpointError

    raise CheckpointError("single file: no VAE encoder found (expected tensors under "
                          + " or ".join(p + "encoder." for p in ENCODER_PREFIXES) + ")")


def has_temporal_decoder(keys) -> bool:
    """True when a Stability single file's first-stage decoder has temporal parts (SVD's VideoDecoder), False for a
    plain 2-D decoder (SV3D's sgm Decoder) or no decoder."""
    return any(k.startswith(DECODER_PREFIX) and (".time_stack." in k or k.endswith(".mix_factor")
                                                 or ".time_mix_conv." in k) for k in keys)


def map_single_file(sf, num_levels: int):
    """LazyWeights of float32 tensors under diffusers names from an open SafetensorsFile `sf` (or any object with
    keys(), shape_of(name) and get_float32(name)): AutoencoderKLTemporalDecoder names for a temporal decoder (SVD),
    AutoencoderKL names for a 2-D one (SV3D). Unknown names raise CheckpointError naming the tensor; 1x1-conv
    attention weights (C, C, 1, 1) become linear (C, C)."""
    from ..weights import CheckpointError, LazyWeights

    path = getattr(sf, "path", "single file")
    keys = list(sf.keys())
    prefix = find_encoder_prefix(keys)
    decoder_2d = not has_temporal_decoder(keys)
    loaders, shapes, sources = {}, {}, {}
    for name in keys:
        try:
            new = sgm_to_diffusers(name, prefix, num_levels)
        except KeyError:
            raise CheckpointError(f"{path}: unexpected tensor {name!r} (not a VAE weight this model declares and "
                                  f"not on the ignore list)") from None
        if new is None:
            continue
        if decoder_2d and new.startswith("decoder."):  # the temporal map's spatial halves are the 2-D res blocks
            new = new.replace(_SPATIAL, "")
        if new in loaders:
            raise CheckpointError(f"{path}: tensors {sources[new]!r} and {name!r} both map to {new!r}")
        shape = tuple(sf.shape_of(name))
        if _is_attn_linear(new):
            if len(shape) == 4 and shape[2:] == (1, 1):
                shape = shape[:2]
            loaders[new] = (lambda n=name, s=shape: np.ascontiguousarray(sf.get_float32(n).reshape(s)))
        else:
            loaders[new] = (lambda n=name: sf.get_float32(n))
        shapes[new] = shape
        sources[new] = name
    return LazyWeights(loaders, shapes, {new: (sf, name) for new, name in sources.items()})


def to_single_file(weights, num_levels: int, encoder_prefix: str = ENCODER_PREFIXES[0]) -> dict:
    """A Stability single-file layout (sgm names, 1x1-conv attention weights) of a diffusers VAE state dict."""
    out = {}
    for name, value in weights.items():
        a = np.asarray(value)
        if _is_attn_linear(name) and a.ndim == 2:
            a = a.reshape(a.shape + (1, 1))
        out[diffusers_to_sgm(name, encoder_prefix, num_levels)] = np.ascontiguousarray(a)
    return out


# ---- SD 2.x: AutoencoderKL under first_stage_model. (encoder, quant_conv, post_quant_conv, 2-D decoder) ----------

KL_PREFIX = "first_stage_model."
# Everything of an SD 2.x single file that is not the VAE: the UNet, the text encoder, EMA copies, the training loss
# and the DDPM schedule buffers at the top level.
KL_IGNORED_PREFIXES = ("model.diffusion_model.", "cond_stage_model.", "model_ema.", "first_stage_model.loss.")
KL_IGNORED_NAMES = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar", "lvlb_weights",
})


def kl_sgm_to_diffusers(name: str, num_levels: int) -> str | None:
    """The AutoencoderKL name of an SD 2.x single-file tensor, None when ignored; KeyError for an unknown name. The
    decoder's ResnetBlocks are the temporal decoder's spatial halves, so the SVD map is reused without that level."""
    if name.startswith(KL_IGNORED_PREFIXES) or name in KL_IGNORED_NAMES:
        return None
    if not name.startswith(KL_PREFIX):
        raise KeyError(name)
    r = name[len(KL_PREFIX):]
    if re.fullmatch(r"(post_quant_conv|quant_conv)\.(weight|bias)", r):
        return r
    if r.startswith("encoder."):
        return sgm_to_diffusers("E." + r, "E.", num_levels)
    if r.startswith("decoder."):
        new = sgm_to_diffusers(name, ENCODER_PREFIXES[0], num_levels)
        if new is None or "temporal_res_block." in new or "time_" in new:
            raise KeyError(name)
        return new.replace(_SPATIAL, "")
    raise KeyError(name)


def map_kl_single_file(sf, num_levels: int):
    """LazyWeights (diffusers AutoencoderKL names) from an open SD 2.x single file; unknown names raise CheckpointError
    naming the tensor; 1x1-conv attention weights become linear."""
    from ..weights import CheckpointError, LazyWeights

    path = getattr(sf, "path", "single file")
    loaders, shapes, sources = {}, {}, {}
    for name in sf.keys():
        try:
            new = kl_sgm_to_diffusers(name, num_levels)
        except KeyError:
            raise CheckpointError(f"{path}: unexpected tensor {name!r} (not an AutoencoderKL weight and not on the "
                                  f"ignore list)") from None
        if new is None:
            continue
        if new in loaders:
            raise CheckpointError(f"{path}: tensors {sources[new]!r} and {name!r} both map to {new!r}")
        shape = tuple(sf.shape_of(name))
        if _is_attn_linear(new) and len(shape) == 4 and shape[2:] == (1, 1):
            shape = shape[:2]
            loaders[new] = (lambda n=name, s=shape: np.ascontiguousarray(sf.get_float32(n).reshape(s)))
        else:
            loaders[new] = (lambda n=name: sf.get_float32(n))
        shapes[new] = shape
        sources[new] = name
    return LazyWeights(loaders, shapes, {new: (sf, name) for new, name in sources.items()})


def kl_to_single_file(weights, num_levels: int) -> dict:
    """The SD 2.x single-file layout (first_stage_model.*, 1x1-conv attention weights) of an AutoencoderKL state
    dict."""
    out = {}
    for name, value in weights.items():
        a = np.asarray(value)
        if _is_attn_linear(name) and a.ndim == 2:
            a = a.reshape(a.shape + (1, 1))
        if name.startswith("post_quant_conv."):
            key = KL_PREFIX + name
        elif name.startswith("decoder."):
            temporal_name = re.sub(r"(resnets\.\d+\.)", r"\1" + _SPATIAL, name)
            key = diffusers_to_sgm(temporal_name, KL_PREFIX, num_levels)
        else:
            key = diffusers_to_sgm(name, KL_PREFIX, num_levels)
        out[key] = np.ascontiguousarray(a)
    return out
