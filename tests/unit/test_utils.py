"""svdc.utils against diffusers.utils: load_image (paths, PIL, URLs, EXIF rotation, convert_method),
export_to_video (fps, quality, bitrate, macro_block_size) and export_to_gif."""
import os

import numpy as np
import pytest

from svdc import tiny
from svdc.utils import export_to_gif, export_to_video, load_image


def _rgba(tmp_path):
    from PIL import Image

    rgba = np.dstack([tiny.test_image(20, 30), np.linspace(0, 255, 20 * 30).reshape(20, 30).astype(np.uint8)])
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    return p


def test_load_image_like_diffusers(tmp_path, monkeypatch):
    p = _rgba(tmp_path)
    ours = load_image(str(p))
    assert ours.mode == "RGB" and ours.size == (30, 20)
    try:
        from diffusers.utils import load_image as reference
    except ImportError:
        reference = None
    if reference is not None:
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference(str(p))))
    assert load_image(p).size == (30, 20)  # os.PathLike
    assert load_image(ours.convert("L")).mode == "RGB"
    assert load_image(str(p), convert_method=lambda im: im.convert("L")).mode == "L"

    import svdc.utils

    monkeypatch.setattr(svdc.utils, "_fetch", lambda url: p.read_bytes())
    np.testing.assert_array_equal(np.asarray(load_image("https://example.org/a.png")), np.asarray(ours))


def test_load_image_exif_rotation(tmp_path):
    from PIL import Image

    im = Image.fromarray(tiny.test_image(20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    p = tmp_path / "r.jpg"
    im.save(p, exif=exif)
    assert load_image(str(p)).size == (20, 30)


def test_load_image_errors(tmp_path):
    with pytest.raises(ValueError, match="neither an http"):
        load_image(str(tmp_path / "missing.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot read image file"):
        load_image(str(bad))
    with pytest.raises(TypeError, match="image"):
        load_image(3)
    with pytest.raises(OSError, match="cannot download"):
        load_image("http://127.0.0.1:9/nothing.png")  # a closed port: fails at once, no network needed


def _read_mp4(path):
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(path)
    meta = next(gen)
    return meta, [np.frombuffer(f, np.uint8) for f in gen]


def test_export_to_video_arguments(tmp_path):
    frames = [tiny.test_image(40, 56).astype(np.float32) / 255] * 3  # 56x40: not multiples of 16
    with pytest.warns(UserWarning, match="macro_block_size=16"):
        p = export_to_video(frames, str(tmp_path / "a.mp4"), fps=9)
    meta, read = _read_mp4(p)
    assert tuple(meta["size"]) == (64, 48) and len(read) == 3 and abs(meta["fps"] - 9) < 1e-6
    meta, _ = _read_mp4(export_to_video(frames, str(tmp_path / "b.mp4"), macro_block_size=1))
    assert tuple(meta["size"]) == (56, 40)
    q_low = os.path.getsize(export_to_video(frames, str(tmp_path / "c.mp4"), quality=1, macro_block_size=1))
    q_high = os.path.getsize(export_to_video(frames, str(tmp_path / "d.mp4"), quality=10, macro_block_size=1))
    assert q_low < q_high
    assert os.path.getsize(export_to_video(frames, str(tmp_path / "e.mp4"), bitrate="500k",
                                           macro_block_size=1)) > 0
    with pytest.raises(ValueError, match="macro_block_size"):
        export_to_video(frames, str(tmp_path / "f.mp4"), macro_block_size=0)


def test_export_to_gif(tmp_path):
    from PIL import Image

    frames = [Image.fromarray(np.roll(tiny.test_image(16, 16), 4 * i, axis=1)) for i in range(4)]
    p = export_to_gif(frames, str(tmp_path / "a.gif"), fps=5)
    with Image.open(p) as im:
        assert im.n_frames == 4 and im.info["duration"] == 200 and im.info.get("loop") == 0
    tmp = export_to_gif(frames)
    try:
        assert tmp.endswith(".gif") and os.path.getsize(tmp) > 0
    finally:
        os.remove(tmp)
    with pytest.raises(ValueError, match="output_gif_path"):
        export_to_gif(frames, str(tmp_path / "a.mp4"))
