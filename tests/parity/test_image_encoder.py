"""svdc.ImageEncoder vs transformers' CLIPVisionModelWithProjection (random perturbed weights, fp32, CPU) on small
configs and the full ViT-H/14; folder and Stability single-file loads; refusal of bad configs, weights and inputs."""
from __future__ import annotations

import gc
import json

import numpy as np
import pytest

import svdc
from svdc.configs.clip import VIT_H_14
from svdc.naming import clip as naming
from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32

# (config, batch): different head counts, patch/image sizes, odd token counts, both activations.
SMALL = [
    (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=16,
          patch_size=4, projection_dim=24, hidden_act="gelu"), 2),                        # 17 tokens
    (dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=3, image_size=15,
          patch_size=5, projection_dim=16, hidden_act="quick_gelu"), 1),                  # 10 tokens, head_dim 16
    (dict(hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5, image_size=28,
          patch_size=4, projection_dim=12, hidden_act="gelu", layer_norm_eps=1e-6), 3),   # 50 tokens, head_dim 8
    (dict(hidden_size=24, intermediate_size=40, num_hidden_layers=1, num_attention_heads=1, image_size=30,
          patch_size=7, projection_dim=8, hidden_act="gelu"), 1),                         # image % patch != 0
    (dict(hidden_size=16, intermediate_size=32, num_hidden_layers=0, num_attention_heads=2, image_size=8,
          patch_size=8, projection_dim=4, hidden_act="gelu"), 2),                         # no layers, 2 tokens
]
IDS = ["h4-p4", "h3-p5-quickgelu", "h5-50tok", "h1-floorgrid", "0layers"]


def _reference(torch, config: dict, seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**config)).eval()
    model.config._attn_implementation = "eager"
    return perturb_parameters(model, seed=seed)


def _pixels(config: dict, batch: int, seed: int = 1) -> np.ndarray:
    s, c = config["image_size"], config.get("num_channels", 3)
    return np.random.default_rng(seed).standard_normal((batch, c, s, s)).astype(np.float32)


def _run_ref(torch, model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(x)).image_embeds.numpy()


@pytest.mark.parametrize("config, batch", SMALL, ids=IDS)
def test_small_configs_match_transformers(torch_cpu, config, batch):
    model = _reference(torch_cpu, config)
    x = _pixels(config, batch)
    ref = _run_ref(torch_cpu, model, x)
    enc = svdc.ImageEncoder.from_config(config, state_dict_float32(model), device="cpu")
    out = enc(x)
    assert out.shape == (batch, config["projection_dim"]) and out.dtype == np.float32
    assert_parity(out, ref, what=f"image_embeds {config}")
    assert enc.num_parameters == sum(p.numel() for p in model.parameters())
    assert enc.last_peak_bytes > 0
    # batch rows are independent: row 1 alone equals row 1 of the batch
    if batch > 1:
        np.testing.assert_allclose(enc(x[1:2])[0], out[1], rtol=0, atol=1e-5 * float(np.abs(out).max()))


def test_weight_table_is_transformers_state_dict(torch_cpu):
    config = SMALL[0][0]
    model = _reference(torch_cpu, config)
    enc = svdc.ImageEncoder.from_config(config, state_dict_float32(model), device="cpu")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()
                if k not in naming.IGNORED_TRANSFORMERS_KEYS}
    assert enc.weight_shapes() == expected


def test_fp16_and_float64_weights_are_converted(torch_cpu):
    config = SMALL[0][0]
    model = _reference(torch_cpu, config)
    sd = state_dict_float32(model)
    a = svdc.ImageEncoder.from_config(config, {k: v.astype(np.float64) for k, v in sd.items()}, device="cpu")
    b = svdc.ImageEncoder.from_config(config, sd, device="cpu")
    x = _pixels(config, 1)
    np.testing.assert_array_equal(a(x), b(x))
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(b(x64), b(x))          # float64 input converted explicitly
    np.testing.assert_array_equal(b(np.asfortranarray(x)), b(x))  # non-contiguous input copied


def test_encode_image_matches_reference_pipeline_path(torch_cpu):
    """preprocess + forward against diffusers' resize + CLIP normalisation + transformers on a non-square image."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    config = dict(SMALL[0][0], image_size=28, patch_size=7)
    model = _reference(torch_cpu, config)
    enc = svdc.ImageEncoder.from_config(config, state_dict_float32(model), device="cpu")
    img = np.random.default_rng(5).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    t = torch_cpu.from_numpy(img.astype(np.float32)[None].transpose(0, 3, 1, 2) / 255.0) * 2 - 1
    t = (_resize_with_antialiasing(t, (28, 28)) + 1) / 2
    mean = torch_cpu.tensor(svdc.image.CLIP_MEAN)[:, None, None]
    std = torch_cpu.tensor(svdc.image.CLIP_STD)[:, None, None]
    with torch_cpu.no_grad():
        ref = model(pixel_values=(t - mean) / std).image_embeds.numpy()
    assert_parity(enc.encode_image(img), ref)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One small model saved three ways: transformers folder, pipeline folder (+ feature_extractor), single file."""
    import torch
    from safetensors.numpy import save_file

    torch.manual_seed(0)
    config, _ = SMALL[2]
    model = _reference(torch, config, seed=3)
    root = tmp_path_factory.mktemp("clip")
    model.save_pretrained(root / "folder")
    model.save_pretrained(root / "pipe" / "image_encoder")
    (root / "pipe" / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableVideoDiffusionPipeline", "image_encoder": ["transformers",
                                                                          "CLIPVisionModelWithProjection"]}))
    (root / "pipe" / "feature_extractor").mkdir()
    (root / "pipe" / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3]}))
    sd = state_dict_float32(model)
    single = naming.to_single_file(sd)
    # the rest of a Stability file, all on the ignore list
    single["model.diffusion_model.input_blocks.0.0.weight"] = np.zeros((4, 8, 3, 3), np.float32)
    single["first_stage_model.decoder.conv_in.weight"] = np.zeros((2,), np.float32)
    single["conditioner.embedders.3.encoder.conv_in.weight"] = np.zeros((2,), np.float32)
    single["conditioner.embedders.0.open_clip.model.logit_scale"] = np.zeros((), np.float32)
    single["conditioner.embedders.0.open_clip.model.token_embedding.weight"] = np.zeros((5, 4), np.float32)
    single["conditioner.embedders.0.open_clip.model.ln_final.weight"] = np.zeros((4,), np.float32)
    save_file(single, str(root / "single.safetensors"))
    x = _pixels(config, 2, seed=7)
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(x)).image_embeds.numpy()
    return dict(root=root, config=config, x=x, ref=ref, sd=sd, single=single)


def test_folder_pipeline_and_single_file_agree(saved):
    root, config, x = saved["root"], saved["config"], saved["x"]
    folder = svdc.ImageEncoder.from_pretrained(root / "folder", device="cpu")
    assert_parity(folder(x), saved["ref"])
    pipe = svdc.ImageEncoder.from_pretrained(root / "pipe", device="cpu")
    single = svdc.ImageEncoder.from_pretrained(root / "single.safetensors", device="cpu", config=config)
    np.testing.assert_array_equal(pipe(x), folder(x))
    np.testing.assert_array_equal(single(x), folder(x))
    assert folder.config == single.config
    # normalisation comes from the pipeline's feature extractor; defaults elsewhere
    assert pipe.image_mean == (0.5, 0.4, 0.3) and pipe.image_std == (0.2, 0.25, 0.3)
    assert folder.image_mean == svdc.image.CLIP_MEAN and single.image_std == svdc.image.CLIP_STD


def test_single_file_map_round_trip(saved):
    """The inverse map followed by the forward map gives back every transformers tensor bit for bit."""
    single = saved["single"]
    loaders = naming.map_single_file(single.keys(), lambda k: single[k])
    assert set(loaders) == set(saved["sd"]) - naming.IGNORED_TRANSFORMERS_KEYS
    for name, load in loaders.items():
        np.testing.assert_array_equal(load(), saved["sd"][name], err_msg=name)


def test_single_file_without_config_is_checked_against_preset(saved):
    with pytest.raises(svdc.CheckpointError, match="ViT-H/14"):
        svdc.ImageEncoder.from_pretrained(saved["root"] / "single.safetensors", device="cpu")


def test_single_file_unknown_keys_refused(saved, tmp_path):
    from safetensors.numpy import save_file

    bad = dict(saved["single"])
    bad["something.else.weight"] = np.zeros((2,), np.float32)
    save_file(bad, str(tmp_path / "a.safetensors"))
    with pytest.raises(svdc.CheckpointError, match="something.else.weight"):
        svdc.ImageEncoder.from_pretrained(tmp_path / "a.safetensors", device="cpu", config=saved["config"])
    bad = dict(saved["single"])
    bad[naming.PREFIX + "attn_pool.query"] = np.zeros((2,), np.float32)
    save_file(bad, str(tmp_path / "b.safetensors"))
    with pytest.raises(svdc.CheckpointError, match="attn_pool"):
        svdc.ImageEncoder.from_pretrained(tmp_path / "b.safetensors", device="cpu", config=saved["config"])


def test_single_file_missing_layer_refused(saved, tmp_path):
    from safetensors.numpy import save_file

    bad = {k: v for k, v in saved["single"].items() if ".resblocks.1.mlp.c_fc.weight" not in k}
    save_file(bad, str(tmp_path / "c.safetensors"))
    with pytest.raises(svdc.CheckpointError, match="layers.1.mlp.fc1.weight"):
        svdc.ImageEncoder.from_pretrained(tmp_path / "c.safetensors", device="cpu", config=saved["config"])


# ---- refusals ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    import torch

    config = SMALL[0][0]
    model = _reference(torch, config)
    sd = state_dict_float32(model)
    return config, sd, svdc.ImageEncoder.from_config(config, sd, device="cpu")


@pytest.mark.parametrize(
    "make, exc, words",
    [
        (lambda: np.zeros((1, 4, 16, 16), np.float32), svdc.ShapeError, "(N, 3, 16, 16)"),
        (lambda: np.zeros((1, 3, 17, 16), np.float32), svdc.ShapeError, "got (1, 3, 17, 16)"),
        (lambda: np.zeros((3, 16, 16), np.float32), svdc.ShapeError, "pixel_values"),
        (lambda: np.zeros((0, 3, 16, 16), np.float32), svdc.ShapeError, "N >= 1"),
        (lambda: np.full((1, 3, 16, 16), np.nan, np.float32), ValueError, "NaN"),
        (lambda: np.full((1, 3, 16, 16), np.inf, np.float32), ValueError, "Inf"),
        (lambda: np.zeros((1, 3, 16, 16), np.int64), svdc.ShapeError, "float32"),
        (lambda: [[0.0]], TypeError, "numpy.ndarray"),
    ],
)
def test_bad_pixel_values(small, make, exc, words):
    with pytest.raises(exc) as info:
        small[2](make())
    assert words in str(info.value) and "pixel_values" in str(info.value)


def test_native_checks_without_python_layer(small):
    """The C binding refuses by itself too (NaN via svdc_op_check_finite, shapes, dtypes)."""
    native = small[2]._native
    with pytest.raises(ValueError, match="pixel_values"):
        native(np.full((1, 3, 16, 16), np.nan, np.float32))
    with pytest.raises(svdc.ShapeError, match="pixel_values"):
        native(np.zeros((1, 3, 16, 15), np.float32))
    with pytest.raises(svdc.ShapeError, match="float32"):
        native(np.zeros((1, 3, 16, 16), np.float64))


def test_bad_weights(small):
    config, sd, _ = small
    missing = {k: v for k, v in sd.items() if k != "vision_model.encoder.layers.1.mlp.fc2.bias"}
    with pytest.raises(svdc.CheckpointError, match="layers.1.mlp.fc2.bias"):
        svdc.ImageEncoder.from_config(config, missing, device="cpu")
    extra = dict(sd, **{"vision_model.encoder.layers.2.mlp.fc2.bias": np.zeros(32, np.float32)})
    with pytest.raises(svdc.CheckpointError, match="layers.2.mlp.fc2.bias"):
        svdc.ImageEncoder.from_config(config, extra, device="cpu")
    shaped = dict(sd, **{"visual_projection.weight": np.zeros((24, 33), np.float32)})
    with pytest.raises(svdc.CheckpointError, match=r"visual_projection.weight has shape \(24, 33\), expected \(24, 32\)"):
        svdc.ImageEncoder.from_config(config, shaped, device="cpu")
    ints = dict(sd, **{"visual_projection.weight": np.zeros((24, 32), np.int32)})
    with pytest.raises(svdc.CheckpointError, match="visual_projection.weight"):
        svdc.ImageEncoder.from_config(config, ints, device="cpu")
    # the position_ids buffer older transformers versions saved is ignored, not an error
    with_ids = dict(sd, **{"vision_model.embeddings.position_ids": np.arange(17)[None]})
    svdc.ImageEncoder.from_config(config, with_ids, device="cpu")


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(num_attention_heads=5), "multiple of num_attention_heads"),
        (dict(hidden_act="relu"), "hidden_act"),
        (dict(patch_size=32), "patch_size"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps"),
        (dict(image_size=[16, 20]), "square"),
        (dict(hidden_size="big"), "hidden_size"),
    ],
)
def test_bad_configs(small, change, words):
    config, sd, _ = small
    with pytest.raises(ValueError, match=words):
        svdc.ImageEncoder.from_config(dict(config, **change), sd, device="cpu")


def test_device_and_dtype_refusals(small):
    config, sd, _ = small
    with pytest.raises(ValueError, match=r"dtype: expected None, 'fp32', 'fp16' or 'bf16'"):
        svdc.ImageEncoder.from_config(config, sd, device="cpu", dtype="float8")
    with pytest.raises(svdc.DeviceUnavailableError):
        svdc.ImageEncoder.from_config(config, sd, device="cuda")
    with pytest.raises(TypeError, match="Mapping"):
        svdc.ImageEncoder.from_config(config, [1, 2], device="cpu")


def test_config_defaults_follow_transformers(torch_cpu):
    """Keys missing from a config.json take CLIPVisionConfig's class defaults (quick_gelu, patch 32, ...)."""
    from transformers import CLIPVisionConfig

    from svdc.configs.clip import normalize_config

    ref = CLIPVisionConfig()
    ours = normalize_config({})
    for k, v in ours.items():
        assert getattr(ref, k) == v, k
    assert normalize_config({"vision_config": VIT_H_14, "projection_dim": 7}) == normalize_config(VIT_H_14)


# ---- the full ViT-H/14 (SVD's encoder) --------------------------------------------------------------------------

@pytest.mark.slow
def test_full_vit_h14_matches_transformers(torch_cpu):
    """The real architecture (32 layers, width 1280, 16 heads, patch 14, 632,076,800 parameters) on one image.
    Needs ~6 GB: one transformers copy of the weights (shared zero-copy with the NumPy views) and svdc's copy."""
    model = _reference(torch_cpu, VIT_H_14)
    x = _pixels(VIT_H_14, 1)
    ref = _run_ref(torch_cpu, model, x)
    enc = svdc.ImageEncoder.from_config(VIT_H_14, state_dict_float32(model), device="cpu")
    del model
    gc.collect()
    assert enc.num_parameters == 632_076_800  # SVD's image_encoder (ViT-H/14 with projection)
    out = enc(x)
    assert_parity(out, ref, what="ViT-H/14 image_embeds")


def test_native_config_refusals():
    from svdc.configs.clip import normalize_config

    good = normalize_config(SMALL[0][0])
    with pytest.raises(KeyError, match="image_size"):
        svdc._C.ImageEncoder({k: v for k, v in good.items() if k != "image_size"}, {})
    with pytest.raises(TypeError, match="hidden_size"):
        svdc._C.ImageEncoder(dict(good, hidden_size=32.0), {})
    with pytest.raises(ValueError, match="num_attention_heads"):
        svdc._C.ImageEncoder(dict(good, num_attention_heads=5), {})
    with pytest.raises(ValueError, match="hidden_act"):
        svdc._C.ImageEncoder(dict(good, hidden_act="gelu_new"), {})
    with pytest.raises(svdc.CheckpointError, match="patch_embedding"):
        svdc._C.ImageEncoder(good, {})
