"""Reference helpers for the UNet parity tests: small diffusers UNetSpatioTemporalConditionModel configs with every
parameter perturbed, random inputs, and a per-frame-conditioning reference built from diffusers' own blocks."""
from __future__ import annotations

import numpy as np

from tests.reference_helpers import perturb_parameters, state_dict_float32

CROSS = "CrossAttnDownBlockSpatioTemporal"
DOWN = "DownBlockSpatioTemporal"
UP = "UpBlockSpatioTemporal"
CROSS_UP = "CrossAttnUpBlockSpatioTemporal"


def small_config(levels: int = 2, layers=1, heads=(2, 4, 4, 4), channels=(32, 64, 64, 64), attn=None,
                 transformer_layers=1, cross=48, add_dim=8, n_ids=3, in_channels=8, out_channels=4) -> dict:
    """A tiny diffusers config: `levels` levels, attention on the levels where attn[i] (default: all but the last)."""
    attn = list(attn) if attn is not None else [True] * (levels - 1) + [False]
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "block_out_channels": list(channels[:levels]),
        "down_block_types": [CROSS if a else DOWN for a in attn],
        "up_block_types": [CROSS_UP if a else UP for a in reversed(attn)],
        "layers_per_block": layers,
        "num_attention_heads": list(heads[:levels]),
        "transformer_layers_per_block": transformer_layers,
        "cross_attention_dim": cross,
        "addition_time_embed_dim": add_dim,
        "projection_class_embeddings_input_dim": add_dim * n_ids,
    }


def reference_model(torch, config: dict, seed: int = 0):
    from diffusers import UNetSpatioTemporalConditionModel

    torch.manual_seed(seed)
    model = UNetSpatioTemporalConditionModel(**config).eval()
    perturb_parameters(model, seed=seed)
    return model


def random_inputs(config: dict, batch: int, frames: int, h: int, w: int, ctx_len: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_ids = config["projection_class_embeddings_input_dim"] // config["addition_time_embed_dim"]
    sample = rng.standard_normal((batch, frames, config["in_channels"], h, w)).astype(np.float32)
    timestep = (rng.standard_normal(batch) * 2).astype(np.float32)  # c_noise = 0.25 ln(sigma): can be negative
    ctx = rng.standard_normal((batch, ctx_len, config["cross_attention_dim"])).astype(np.float32)
    ids = (rng.random((batch, n_ids)) * np.array([10, 200, 0.1] * 4)[:n_ids]).astype(np.float32)
    return sample, timestep, ctx, ids


def run_reference(torch, model, sample, timestep, ctx, ids):
    with torch.no_grad():
        return model(torch.from_numpy(sample), torch.from_numpy(timestep), torch.from_numpy(ctx),
                     torch.from_numpy(ids)).sample.numpy()


def reference_with_emb(torch, model, sample, ctx, emb_rows):
    """diffusers' forward with the per-frame conditioning vector `emb_rows` (B*F, 4*C0) given instead of computed:
    the same block calls as UNetSpatioTemporalConditionModel.forward (0.42), for per-frame (SV3D) conditioning."""
    b, f = sample.shape[:2]
    with torch.no_grad():
        x = torch.from_numpy(sample).flatten(0, 1)
        emb = torch.from_numpy(emb_rows)
        ehs = torch.from_numpy(ctx).repeat_interleave(f, dim=0)
        x = model.conv_in(x)
        ind = torch.zeros(b, f, dtype=x.dtype)
        res = (x,)
        for blk in model.down_blocks:
            if getattr(blk, "has_cross_attention", False):
                x, r = blk(hidden_states=x, temb=emb, encoder_hidden_states=ehs, image_only_indicator=ind)
            else:
                x, r = blk(hidden_states=x, temb=emb, image_only_indicator=ind)
            res += r
        x = model.mid_block(hidden_states=x, temb=emb, encoder_hidden_states=ehs, image_only_indicator=ind)
        for blk in model.up_blocks:
            r, res = res[-len(blk.resnets):], res[: -len(blk.resnets)]
            if getattr(blk, "has_cross_attention", False):
                x = blk(hidden_states=x, temb=emb, res_hidden_states_tuple=r, encoder_hidden_states=ehs,
                        image_only_indicator=ind)
            else:
                x = blk(hidden_states=x, temb=emb, res_hidden_states_tuple=r, image_only_indicator=ind)
        x = model.conv_out(model.conv_act(model.conv_norm_out(x)))
        return x.reshape(b, f, *x.shape[1:]).numpy()


__all__ = ["small_config", "reference_model", "random_inputs", "run_reference", "reference_with_emb",
           "state_dict_float32"]
