"""svdc.VAE with an AutoencoderKL config (SD 2.x family) against diffusers (fp32, CPU, perturbed random weights):
encode (posterior mean) and decode (post_quant_conv + 2-D decoder) on two configs; folder and SD 2.x single-file
loading (first_stage_model.*, with the UNet / text encoder / DDPM buffers ignored); a wrong or missing tensor is a
CheckpointError naming it."""
from __future__ import annotations

import numpy as np
import pytest

import svdc
from svdc.configs import vae as vae_configs
from svdc.naming import vae as vae_naming
from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32

CONFIGS = {
    "2lvl-lpb1": dict(block_out_channels=[32, 64], layers_per_block=1, latent_channels=4),
    "3lvl-lpb2-groups16-latent3": dict(block_out_channels=[32, 32, 64], layers_per_block=2, latent_channels=3,
                                       norm_num_groups=16),
}


def kl_config(name):
    kw = CONFIGS[name]
    n = len(kw["block_out_channels"])
    return {"_class_name": "AutoencoderKL", "down_block_types": ["DownEncoderBlock2D"] * n,
            "up_block_types": ["UpDecoderBlock2D"] * n, **kw}


def reference(torch, cfg, seed=5):
    from diffusers import AutoencoderKL

    return perturb_parameters(AutoencoderKL(**{k: v for k, v in cfg.items() if not k.startswith("_")}).eval(), seed)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_encode_decode_parity(torch_cpu, name):
    cfg = kl_config(name)
    model = reference(torch_cpu, cfg)
    vae = svdc.VAE.from_config(cfg, state_dict_float32(model), device="cpu")
    assert not vae.is_temporal
    f = 2 ** (len(cfg["block_out_channels"]) - 1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 3, 8 * f, 6 * f)).astype(np.float32)
    z = rng.standard_normal((3, cfg["latent_channels"], 5, 7)).astype(np.float32)
    with torch_cpu.no_grad():
        ref_mean = model.encode(torch_cpu.from_numpy(x)).latent_dist.mean
        ref_dec = model.decode(torch_cpu.from_numpy(z)).sample  # post_quant_conv, then the decoder
    assert_parity(vae.encode(x), ref_mean, what="encode")
    assert_parity(vae.decode(z), ref_dec, what="decode")
    assert_parity(vae.decode(z, chunk_size=2), ref_dec, what="chunked decode")
    assert vae.num_parameters == sum(p.numel() for p in model.parameters())


def test_folder_and_single_file(torch_cpu, tmp_path):
    from svdc.weights import save_file

    cfg = kl_config("2lvl-lpb1")
    model = reference(torch_cpu, cfg, seed=6)
    model.save_pretrained(tmp_path / "vae")
    weights = state_dict_float32(model)
    single = vae_naming.kl_to_single_file(weights, 2)
    assert "first_stage_model.post_quant_conv.weight" in single
    assert "first_stage_model.decoder.up.1.block.0.norm1.weight" in single  # sgm counts levels from the top
    single.update({"betas": np.ones(3, np.float32), "model.diffusion_model.out.2.bias": np.ones(4, np.float32),
                   "cond_stage_model.model.ln_final.weight": np.ones(4, np.float32)})
    save_file(single, tmp_path / "sd2.safetensors")
    rng = np.random.default_rng(1)
    z = rng.standard_normal((1, 4, 4, 6)).astype(np.float32)
    x = rng.uniform(-1, 1, (1, 3, 16, 8)).astype(np.float32)
    with torch_cpu.no_grad():
        ref_dec = model.decode(torch_cpu.from_numpy(z)).sample
        ref_mean = model.encode(torch_cpu.from_numpy(x)).latent_dist.mean
    for vae in (svdc.VAE.from_pretrained(tmp_path / "vae", device="cpu"),
                svdc.VAE.from_pretrained(tmp_path / "sd2.safetensors", device="cpu", config=cfg)):
        assert_parity(vae.decode(z), ref_dec, what="decode")
        assert_parity(vae.encode(x), ref_mean, what="encode")
    # without a config, a file with no conditioner is read as SD 2.x's VAE (the full-size preset): the shapes differ
    with pytest.raises(svdc.CheckpointError, match="first_stage_model|decoder|encoder"):
        svdc.VAE.from_pretrained(tmp_path / "sd2.safetensors", device="cpu")
    bad = dict(single, **{"first_stage_model.decoder.up.0.block.0.time_stack.in_layers.0.weight":
                          np.ones(4, np.float32)})
    save_file(bad, tmp_path / "bad.safetensors")
    with pytest.raises(svdc.CheckpointError, match="time_stack"):
        svdc.VAE.from_pretrained(tmp_path / "bad.safetensors", device="cpu", config=cfg)


def test_checkpoint_errors_and_config(torch_cpu):
    cfg = kl_config("2lvl-lpb1")
    weights = state_dict_float32(reference(torch_cpu, cfg))
    missing = {k: v for k, v in weights.items() if k != "post_quant_conv.weight"}
    with pytest.raises(svdc.CheckpointError, match="post_quant_conv.weight"):
        svdc.VAE.from_config(cfg, missing, device="cpu")
    wrong = dict(weights, **{"decoder.mid_block.resnets.1.conv2.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(svdc.CheckpointError, match="decoder.mid_block.resnets.1.conv2.weight"):
        svdc.VAE.from_config(cfg, wrong, device="cpu")
    no_post = svdc.VAE.weight_shapes({**cfg, "use_post_quant_conv": False})
    assert "post_quant_conv.weight" not in no_post and "decoder.time_conv_out.weight" not in no_post
    for key, value in [("act_fn", "gelu"), ("use_quant_conv", False), ("mid_block_add_attention", False)]:
        with pytest.raises(ValueError, match=key):
            vae_configs.normalize({**cfg, key: value})
