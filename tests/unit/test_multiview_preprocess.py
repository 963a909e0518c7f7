"""SV3D preprocessing (svdc.image.sv3d_preprocess) on synthetic RGBA shapes whose expected output follows from the
sgm script's geometry (tight alpha box centred on a square, LANCZOS resize, composite on white, truncation), the
white-background mask and the matting hook; plus the float32 EDM sigmas and the triangle guidance of MultiView."""
import numpy as np
import pytest

from svdc.image import object_rgba, sv3d_preprocess, white_background_alpha

RED = (200, 30, 40)


def _rgba(h, w, box, colour=RED, alpha=255):
    """(h, w, 4) transparent image (hidden colour green under alpha 0) with an opaque box (y0, x0, bh, bw)."""
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 1] = 255  # hidden green: must never show
    y0, x0, bh, bw = box
    img[y0:y0 + bh, x0:x0 + bw] = (*colour, alpha)
    return img


def _expected(side, bh, bw, colour=RED):
    """White square with the box centred as the script pastes it: rows c - bh//2 ..., c = side//2."""
    out = np.full((side, side, 3), 255, np.uint8)
    c = side // 2
    out[c - bh // 2:c - bh // 2 + bh, c - bw // 2:c - bw // 2 + bw] = colour
    return out


def test_off_centre_object_is_centred():
    img = _rgba(40, 40, (3, 25, 10, 12))
    rgb, alpha = sv3d_preprocess(img, size=40)  # side = image height = 40: no resampling
    assert np.array_equal(rgb, _expected(40, 10, 12))
    assert np.array_equal(alpha > 0, np.any(rgb != 255, axis=-1))


def test_tall_image_square_side_is_the_height():
    img = _rgba(40, 20, (4, 5, 30, 9))
    rgb, _ = sv3d_preprocess(img, size=40)
    assert np.array_equal(rgb, _expected(40, 30, 9))


def test_wide_object_needs_a_ratio_and_the_ratio_sizes_the_square():
    img = _rgba(20, 60, (5, 5, 10, 50))
    with pytest.raises(ValueError, match="image_frame_ratio"):
        sv3d_preprocess(img, size=20)
    rgb, _ = sv3d_preprocess(img, size=100, image_frame_ratio=0.5)  # side int(50/0.5) = 100: no resampling
    assert np.array_equal(rgb, _expected(100, 10, 50))
    with pytest.raises(ValueError, match="image_frame_ratio"):
        sv3d_preprocess(img, size=100, image_frame_ratio=2.0)


def test_resize_is_premultiplied_and_truncated():
    img = _rgba(64, 64, (16, 16, 32, 32))
    rgb, alpha = sv3d_preprocess(img, size=24)
    g = rgb.astype(int)
    # no green bleeds in from the hidden colour under alpha 0: green never exceeds the white/red blend
    blend_g = (alpha / 255.0) * RED[1] + (1 - alpha / 255.0) * 255
    assert np.all(g[..., 1] <= np.floor(blend_g + 1e-6) + 1)
    assert np.array_equal(rgb[12, 12], RED) and np.array_equal(rgb[0, 0], [255, 255, 255])


def test_fully_transparent_and_rgb_inputs():
    with pytest.raises(ValueError, match="fully transparent"):
        sv3d_preprocess(np.zeros((16, 16, 4), np.uint8), size=16)
    rgb_in = np.full((40, 40, 3), 255, np.uint8)
    rgb_in[10:20, 5:15] = RED
    out, alpha = sv3d_preprocess(rgb_in, size=40)  # white background -> mask -> same as the RGBA case
    assert np.array_equal(out, sv3d_preprocess(_rgba(40, 40, (10, 5, 10, 10)), size=40)[0])
    with pytest.raises(ValueError, match="no white background"):
        sv3d_preprocess(np.full((16, 16, 3), 90, np.uint8), size=16)
    with pytest.raises(ValueError, match="no object"):
        sv3d_preprocess(np.full((16, 16, 3), 255, np.uint8), size=16)


def test_white_mask_and_matting_hook():
    rgb = np.array([[[250, 250, 250], [250, 250, 251], [0, 0, 0]]], np.uint8)
    assert white_background_alpha(rgb).tolist() == [[255, 0, 255]]  # mean 250 is object, 250.33 background
    seen = []
    dark = np.full((8, 8, 3), 50, np.uint8)
    out = object_rgba(dark, matting=lambda x: (seen.append(x.shape), np.eye(8))[1])
    assert seen == [(8, 8, 3)] and out[..., 3].tolist() == (np.eye(8) * 255).astype(int).tolist()
    with pytest.raises(ValueError, match="matting"):
        object_rgba(dark, matting=lambda x: np.ones((4, 4)))
    with pytest.raises(ValueError, match="matting"):
        object_rgba(dark, matting=lambda x: np.full((8, 8), 2.0))
    with pytest.raises(TypeError, match="matting"):
        object_rgba(dark, matting=3)


def test_edm_sigmas_are_sgm_float32():
    from svdc.pipelines.multiview import edm_sigmas

    s = edm_sigmas(50)
    # sgm EDMDiscretization(sigma_max=700) in float32, as evaluated with torch 2.13 (see docs/workflows/multiview.md)
    np.testing.assert_allclose(s.sigmas[:4], [700.00012, 620.328, 548.558, 484.027], rtol=2e-6)
    np.testing.assert_allclose(s.sigmas[-3:-1], [0.0040490, 0.0020000036], rtol=2e-5)
    assert s.sigmas[-1] == 0 and s.sigmas.dtype == np.float32
    np.testing.assert_allclose([s.timesteps[0], s.timesteps[-1]], [1.63777, -1.55365], atol=1e-5)
    assert s.init_noise_sigma == np.float32(np.sqrt(np.float32(s.sigmas[0]) ** 2 + np.float32(1)))


def test_triangle_guidance_of_multiview():
    from svdc import tiny

    pipe = tiny.tiny_multiview(device="cpu")
    g = pipe.guidance(1.0, 2.5, 21)
    np.testing.assert_allclose(g, [1.0 + 0.15 * min(f, 20 - f) for f in range(21)], rtol=0, atol=1e-6)
    assert g[10] == np.float32(2.5) and g[0] == g[20] == np.float32(1.0)
