"""svdc.UNet with a UNet2DConditionModel config (SD 2.x family) against diffusers (fp32, CPU, perturbed random
weights): small configs of 2-4 levels with per-level head counts, linear and conv projections, odd latent sizes,
batch 2, context lengths 77 and 5; folder and Stability single-file loading; a wrong or missing tensor is a
CheckpointError naming it; unsupported diffusers options are refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.configs import unet as unet_configs
from svdc.naming import unet as unet_naming
from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32


def sd2_config(levels=2, layers=1, attn=None, heads=None, linear=True, cross=32, channels=None, tdepth=1):
    """A tiny SD 2.x-like UNet2DConditionModel config: attention on every level but the last unless `attn` says."""
    attn = attn if attn is not None else [True] * (levels - 1) + [False]
    channels = channels or [32 * (i + 1) for i in range(levels)]
    down = ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn]
    up = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)]
    return {
        "_class_name": "UNet2DConditionModel",
        "sample_size": 8, "in_channels": 4, "out_channels": 4,
        "down_block_types": down, "up_block_types": up, "block_out_channels": channels,
        "layers_per_block": layers, "cross_attention_dim": cross,
        "attention_head_dim": heads if heads is not None else [2] * levels,  # SD 2.x: the head *count* per level
        "use_linear_projection": linear, "upcast_attention": True, "transformer_layers_per_block": tdepth,
    }


def reference(torch, cfg, seed=1):
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")}).eval()
    return perturb_parameters(model, seed=seed)


def inputs(cfg, b, h, w, ctx_len, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, cfg["in_channels"], h, w)).astype(np.float32)
    t = np.array([17.0, 803.0][:b], np.float32)
    e = rng.standard_normal((b, ctx_len, cfg["cross_attention_dim"])).astype(np.float32)
    return x, t, e


def run_ref(torch, model, x, t, e):
    with torch.no_grad():
        return model(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(e)).sample


# (config kwargs, batch, h, w, context length)
CASES = {
    "2lvl-linear-L77-odd-7x5": (dict(levels=2, heads=[2, 4]), 2, 7, 5, 77),
    "3lvl-lpb2-heads-per-level-L5": (dict(levels=3, layers=2, heads=[1, 2, 4]), 2, 8, 12, 5),
    "4lvl-sd2-pattern-odd-9x11-L77": (dict(levels=4, heads=[1, 2, 2, 4], channels=[32, 32, 64, 64]), 2, 9, 11, 77),
    "3lvl-conv-proj-tdepth2-L5": (dict(levels=3, linear=False, tdepth=2, attn=[True, False, True]), 2, 6, 6, 5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_sd2_configs(torch_cpu, name):
    kw, b, h, w, ctx_len = CASES[name]
    cfg = sd2_config(**kw)
    model = reference(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    assert unet.is_2d and unet.num_added_ids == 0
    x, t, e = inputs(cfg, b, h, w, ctx_len)
    out = unet(x, t, e)
    assert out.shape == (b, cfg["out_channels"], h, w) and out.dtype == np.float32
    print(f"{name}: max|svdc-ref|/max|ref| = {assert_parity(out, run_ref(torch_cpu, model, x, t, e)):.2e}")
    assert unet.num_parameters == sum(p.numel() for p in model.parameters())


def test_scalar_timestep_and_folder(torch_cpu, tmp_path):
    cfg = sd2_config(levels=2)
    model = reference(torch_cpu, cfg, seed=3)
    model.save_pretrained(tmp_path / "unet")
    unet = svdc.UNet.from_pretrained(tmp_path / "unet", device="cpu")
    assert unet.is_2d
    x, _, e = inputs(cfg, 2, 4, 6, 5)
    with torch_cpu.no_grad():
        ref = model(torch_cpu.from_numpy(x), 250, torch_cpu.from_numpy(e)).sample
    assert_parity(unet(x, 250, e), ref)


def test_single_file_layout(torch_cpu, tmp_path):
    """An SD 2.x Stability single file (model.diffusion_model.* + the text encoder, VAE and DDPM buffers, which are
    ignored) loads to the same model as the diffusers weights."""
    from svdc.weights import save_file

    cfg = sd2_config(levels=3, layers=2, heads=[1, 2, 2])
    model = reference(torch_cpu, cfg, seed=4)
    weights = state_dict_float32(model)
    single = unet_naming.to_single_file(weights, cfg)
    assert any(".in_layers.0." in k for k in single) and not any("spatial_res_block" in k for k in single)
    single.update({"betas": np.ones(3, np.float32), "cond_stage_model.x.weight": np.ones(2, np.float32),
                   "first_stage_model.decoder.conv_in.weight": np.ones(2, np.float32)})
    path = tmp_path / "sd2.safetensors"
    save_file(single, path)
    unet = svdc.UNet.from_pretrained(path, device="cpu", config=cfg)
    x, t, e = inputs(cfg, 2, 8, 8, 77)
    assert_parity(unet(x, t, e), run_ref(torch_cpu, model, x, t, e))
    assert svdc.UNet.from_config(cfg, weights, device="cpu").weight_shapes() == unet.weight_shapes()


def test_checkpoint_errors_name_the_tensor(torch_cpu):
    cfg = sd2_config(levels=2)
    weights = state_dict_float32(reference(torch_cpu, cfg))
    missing = dict(weights)
    del missing["down_blocks.0.attentions.0.proj_in.weight"]
    with pytest.raises(svdc.CheckpointError, match="down_blocks.0.attentions.0.proj_in.weight"):
        svdc.UNet.from_config(cfg, missing, device="cpu")
    wrong = dict(weights)
    wrong["mid_block.resnets.1.conv1.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(svdc.CheckpointError, match="mid_block.resnets.1.conv1.weight"):
        svdc.UNet.from_config(cfg, wrong, device="cpu")
    extra = dict(weights, **{"add_embedding.linear_1.weight": np.zeros((4, 4), np.float32)})
    with pytest.raises(svdc.CheckpointError, match="add_embedding.linear_1.weight"):
        svdc.UNet.from_config(cfg, extra, device="cpu")


def test_bad_inputs_and_unsupported_options():
    cfg = sd2_config(levels=2)
    unet = svdc.UNet.from_config(cfg, tiny.random_weights(svdc.UNet.weight_shapes(cfg), 0), device="cpu")
    x, t, e = inputs(cfg, 2, 4, 4, 5)
    with pytest.raises(ValueError, match="added_time_ids"):
        unet(x, t, e, np.zeros((2, 3), np.float32))
    with pytest.raises(svdc.ShapeError, match="sample"):
        unet(x[:, None], t, e)
    with pytest.raises(svdc.ShapeError, match="encoder_hidden_states"):
        unet(x, t, e[:, :, :5])
    for key, value in [("class_embed_type", "timestep"), ("addition_embed_type", "text_time"),
                       ("resnet_time_scale_shift", "scale_shift"), ("conv_in_kernel", 1)]:
        with pytest.raises(ValueError, match=key):
            unet_configs.to_native({**cfg, key: value})
    assert unet_configs.to_native({**cfg, "upcast_attention": True})["kind"] == unet_configs.KIND_2D
