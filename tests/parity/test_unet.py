"""svdc.UNet against diffusers' UNetSpatioTemporalConditionModel (fp32, CPU, random perturbed weights): small configs
of 2-4 levels, per-frame vector conditioning, the sgm epsilon preset, folder / pipeline / single-file loading, naming
on the full SVD config, bad inputs, and once the real SVD config at a tiny latent (slow)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import svdc
from svdc.configs import unet as unet_configs
from svdc.naming import unet as unet_naming
from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32
from tests.parity._unet_reference import (
    random_inputs,
    reference_model,
    reference_with_emb,
    run_reference,
    small_config,
)

# (config kwargs, batch, frames, h, w, context length). The deepest level keeps >= 2x2 positions: a group norm over a
# handful of values (2 channels per group x 1 position) is so ill-conditioned that fp32 rounding alone (torch's too)
# moves the output by ~1e-4 of its range, which would test the conditioning rather than the port.
CASES = {
    "2lvl-F3-B2-nonsquare": (dict(levels=2, layers=1), 2, 3, 8, 6, 1),
    "3lvl-lpb2-F5-B2": (dict(levels=3, layers=2), 2, 5, 8, 12, 1),
    "4lvl-mixed-attn-F1": (dict(levels=4, layers=1, attn=[True, False, True, False]), 2, 1, 16, 24, 1),
    "3lvl-per-level-layers-tdepth2-F2": (dict(levels=3, layers=[1, 2, 1], transformer_layers=2), 2, 2, 8, 4, 1),
    "3lvl-odd-latent-7x5": (dict(levels=3, layers=1, transformer_layers=[1, 2, 1]), 1, 2, 7, 5, 1),
    "2lvl-context-L4": (dict(levels=2, layers=1, heads=(4, 8)), 2, 3, 6, 8, 4),
    "4lvl-heads1-lpb2-F2": (dict(levels=4, layers=2, heads=(1, 2, 2, 1)), 1, 2, 16, 16, 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_small_configs(torch_cpu, name):
    kw, b, f, h, w, ctx_len = CASES[name]
    cfg = small_config(**kw)
    model = reference_model(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    sample, t, ctx, ids = random_inputs(cfg, b, f, h, w, ctx_len=ctx_len, seed=1)
    ref = run_reference(torch_cpu, model, sample, t, ctx, ids)
    out = unet(sample, t, ctx, ids)
    assert out.dtype == np.float32
    print(f"{name}: max|svdc-ref|/max|ref| = {assert_parity(out, ref):.2e}, arena peak {unet.last_peak_bytes} B")
    assert unet.last_peak_bytes > 0
    assert unet.num_parameters == sum(p.numel() for p in model.parameters())


def test_scalar_timestep_and_python_numbers(torch_cpu):
    cfg = small_config(levels=2)
    model = reference_model(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    sample, _, ctx, ids = random_inputs(cfg, 2, 2, 4, 4)
    with torch_cpu.no_grad():
        ref = model(torch_cpu.from_numpy(sample), -0.75, torch_cpu.from_numpy(ctx), torch_cpu.from_numpy(ids)).sample
    assert_parity(unet(sample, -0.75, ctx, ids), ref)
    # float64 / non-contiguous inputs are converted explicitly
    out64 = unet(sample.astype(np.float64), np.float64(-0.75), np.asfortranarray(ctx), ids.astype(np.float64))
    assert_parity(out64, ref)


# ---- the sgm epsilon preset --------------------------------------------------------------------------------------

def _patch_resnet_eps(torch, model, eps):
    from diffusers.models.resnet import SpatioTemporalResBlock

    for mod in model.modules():
        if isinstance(mod, SpatioTemporalResBlock):
            for block in (mod.spatial_res_block, mod.temporal_res_block):
                block.norm1.eps = eps
                block.norm2.eps = eps


def test_sgm_eps_matches_patched_reference(torch_cpu):
    cfg = small_config(levels=3, layers=1)
    model = reference_model(torch_cpu, cfg)
    weights = state_dict_float32(model)
    sample, t, ctx, ids = random_inputs(cfg, 1, 3, 8, 8, seed=3)
    sample *= 1e-3  # small activations make the epsilon visible
    ref_diffusers = run_reference(torch_cpu, model, sample, t, ctx, ids)
    _patch_resnet_eps(torch_cpu, model, 1e-5)
    ref_sgm = run_reference(torch_cpu, model, sample, t, ctx, ids)

    out_sgm = svdc.UNet.from_config({**cfg, "resnet_eps": "sgm"}, weights, device="cpu")(sample, t, ctx, ids)
    out_diffusers = svdc.UNet.from_config(cfg, weights, device="cpu")(sample, t, ctx, ids)
    assert_parity(out_sgm, ref_sgm)
    assert_parity(out_diffusers, ref_diffusers)
    # the two conventions really differ, each side reproduces its own reference more closely than the other one
    assert np.abs(out_sgm - out_diffusers).max() > 0
    assert np.abs(out_sgm - ref_sgm).max() < np.abs(out_sgm - ref_diffusers).max()


# ---- per-frame vector conditioning (SV3D) ----------------------------------------------------------------------

def _reference_emb_rows(torch, model, t, ids_rows, frames):
    """diffusers' embedding maths applied to one added-ids row per frame: (B*F, 4*C0)."""
    with torch.no_grad():
        temb = model.time_embedding(model.time_proj(torch.from_numpy(t)).float())
        temb = temb.repeat_interleave(frames, dim=0)
        rows = torch.from_numpy(ids_rows)
        aug = model.add_embedding(model.add_time_proj(rows.flatten()).reshape(rows.shape[0], -1).float())
        return (temb + aug).numpy()


def test_embedding_rows_per_frame(torch_cpu):
    cfg = small_config(levels=2)
    model = reference_model(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    b, f = 2, 4
    _, t, _, ids = random_inputs(cfg, b, f, 4, 4, seed=5)
    per_video = unet.embedding(t, ids, f)
    equal_rows = unet.embedding(t, np.repeat(ids[:, None], f, axis=1), f, batch=b)
    assert np.array_equal(per_video, equal_rows)  # equal rows are exactly the per-video result
    assert_parity(per_video, _reference_emb_rows(torch_cpu, model, t, np.repeat(ids, f, axis=0), f))

    per_frame = np.repeat(ids[:, None], f, axis=1).copy()
    per_frame[1, 2] += np.array([1.0, -30.0, 0.05], np.float32)  # video 1, frame 2 only
    emb = unet.embedding(t, per_frame, f, batch=b)
    changed = np.any(emb != per_video, axis=1)
    assert changed.tolist() == [r == 1 * f + 2 for r in range(b * f)]  # only its own row changes
    assert_parity(emb, _reference_emb_rows(torch_cpu, model, t, per_frame.reshape(b * f, -1), f))


def test_forward_per_frame_conditioning(torch_cpu):
    cfg = small_config(levels=3, layers=1)
    model = reference_model(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    b, f = 2, 3
    sample, t, ctx, ids = random_inputs(cfg, b, f, 8, 8, seed=7)
    per_video = unet(sample, t, ctx, ids)
    equal = unet(sample, t, ctx, np.repeat(ids[:, None], f, axis=1))
    assert np.array_equal(per_video, equal)

    per_frame = np.repeat(ids[:, None], f, axis=1).copy()
    per_frame[0, 1] += np.array([2.0, 50.0, 0.3], np.float32)
    out = unet(sample, t, ctx, per_frame)
    emb = _reference_emb_rows(torch_cpu, model, t, per_frame.reshape(b * f, -1), f)
    assert_parity(out, reference_with_emb(torch_cpu, model, sample, ctx, emb))
    # videos are independent: video 1 is untouched; inside video 0 the temporal layers carry the change of frame 1
    # to the other frames too, so every frame of video 0 differs
    assert np.array_equal(out[1], per_video[1])
    assert all(np.abs(out[0, k] - per_video[0, k]).max() > 0 for k in range(f))


def test_single_frame_videos_are_independent_per_frame_rows(torch_cpu):
    """With F = 1 nothing mixes across frames, so per-frame rows act exactly like separate videos."""
    cfg = small_config(levels=2)
    model = reference_model(torch_cpu, cfg)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    sample, t, ctx, ids = random_inputs(cfg, 3, 1, 6, 6, seed=9)
    ref = run_reference(torch_cpu, model, sample, t, ctx, ids)
    assert_parity(unet(sample, t, ctx, ids[:, None]), ref)


# ---- loading -----------------------------------------------------------------------------------------------------

@pytest.fixture
def saved_small(torch_cpu, tmp_path):
    cfg = small_config(levels=3, layers=1, attn=[True, True, False])
    model = reference_model(torch_cpu, cfg)
    folder = tmp_path / "unet"
    model.save_pretrained(folder)
    return cfg, model, folder


def test_folder_pipeline_and_single_file_agree(torch_cpu, saved_small, tmp_path):
    cfg, model, folder = saved_small
    sample, t, ctx, ids = random_inputs(cfg, 2, 2, 8, 8, seed=11)
    ref = run_reference(torch_cpu, model, sample, t, ctx, ids)
    weights = state_dict_float32(model)

    from_folder = svdc.UNet.from_pretrained(folder, device="cpu")
    out_folder = from_folder(sample, t, ctx, ids)
    assert_parity(out_folder, ref)
    assert np.array_equal(out_folder, svdc.UNet.from_config(cfg, weights, device="cpu")(sample, t, ctx, ids))

    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableVideoDiffusionPipeline", "unet": ["diffusers", "UNetSpatioTemporalConditionModel"]}))
    assert np.array_equal(svdc.UNet.from_pretrained(tmp_path, device="cpu")(sample, t, ctx, ids), out_folder)

    # Stability single-file layout: the inverse map, plus tensors of other components that must be ignored
    single = unet_naming.to_single_file(weights, cfg)
    single["conditioner.embedders.0.open_clip.model.visual.proj"] = np.ones((4, 3), np.float32)
    single["first_stage_model.decoder.conv_in.weight"] = np.ones((2, 2, 3, 3), np.float16)
    path = tmp_path / "svd_tiny.safetensors"
    svdc.weights.save_file(single, path)
    keep_eps = {**cfg, "resnet_eps": "diffusers"}
    out_single = svdc.UNet.from_pretrained(path, device="cpu", config=keep_eps)(sample, t, ctx, ids)
    assert np.array_equal(out_single, out_folder)
    # single files default to the sgm epsilon
    sgm = svdc.UNet.from_pretrained(path, device="cpu", config=cfg)
    assert sgm.config["resnet_eps"] == "sgm"
    assert np.array_equal(sgm(sample, t, ctx, ids),
                          svdc.UNet.from_config({**cfg, "resnet_eps": "sgm"}, weights, device="cpu")(
                              sample, t, ctx, ids))


def test_single_file_errors(saved_small, tmp_path):
    cfg, model, _ = saved_small
    weights = state_dict_float32(model)
    single = unet_naming.to_single_file(weights, cfg)
    # without a config the preset is chosen from label_emb.0.0's width (24 is none of 768 / 256 / 1280)
    path = tmp_path / "tiny.safetensors"
    svdc.weights.save_file(single, path)
    with pytest.raises(svdc.CheckpointError, match="label_emb.0.0.weight"):
        svdc.UNet.from_pretrained(path, device="cpu")
    # an unknown UNet tensor is named
    bad = dict(single)
    bad["model.diffusion_model.input_blocks.1.0.bogus.weight"] = np.zeros(3, np.float32)
    svdc.weights.save_file(bad, tmp_path / "bad.safetensors")
    with pytest.raises(svdc.CheckpointError, match="input_blocks.1.0.bogus.weight"):
        svdc.UNet.from_pretrained(tmp_path / "bad.safetensors", device="cpu", config=cfg)
    # a tensor outside the UNet and outside the ignore list is named
    bad = dict(single)
    bad["lora_unet.transformer.weight"] = np.zeros(1, np.float32)
    svdc.weights.save_file(bad, tmp_path / "bad2.safetensors")
    with pytest.raises(svdc.CheckpointError, match="lora_unet.transformer.weight"):
        svdc.UNet.from_pretrained(tmp_path / "bad2.safetensors", device="cpu", config=cfg)
    # a missing tensor is named
    missing = {k: v for k, v in single.items() if not k.endswith("time_stack.in_layers.2.weight")}
    svdc.weights.save_file(missing, tmp_path / "missing.safetensors")
    with pytest.raises(svdc.CheckpointError, match="temporal_res_block.conv1.weight"):
        svdc.UNet.from_pretrained(tmp_path / "missing.safetensors", device="cpu", config=cfg)


def test_weight_table_errors(torch_cpu):
    cfg = small_config(levels=2)
    weights = state_dict_float32(reference_model(torch_cpu, cfg))
    extra = {**weights, "down_blocks.0.attentions.0.unused.weight": np.zeros(2, np.float32)}
    with pytest.raises(svdc.CheckpointError, match="unused.weight"):
        svdc.UNet.from_config(cfg, extra, device="cpu")
    name = "mid_block.attentions.0.temporal_transformer_blocks.0.attn2.to_k.weight"
    with pytest.raises(svdc.CheckpointError, match=name):
        svdc.UNet.from_config(cfg, {k: v for k, v in weights.items() if k != name}, device="cpu")
    with pytest.raises(svdc.CheckpointError, match=name):
        svdc.UNet.from_config(cfg, {**weights, name: weights[name][:, :-1].copy()}, device="cpu")
    # fp16 weights are converted explicitly
    half = {k: v.astype(np.float16) for k, v in weights.items()}
    assert svdc.UNet.from_config(cfg, half, device="cpu").num_parameters == sum(v.size for v in weights.values())


# ---- naming on the full SVD config (meta device: no memory) -------------------------------------------------------

def test_naming_full_svd_config(torch_cpu):
    from diffusers import UNetSpatioTemporalConditionModel

    with torch_cpu.device("meta"):
        names = list(UNetSpatioTemporalConditionModel().state_dict())
    cfg = unet_configs.preset("svd_xt")
    single = unet_naming.to_single_file({n: None for n in names}, cfg)
    assert len(single) == len(names) == 1428  # 1428 UNet tensors in svd.safetensors
    back = unet_naming.single_file_names(list(single) + ["conditioner.embedders.3.encoder.x",
                                                          "first_stage_model.decoder.y"], cfg)
    assert back == dict(zip(names, single))  # a bijection: each diffusers name round-trips to its own sgm name
    p = unet_naming.SGM_PREFIX
    spot = {  # diffusers single_file_utils.convert_ldm_unet_checkpoint
        "input_blocks.0.0.weight": "conv_in.weight",
        "input_blocks.1.0.time_stack.in_layers.2.weight": "down_blocks.0.resnets.0.temporal_res_block.conv1.weight",
        "input_blocks.1.0.emb_layers.1.weight": "down_blocks.0.resnets.0.spatial_res_block.time_emb_proj.weight",
        "input_blocks.1.0.time_mixer.mix_factor": "down_blocks.0.resnets.0.time_mixer.mix_factor",
        "input_blocks.1.1.time_stack.0.ff_in.net.0.proj.weight":
            "down_blocks.0.attentions.0.temporal_transformer_blocks.0.ff_in.net.0.proj.weight",
        "input_blocks.1.1.time_pos_embed.0.weight": "down_blocks.0.attentions.0.time_pos_embed.linear_1.weight",
        "input_blocks.3.0.op.weight": "down_blocks.0.downsamplers.0.conv.weight",
        "input_blocks.4.0.skip_connection.weight": "down_blocks.1.resnets.0.spatial_res_block.conv_shortcut.weight",
        "input_blocks.11.0.out_layers.3.bias": "down_blocks.3.resnets.1.spatial_res_block.conv2.bias",
        "middle_block.1.proj_in.weight": "mid_block.attentions.0.proj_in.weight",
        "middle_block.2.time_stack.out_layers.0.weight": "mid_block.resnets.1.temporal_res_block.norm2.weight",
        "output_blocks.0.0.skip_connection.weight": "up_blocks.0.resnets.0.spatial_res_block.conv_shortcut.weight",
        "output_blocks.2.1.conv.weight": "up_blocks.0.upsamplers.0.conv.weight",
        "output_blocks.5.2.conv.weight": "up_blocks.1.upsamplers.0.conv.weight",
        "output_blocks.8.2.conv.bias": "up_blocks.2.upsamplers.0.conv.bias",
        "output_blocks.11.1.time_mixer.mix_factor": "up_blocks.3.attentions.2.time_mixer.mix_factor",
        "label_emb.0.2.weight": "add_embedding.linear_2.weight",
        "time_embed.0.bias": "time_embedding.linear_1.bias",
        "out.0.weight": "conv_norm_out.weight",
        "out.2.weight": "conv_out.weight",
    }
    for s, d in spot.items():
        assert p + s in single, s
        assert back[d] == p + s


def test_presets():
    assert unet_configs.preset_for_adm_width(768) == "svd"
    assert unet_configs.preset_for_adm_width(256) == "sv3d_u"
    assert unet_configs.preset_for_adm_width(1280) == "sv3d_p"
    assert unet_configs.to_native(unet_configs.preset("sv3d_p"))["id_widths"] == [256, 512, 512]
    assert unet_configs.to_native(unet_configs.preset("sv3d_u"))["id_widths"] == [256]
    n = unet_configs.to_native(unet_configs.preset("svd"))
    assert n["id_widths"] == [256] * 3 and n["sgm_eps"] == 1 and n["num_attention_heads"] == [5, 10, 20, 20]
    assert unet_configs.to_native({})["sgm_eps"] == 0  # diffusers folders keep the diffusers epsilons
    with pytest.raises(ValueError, match="512"):
        unet_configs.preset_for_adm_width(512)


# ---- bad inputs --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_unet():
    import torch

    cfg = small_config(levels=2)
    return svdc.UNet.from_config(cfg, state_dict_float32(reference_model(torch, cfg)), device="cpu"), cfg


def test_bad_inputs(tiny_unet):
    unet, cfg = tiny_unet
    sample, t, ctx, ids = random_inputs(cfg, 2, 3, 4, 4)
    ok = unet(sample, t, ctx, ids)
    assert ok.shape == (2, 3, 4, 4, 4)

    with pytest.raises(svdc.ShapeError, match=r"sample: expected 8 channels.*got 5"):
        unet(sample[:, :, :5], t, ctx, ids)
    with pytest.raises(svdc.ShapeError, match="sample: expected shape"):
        unet(sample[0], t, ctx, ids)
    with pytest.raises(svdc.ShapeError, match="sample: every dimension"):
        unet(sample[:, :, :, :0], t, ctx, ids)
    with pytest.raises(svdc.ShapeError, match=r"encoder_hidden_states: expected shape \(2, L, 48\)"):
        unet(sample, t, ctx[:, :, :40], ids)
    with pytest.raises(svdc.ShapeError, match="encoder_hidden_states"):
        unet(sample, t, ctx[:1], ids)
    with pytest.raises(svdc.ShapeError, match=r"added_time_ids: expected shape \(2, 3\)"):
        unet(sample, t, ctx, ids[:, :2])
    with pytest.raises(svdc.ShapeError, match="added_time_ids"):
        unet(sample, t, ctx, np.repeat(ids[:, None], 2, axis=1))  # 2 rows per video for 3 frames
    with pytest.raises(svdc.ShapeError, match="timestep"):
        unet(sample, np.zeros(3, np.float32), ctx, ids)
    for arg in range(4):
        args = [sample.copy(), t.copy(), ctx.copy(), ids.copy()]
        args[arg].reshape(-1)[0] = np.nan if arg % 2 else np.inf
        name = ["sample", "timestep", "encoder_hidden_states", "added_time_ids"][arg]
        with pytest.raises(ValueError, match=f"{name}: expected finite values"):
            unet(*args)
    with pytest.raises(TypeError, match="sample"):
        unet(sample.astype(np.complex64), t, ctx, ids)
    # the C layer checks too (the binding is reachable directly)
    with pytest.raises(svdc.ShapeError, match="sample"):
        unet._native.forward(sample.reshape(6, 8, 4, 4), 4, t, ctx, np.repeat(ids, 3, axis=0))
    # nothing half-done: the object still works
    assert np.array_equal(unet(sample, t, ctx, ids), ok)


def test_bad_config_and_device(tiny_unet):
    unet, cfg = tiny_unet
    with pytest.raises(ValueError, match=r"dtype: expected None, 'fp32', 'fp16' or 'bf16'"):
        svdc.UNet.from_config(cfg, {}, device="cpu", dtype="fp8")
    with pytest.raises(ValueError, match="num_attention_heads"):
        svdc.UNet.from_config({**cfg, "num_attention_heads": [3, 4]}, {}, device="cpu")
    with pytest.raises(ValueError, match="up_block_types"):
        svdc.UNet.from_config({**cfg, "up_block_types": cfg["up_block_types"][:1]}, {}, device="cpu")
    with pytest.raises(ValueError, match="multiple of 32"):
        svdc.UNet.from_config({**cfg, "block_out_channels": [32, 48]}, {}, device="cpu")
    if not any(d.startswith("cuda") for d in svdc.devices()):
        with pytest.raises(svdc.DeviceUnavailableError):
            svdc.UNet.from_config(cfg, {}, device="cuda")


# ---- the real SVD config at a tiny latent --------------------------------------------------------------------------

@pytest.mark.slow
def test_parity_full_svd_config(torch_cpu):
    """The 1.5 B-parameter config (random weights) at 16x16, F = 2, B = 1; ~12 GB at peak."""
    from diffusers import UNetSpatioTemporalConditionModel

    torch_cpu.manual_seed(0)
    model = UNetSpatioTemporalConditionModel().eval()
    perturb_parameters(model, seed=0)
    cfg = dict(model.config)
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((1, 2, 8, 16, 16)).astype(np.float32)
    t = np.array([0.25 * np.log(7.0)], np.float32)
    ctx = rng.standard_normal((1, 1, 1024)).astype(np.float32)
    ids = np.array([[6.0, 127.0, 0.02]], np.float32)
    ref = run_reference(torch_cpu, model, sample, t, ctx, ids)
    unet = svdc.UNet.from_config(cfg, state_dict_float32(model), device="cpu")
    n_ref = sum(p.numel() for p in model.parameters())
    del model  # free the torch copy before svdc runs
    assert unet.num_parameters == n_ref == 1_524_623_082  # counted from the SVD single file
    print(f"full SVD config: max|svdc-ref|/max|ref| = {assert_parity(unet(sample, t, ctx, ids), ref):.2e}")
