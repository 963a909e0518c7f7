"""Config, argument, size and output checks: UNet config integers beyond int32 refused before C, scheduler and
preprocessor config errors typed and naming the file, float32-overflowing arguments blamed on the argument,
impossible sizes refused before any allocation with the bytes named, and corrupt output refused."""
import json

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.image import read_clip_normalisation
from tests.robustness.tiny_folder import write_tiny_pipeline

IMAGE = tiny.test_image(64, 64)
FAST = dict(num_inference_steps=1, progress=False, seed=0, height=64, width=64, num_frames=2)


@pytest.fixture(scope="module")
def pipe():
    return tiny.tiny_pipeline(device="cpu")


@pytest.mark.parametrize("key,value,where", [
    ("num_attention_heads", 2**31, r"num_attention_heads\[0\] = 2147483648"),
    ("block_out_channels", [2**32 + 32, 64], r"block_out_channels\[0\] = 4294967328"),
    ("layers_per_block", 2**40, r"layers_per_block\[0\] = 1099511627776"),
])
def test_unet_config_integers_beyond_int32_are_refused(key, value, where):
    cfg = dict(tiny.UNET_CONFIG, **{key: value})
    with pytest.raises(ValueError, match=where + ".*int32"):
        svdc.UNet.weight_shapes(cfg)


@pytest.mark.parametrize("text,match", [
    ('{"sigma_max": 1e400}', "sigma_max must be a finite number"),
    ('{"sigma_max": "abc"}', "sigma_max must be a finite number"),
    ('{"timestep_spacing": 3}', "timestep_spacing must be one of"),
    ('{"prediction_type": "epsilon"}', "unsupported: prediction_type"),
    ("{broken", "cannot read the scheduler config"),
])
def test_scheduler_config_errors_are_typed_and_name_the_file(tmp_path, text, match):
    write_tiny_pipeline(tmp_path, scheduler=text)
    with pytest.raises(svdc.CheckpointError, match=match) as e:
        svdc.ImageToVideo.from_pretrained(tmp_path, device="cpu")
    assert "scheduler_config.json" in str(e.value)


@pytest.mark.parametrize("content,match", [
    (b"{bad", "cannot read the feature extractor config"),
    (b"\xff\xfe", "cannot read the feature extractor config"),
    (b'{"image_mean": "abc", "image_std": [1, 1, 1]}', "image_mean/image_std must be lists of 3 numbers"),
])
def test_preprocessor_config_errors_are_typed_and_name_the_file(tmp_path, content, match):
    (tmp_path / "feature_extractor").mkdir()
    (tmp_path / "feature_extractor" / "preprocessor_config.json").write_bytes(content)
    with pytest.raises(ValueError, match=match) as e:
        read_clip_normalisation(tmp_path)
    assert "preprocessor_config.json" in str(e.value)


@pytest.mark.parametrize("name,value", [("motion_bucket_id", 1e39), ("noise_aug_strength", 1e39), ("fps", 1e39),
                                        ("min_guidance_scale", -1e39), ("max_guidance_scale", 1e39)])
def test_float32_overflowing_arguments_are_blamed_on_the_argument(pipe, name, value):
    with pytest.raises(ValueError, match=rf"^{name}: .*float32"):
        pipe(IMAGE, **dict(FAST, **{name: value}))


@pytest.mark.parametrize("kwargs", [dict(height=8 * 10**6), dict(width=10**6 * 8, height=10**6 * 8),
                                    dict(num_frames=10**8)])
def test_impossible_sizes_are_a_memory_error_naming_the_bytes(pipe, kwargs):
    with pytest.raises(MemoryError, match=r"needs at least \d+ bytes .* more than the \d+ bytes"):
        pipe(IMAGE, **dict(FAST, **kwargs))


def test_nan_weights_behind_the_check_give_an_error_not_a_black_video(monkeypatch):
    """With the load-time check skipped, a NaN in the VAE decoder still never becomes a video."""
    from svdc import weights as W

    monkeypatch.setattr(W, "CHECK_FINITE", False)
    unet, vae, enc = tiny.tiny_components(device="cpu")
    w = tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1)
    w["decoder.conv_out.bias"] = np.full_like(w["decoder.conv_out.bias"], np.nan)
    vae = svdc.VAE.from_config(tiny.VAE_CONFIG, w, device="cpu")
    pipe = svdc.ImageToVideo.from_components(unet, vae, enc)
    with pytest.raises(svdc.SvdcError, match="decoded video has .* NaN"):
        pipe(IMAGE, **FAST)


def test_constant_output_is_an_error():
    from svdc._validate import check_decoded_video

    with pytest.raises(svdc.SvdcError, match="constant"):
        check_decoded_video(np.full((2, 3, 8, 8), -1.0, np.float32))
    check_decoded_video(np.linspace(-1, 1, 2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8))
