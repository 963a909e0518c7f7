"""svdc.VAE against diffusers' AutoencoderKLTemporalDecoder (random perturbed weights, fp32, CPU): encode, decode with
1 / odd / several videos, chunked decode vs the pipeline's decode_latents loop, folder and single-file loads, bad
input."""
import numpy as np
import pytest

from tests.reference_helpers import assert_parity
from _vae_reference import (make_reference, reference_decode, reference_encode, reference_pipeline_decode)

import svdc
from svdc.naming import vae as naming

# Small configs diffusers accepts (its group norms have 32 groups, so channels are multiples of 32).
CONFIGS = {
    "two_levels": dict(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2, layers_per_block=1),
    "one_level": dict(block_out_channels=[32], down_block_types=["DownEncoderBlock2D"], layers_per_block=2,
                      in_channels=4, out_channels=2, latent_channels=3),
    "three_levels": dict(block_out_channels=[32, 32, 64], down_block_types=["DownEncoderBlock2D"] * 3,
                         layers_per_block=2),
    "lpb3": dict(block_out_channels=[64, 32], down_block_types=["DownEncoderBlock2D"] * 2, layers_per_block=3,
                 latent_channels=2),
}


def _factor(cfg):
    return 2 ** (len(cfg["block_out_channels"]) - 1)


def _cfg(cfg):
    full = dict(in_channels=3, out_channels=3, latent_channels=4)
    full.update(cfg)
    return full


_CACHE = {}


def _models(torch, name):
    """(reference, svdc) for a named config, built once per session."""
    if name not in _CACHE:
        cfg = _cfg(CONFIGS[name]) if name != "svd" else _svd_config()
        ref, weights = make_reference(torch, cfg, seed=len(name))
        _CACHE[name] = (ref, svdc.VAE.from_config(cfg, weights, device="cpu"), cfg, weights)
    return _CACHE[name]


def _svd_config():
    from svdc.configs import vae as vae_configs

    return {k: v for k, v in vae_configs.preset("svd").items() if k != "_class_name"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_encode_parity(torch_cpu, name):
    ref, vae, cfg, _ = _models(torch_cpu, name)
    f = _factor(cfg)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, cfg["in_channels"], 3 * f, 5 * f)).astype(np.float32)
    out = vae.encode(x)
    assert out.shape == (2, cfg["latent_channels"], 3, 5)
    assert_parity(out, reference_encode(torch_cpu, ref, x), what=f"{name} encode")
    assert vae.last_peak_bytes > 0


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("frames,videos", [(1, 1), (3, 1), (2, 2), (5, 1), (1, 3)])
def test_decode_parity(torch_cpu, name, frames, videos):
    ref, vae, cfg, _ = _models(torch_cpu, name)
    rng = np.random.default_rng(frames * 10 + videos)
    z = rng.standard_normal((frames * videos, cfg["latent_channels"], 3, 4)).astype(np.float32)
    out = vae.decode(z, num_frames=frames)
    f = _factor(cfg)
    assert out.shape == (frames * videos, cfg["out_channels"], 3 * f, 4 * f)
    assert_parity(out, reference_decode(torch_cpu, ref, z, frames), what=f"{name} decode F={frames} B={videos}")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 10, 14])
def test_chunked_decode_matches_pipeline(torch_cpu, chunk):
    ref, vae, cfg, _ = _models(torch_cpu, "two_levels")
    rng = np.random.default_rng(chunk)
    z = rng.standard_normal((10, cfg["latent_channels"], 3, 3)).astype(np.float32)  # 2 videos of 5 frames
    out = vae.decode(z, num_frames=5, chunk_size=chunk)
    assert_parity(out, reference_pipeline_decode(torch_cpu, ref, z, chunk), what=f"chunk {chunk}")


def test_chunking_changes_the_result(torch_cpu):
    """Chunks are separate clips (zero temporal padding and GN statistics per chunk), so chunk 2 != whole."""
    _, vae, cfg, _ = _models(torch_cpu, "two_levels")
    z = np.random.default_rng(0).standard_normal((6, cfg["latent_channels"], 3, 3)).astype(np.float32)
    whole, chunked = vae.decode(z, num_frames=6), vae.decode(z, num_frames=6, chunk_size=2)
    assert np.max(np.abs(whole - chunked)) > 1e-3 * np.max(np.abs(whole))
    assert np.array_equal(vae.decode(z, num_frames=6, chunk_size=6), whole)


@pytest.mark.slow
def test_svd_config_parity(torch_cpu):
    """The real SVD VAE sizes at 64x64 with 3 frames."""
    ref, vae, cfg, _ = _models(torch_cpu, "svd")
    assert vae.num_parameters == sum(p.numel() for p in ref.parameters()) == 97_742_847
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    assert_parity(vae.encode(x), reference_encode(torch_cpu, ref, x), what="svd encode")
    z = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    assert_parity(vae.decode(z, num_frames=3), reference_decode(torch_cpu, ref, z, 3), what="svd decode")
    assert_parity(vae.decode(z, num_frames=3, chunk_size=2), reference_pipeline_decode(torch_cpu, ref, z, 2),
                  what="svd chunked decode")


# ------------------------------------------------------------------------------------------------------ loading

def _outputs(vae, cfg):
    rng = np.random.default_rng(7)
    f = _factor(cfg)
    x = rng.uniform(-1, 1, (1, cfg["in_channels"], 2 * f, 3 * f)).astype(np.float32)
    z = rng.standard_normal((3, cfg["latent_channels"], 2, 3)).astype(np.float32)
    return vae.encode(x), vae.decode(z, num_frames=3)


def _has_loading():
    try:
        import svdc.models._loading  # noqa: F401
        import svdc.weights  # noqa: F401
    except ImportError:
        return False
    return True


needs_loading = pytest.mark.skipif(not _has_loading(), reason="svdc.weights / models._loading not merged yet")


@needs_loading
def test_folder_and_single_file_loads_agree(torch_cpu, tmp_path):
    from svdc.weights import save_file

    ref, vae, cfg, weights = _models(torch_cpu, "three_levels")
    expected = _outputs(vae, cfg)
    ref.save_pretrained(tmp_path / "vae")
    from_folder = svdc.VAE.from_pretrained(tmp_path / "vae", device="cpu")
    for a, b in zip(_outputs(from_folder, cfg), expected):
        assert np.array_equal(a, b)
    # A pipeline folder resolves to its vae/ subfolder.
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableVideoDiffusionPipeline", '
                                               '"vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}')
    from_pipeline = svdc.VAE.from_pretrained(tmp_path, device="cpu")
    for a, b in zip(_outputs(from_pipeline, cfg), expected):
        assert np.array_equal(a, b)

    # A Stability single file: sgm names, 1x1-conv attention, plus tensors on the ignore list.
    levels = len(cfg["block_out_channels"])
    single = naming.to_single_file(weights, levels)
    assert "first_stage_model.decoder.conv_out.time_mix_conv.weight" in single
    assert f"first_stage_model.decoder.up.{levels - 1}.block.0.mix_factor" in single
    assert "conditioner.embedders.3.encoder.encoder.mid.attn_1.q.weight" in single
    single["model.diffusion_model.input_blocks.0.0.weight"] = np.zeros((2, 2), np.float32)
    single["conditioner.embedders.3.encoder.post_quant_conv.weight"] = np.zeros((8, 8, 1, 1), np.float32)
    single["conditioner.embedders.3.encoder.decoder.conv_in.weight"] = np.zeros((2, 2), np.float32)
    single["conditioner.embedders.0.open_clip.model.visual.proj"] = np.zeros((2, 2), np.float32)
    path = tmp_path / "svd.safetensors"
    save_file(single, path)
    from_single = svdc.VAE.from_pretrained(path, device="cpu", config=cfg)
    for a, b in zip(_outputs(from_single, cfg), expected):
        assert np.array_equal(a, b)

    # SV3D files keep the conditioning VAE in embedders.1.
    sv3d = naming.to_single_file(weights, levels, encoder_prefix="conditioner.embedders.1.encoder.")
    save_file(sv3d, tmp_path / "sv3d.safetensors")
    from_sv3d = svdc.VAE.from_pretrained(tmp_path / "sv3d.safetensors", device="cpu", config=cfg)
    for a, b in zip(_outputs(from_sv3d, cfg), expected):
        assert np.array_equal(a, b)


@needs_loading
def test_single_file_errors_name_the_tensor(torch_cpu, tmp_path):
    from svdc.weights import save_file

    _, _, cfg, weights = _models(torch_cpu, "two_levels")
    single = naming.to_single_file(weights, 2)
    bad = dict(single, **{"first_stage_model.decoder.mid.block_1.extra.weight": np.zeros(3, np.float32)})
    save_file(bad, tmp_path / "unknown.safetensors")
    with pytest.raises(svdc.CheckpointError, match="mid.block_1.extra.weight"):
        svdc.VAE.from_pretrained(tmp_path / "unknown.safetensors", device="cpu", config=cfg)
    missing = dict(single)
    del missing["first_stage_model.decoder.conv_out.time_mix_conv.bias"]
    save_file(missing, tmp_path / "missing.safetensors")
    with pytest.raises(svdc.CheckpointError, match="decoder.time_conv_out.bias"):
        svdc.VAE.from_pretrained(tmp_path / "missing.safetensors", device="cpu", config=cfg)
    shaped = dict(single)
    shaped["conditioner.embedders.3.encoder.quant_conv.bias"] = np.zeros(9, np.float32)
    save_file(shaped, tmp_path / "shape.safetensors")
    with pytest.raises(svdc.CheckpointError, match="quant_conv.bias"):
        svdc.VAE.from_pretrained(tmp_path / "shape.safetensors", device="cpu", config=cfg)
    no_encoder = {k: v for k, v in single.items() if not k.startswith("conditioner.")}
    save_file(no_encoder, tmp_path / "noenc.safetensors")
    with pytest.raises(svdc.CheckpointError, match="no VAE encoder"):
        svdc.VAE.from_pretrained(tmp_path / "noenc.safetensors", device="cpu", config=cfg)


def test_from_config_weight_errors(torch_cpu):
    _, _, cfg, weights = _models(torch_cpu, "two_levels")
    missing = dict(weights)
    del missing["decoder.mid_block.resnets.0.time_mixer.mix_factor"]
    with pytest.raises(svdc.CheckpointError, match="time_mixer.mix_factor"):
        svdc.VAE.from_config(cfg, missing, device="cpu")
    extra = dict(weights, **{"decoder.bogus.weight": np.zeros(1, np.float32)})
    with pytest.raises(svdc.CheckpointError, match="decoder.bogus.weight"):
        svdc.VAE.from_config(cfg, extra, device="cpu")
    wrong = dict(weights, **{"encoder.conv_in.weight": np.zeros((32, 3, 3, 1), np.float32)})
    with pytest.raises(svdc.CheckpointError, match="encoder.conv_in.weight"):
        svdc.VAE.from_config(cfg, wrong, device="cpu")


def test_naming_round_trip():
    """Every diffusers name of the SVD VAE maps to an sgm name and back, with the spec's renames."""
    names = _svd_diffusers_names()
    prefix = naming.ENCODER_PREFIXES[0]
    for name in names:
        sgm = naming.diffusers_to_sgm(name, prefix, 4)
        assert naming.sgm_to_diffusers(sgm, prefix, 4) == name, (name, sgm)
    assert naming.diffusers_to_sgm("decoder.up_blocks.0.resnets.2.time_mixer.mix_factor", prefix, 4) == \
        "first_stage_model.decoder.up.3.block.2.mix_factor"
    assert naming.diffusers_to_sgm("decoder.up_blocks.2.resnets.0.spatial_res_block.conv_shortcut.weight",
                                   prefix, 4) == "first_stage_model.decoder.up.1.block.0.nin_shortcut.weight"
    assert naming.diffusers_to_sgm("decoder.up_blocks.1.resnets.1.temporal_res_block.conv2.bias", prefix, 4) == \
        "first_stage_model.decoder.up.2.block.1.time_stack.out_layers.3.bias"
    assert naming.sgm_to_diffusers("conditioner.embedders.3.encoder.decoder.conv_in.weight", prefix, 4) is None
    with pytest.raises(KeyError):
        naming.sgm_to_diffusers("something.else", prefix, 4)


def _svd_diffusers_names():
    """The names diffusers uses for the SVD VAE, without building it: from its meta-device twin."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    with torch.device("meta"):
        model = AutoencoderKLTemporalDecoder(**_svd_config())
    return list(model.state_dict().keys())


# ------------------------------------------------------------------------------------------------------ bad input

def test_bad_inputs(torch_cpu):
    _, vae, cfg, _ = _models(torch_cpu, "two_levels")
    good_x = np.zeros((1, 3, 4, 4), np.float32)
    good_z = np.zeros((2, 4, 2, 2), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"images.*\(N >= 1, 3, H, W\).*\(1, 4, 4, 4\)"):
        vae.encode(np.zeros((1, 4, 4, 4), np.float32))
    with pytest.raises(svdc.ShapeError, match="multiples of 2"):
        vae.encode(np.zeros((1, 3, 4, 5), np.float32))
    with pytest.raises(svdc.ShapeError, match="images"):
        vae.encode(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="images.*NaN"):
        vae.encode(np.full_like(good_x, np.nan))
    with pytest.raises(ValueError, match="latents.*NaN"):
        vae.decode(np.where(np.arange(good_z.size).reshape(good_z.shape) == 3, np.inf, good_z).astype(np.float32), 2)
    with pytest.raises(svdc.ShapeError, match=r"latents.*\(N >= 1, 4, H, W\)"):
        vae.decode(np.zeros((2, 3, 2, 2), np.float32), num_frames=2)
    with pytest.raises(svdc.ShapeError, match="N = 3 rows is not a multiple of num_frames = 2"):
        vae.decode(np.zeros((3, 4, 2, 2), np.float32), num_frames=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_frames"):
            vae.decode(good_z, num_frames=bad)
    with pytest.raises(ValueError, match="chunk_size"):
        vae.decode(good_z, num_frames=2, chunk_size=0)
    with pytest.raises(TypeError, match="floating"):
        vae.encode(np.zeros((1, 3, 4, 4), np.int32))
    # float64 and non-contiguous inputs are converted explicitly.
    x64 = np.random.default_rng(0).uniform(-1, 1, (1, 3, 4, 8))
    assert np.array_equal(vae.encode(x64), vae.encode(x64.astype(np.float32)))
    xt = np.ascontiguousarray(x64.astype(np.float32).transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not xt.flags.c_contiguous
    assert np.array_equal(vae.encode(xt), vae.encode(x64.astype(np.float32)))
    # The C binding refuses what the Python layer would have converted.
    with pytest.raises(svdc.ShapeError):
        vae._native.encode(x64)


def test_bad_configs():
    with pytest.raises(ValueError, match="block_out_channels"):
        svdc.VAE.from_config({"block_out_channels": [48]}, {}, device="cpu")
    with pytest.raises(ValueError, match="down_block_types"):
        svdc.VAE.from_config({"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D"]}, {},
                             device="cpu")
    with pytest.raises(ValueError, match="layers_per_block"):
        svdc.VAE.from_config({"block_out_channels": [32], "layers_per_block": 0}, {}, device="cpu")
    with pytest.raises(ValueError, match=r"dtype: expected None, 'fp32', 'fp16' or 'bf16'"):
        svdc.VAE.from_config({"block_out_channels": [32]}, {}, device="cpu", dtype="int8")


def test_sv3d_plain_decoder_single_file(torch_cpu, tmp_path):
    """An SV3D-style file (encoder in embedders.1, a plain 2-D first_stage_model decoder) decodes every frame like
    diffusers' AutoencoderKL decoder, and encodes like its encoder."""
    from diffusers import AutoencoderKL

    from tests.reference_helpers import perturb_parameters, state_dict_float32
    from svdc.weights import save_file

    torch = torch_cpu
    cfg = _cfg(CONFIGS["three_levels"])  # layers_per_block 2: the temporal mid block runs res, attention, res
    torch.manual_seed(5)
    plain = AutoencoderKL(block_out_channels=cfg["block_out_channels"], layers_per_block=cfg["layers_per_block"],
                          down_block_types=cfg["down_block_types"], up_block_types=["UpDecoderBlock2D"] * 3,
                          latent_channels=4).eval()
    perturb_parameters(plain, seed=5)
    single = {}
    for name, value in state_dict_float32(plain).items():
        if name.startswith("post_quant_conv."):
            single["first_stage_model.post_quant_conv." + name.split(".", 1)[1]] = value  # ignored, as in sgm
            continue
        m = __import__("re").fullmatch(r"(decoder\.(?:mid_block|up_blocks\.\d+)\.resnets\.\d+)\.(.+)", name)
        temporal_name = f"{m[1]}.spatial_res_block.{m[2]}" if m else name  # 2-D resnet -> its spatial half
        if name.startswith("decoder.") and name.endswith(("to_q.weight", "to_k.weight", "to_v.weight",
                                                          "to_out.0.weight")):
            value = value.reshape(value.shape + (1, 1))
        single[naming.diffusers_to_sgm(temporal_name, "conditioner.embedders.1.encoder.", 3)] = value
    single = {k: v for k, v in single.items() if "time_mix_conv" not in k}
    assert not any(".time_stack." in k or k.endswith("mix_factor") for k in single)
    save_file(single, tmp_path / "sv3d_p.safetensors")
    vae = svdc.VAE.from_pretrained(tmp_path / "sv3d_p.safetensors", device="cpu", config=cfg)
    rng = np.random.default_rng(11)
    z = rng.standard_normal((4, 4, 3, 5)).astype(np.float32)
    with torch.no_grad():
        ref = plain.decoder(torch.from_numpy(z)).numpy()
    assert_parity(vae.decode(z, num_frames=4), ref, what="2-D decoder through the temporal model")
    assert_parity(vae.decode(z, num_frames=2, chunk_size=3), ref, what="2-D decoder, chunked")
    x = rng.uniform(-1, 1, (2, 3, 12, 8)).astype(np.float32)
    with torch.no_grad():
        ref_mean = plain.encode(torch.from_numpy(x)).latent_dist.mode().numpy()
    assert_parity(vae.encode(x), ref_mean, what="SV3D encoder")


def test_plain_autoencoderkl_folder_loads_as_the_2d_vae(torch_cpu, tmp_path):
    """AutoencoderKL folders were refused before the model layer had the 2-D decoder; now they load as that kind
    (its numbers are checked in the AutoencoderKL parity tests)."""
    from diffusers import AutoencoderKL

    AutoencoderKL(block_out_channels=[32], latent_channels=4).save_pretrained(tmp_path)
    vae = svdc.VAE.from_pretrained(tmp_path, device="cpu")
    z = vae.encode(np.zeros((1, 3, 16, 16), np.float32))
    assert z.shape == (1, 4, 16, 16) and vae.decode(z).shape == (1, 3, 16, 16)


def test_encode_per_image_equals_batched_native(torch_cpu):
    """svdc.VAE.encode loops over images; the C model's batched encode gives the same numbers."""
    _, vae, cfg, _ = _models(torch_cpu, "three_levels")
    x = np.random.default_rng(2).uniform(-1, 1, (3, 3, 8, 12)).astype(np.float32)
    assert np.array_equal(vae.encode(x), vae._native.encode(x))
