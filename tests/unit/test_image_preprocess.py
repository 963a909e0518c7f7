"""svdc.image.clip_preprocess vs diffusers' own SVD path (_resize_with_antialiasing + CLIPImageProcessor
normalisation) on several sizes and aspect ratios, plus the accepted input kinds and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

import svdc
from svdc.image import CLIP_MEAN, CLIP_STD, clip_preprocess, read_clip_normalisation, to_float_images

SIZES = [(576, 1024), (300, 200), (97, 131), (224, 224), (1000, 40), (225, 223), (3, 5)]


def _reference(images_u8: np.ndarray, size: int = 224, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """diffusers StableVideoDiffusionPipeline._encode_image up to pixel_values, with the real functions."""
    import torch
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
    from diffusers.video_processor import VideoProcessor
    from transformers import CLIPImageProcessor

    vp = VideoProcessor(do_resize=True, vae_scale_factor=8)
    from PIL import Image

    pils = [Image.fromarray(im) for im in images_u8]
    x = vp.numpy_to_pt(vp.pil_to_numpy(pils))
    x = x * 2.0 - 1.0
    x = _resize_with_antialiasing(x, (size, size))
    x = (x + 1.0) / 2.0
    fe = CLIPImageProcessor(image_mean=list(mean), image_std=list(std))
    out = fe(images=x, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
             return_tensors="pt").pixel_values
    return out.numpy()


@pytest.mark.parametrize("hw", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_matches_diffusers(torch_cpu, hw):
    rng = np.random.default_rng(hash(hw) % 2**32)
    img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    ref = _reference(img[None])
    out = clip_preprocess(img)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (1, 3, 224, 224)
    err = float(np.abs(out - ref).max())
    assert err <= 1e-5, f"{hw}: max abs diff {err:.3e}"


def test_smooth_image_and_other_size(torch_cpu):
    """A smooth gradient (where blur/bicubic errors would show as bias) and a non-224 target size."""
    h, w = 333, 517
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)), ((xx + yy) % 256)], -1).astype(np.uint8)
    for size in (224, 64, 600):
        ref = _reference(img[None], size=size)
        out = clip_preprocess(img, size=size)
        assert float(np.abs(out - ref).max()) <= 1e-5


def test_batch_pil_and_lists_agree(torch_cpu):
    from PIL import Image

    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (2, 120, 90, 3), dtype=np.uint8)
    ref = _reference(batch)
    out_batch = clip_preprocess(batch)
    out_list = clip_preprocess([Image.fromarray(b) for b in batch])
    assert float(np.abs(out_batch - ref).max()) <= 1e-5
    np.testing.assert_array_equal(out_batch, out_list)
    # RGBA / L PIL images are converted to RGB first
    rgba = Image.fromarray(batch[0]).convert("RGBA")
    np.testing.assert_array_equal(clip_preprocess(rgba), out_batch[:1])


def test_float_input_in_unit_range():
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    f = u8.astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(clip_preprocess(f), clip_preprocess(u8))
    np.testing.assert_allclose(clip_preprocess(f.astype(np.float64)), clip_preprocess(u8), atol=1e-6)


def test_normalisation_constants_change_output():
    img = np.full((10, 10, 3), 128, np.uint8)
    a = clip_preprocess(img)
    b = clip_preprocess(img, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    np.testing.assert_allclose(b, (128 / 255 - 0.5) / 0.5, atol=1e-6)
    assert not np.allclose(a, b)


def test_read_feature_extractor(tmp_path):
    fe = tmp_path / "feature_extractor"
    fe.mkdir()
    (fe / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3],
                                                             "image_std": [0.4, 0.5, 0.6]}))
    (tmp_path / "image_encoder").mkdir()
    assert read_clip_normalisation(tmp_path) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert read_clip_normalisation(tmp_path / "image_encoder") == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert read_clip_normalisation(tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (np.zeros((10, 10, 4), np.uint8), svdc.ShapeError, "3 channels"),
        (np.zeros((10, 10), np.uint8), svdc.ShapeError, "(H, W, 3)"),
        (np.zeros((10, 10, 3), np.int32), TypeError, "dtype"),
        (np.full((10, 10, 3), np.nan, np.float32), ValueError, "NaN"),
        (np.full((10, 10, 3), 2.0, np.float32), ValueError, "[0, 1]"),
        (np.zeros((0, 10, 3), np.uint8), svdc.ShapeError, "empty"),
        (np.zeros((1, 10, 3), np.uint8), svdc.ShapeError, "too small"),
        ("not an image", TypeError, "PIL image"),
        ([], ValueError, "at least one"),
        ([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], svdc.ShapeError, "same (H, W)"),
    ],
)
def test_bad_inputs(bad, exc, words):
    with pytest.raises(exc) as info:
        clip_preprocess(bad)
    assert words in str(info.value)
    assert "image" in str(info.value)


def test_to_float_images_shapes():
    x = to_float_images(np.zeros((4, 6, 3), np.uint8))
    assert x.shape == (1, 4, 6, 3) and x.dtype == np.float32


def test_image_encoder_preprocess_on_class_and_instance():
    img = np.random.default_rng(3).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(svdc.ImageEncoder.preprocess(img), clip_preprocess(img))
    enc = svdc.ImageEncoder(None, {"image_size": 32, "num_channels": 3}, image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
    np.testing.assert_array_equal(enc.preprocess(img), clip_preprocess(img, 32, (0.5,) * 3, (0.5,) * 3))
