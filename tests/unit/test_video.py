"""svdc.Video / export_to_video: mp4 (read back with imageio-ffmpeg), gif/webp (Pillow), PNG frames; odd sizes,
bad inputs, and nothing half-written left behind on failure."""
import os

import numpy as np
import pytest

import svdc
from svdc.utils import export_to_video
from svdc.video import Video


def _frames(f=5, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    # smooth content so lossy codecs stay close to the input
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(w + h - 2, 1)], -1)
    return np.stack([np.roll(base, i * 2, axis=1) for i in range(f)]).astype(np.uint8) + rng.integers(0, 2, (f, h, w, 3)).astype(np.uint8)


def _read_mp4(path):
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(path)
    meta = gen.__next__()
    frames = [np.frombuffer(b, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for b in gen]
    return meta, np.stack(frames)


def _no_partials(directory):
    return [n for n in os.listdir(directory) if ".partial-" in n]


@pytest.mark.parametrize("h,w", [(32, 48), (33, 47)])
def test_mp4_roundtrip(tmp_path, h, w):
    frames = _frames(6, h, w)
    path = Video(frames, fps=7).save(tmp_path / "out.mp4")
    meta, back = _read_mp4(path)
    assert back.shape[0] == 6
    eh, ew = h + h % 2, w + w % 2  # odd sizes are padded to even for yuv420p
    assert tuple(meta["size"]) == (ew, eh)
    assert abs(meta["fps"] - 7) < 1e-6
    assert np.mean(np.abs(back[:, :h, :w].astype(int) - frames.astype(int))) < 12  # lossy but the same picture
    assert "h264" in meta["codec"] and "yuv420p" in meta["pix_fmt"]
    assert _no_partials(tmp_path) == []


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_gif_webp_roundtrip(tmp_path, suffix):
    from PIL import Image, ImageSequence

    frames = _frames(4)
    path = Video(frames, fps=8).save(tmp_path / f"out{suffix}")
    with Image.open(path) as im:
        assert im.size == (48, 32)
        assert im.n_frames == 4
        assert im.info.get("loop", 0) == 0
        back, durations = [], []
        for f in ImageSequence.Iterator(im):
            back.append(np.asarray(f.convert("RGB")))
            durations.append(f.info.get("duration"))
        back = np.stack(back)
    assert all(abs(d - 125) <= 10 for d in durations), durations  # GIF stores centiseconds
    assert np.mean(np.abs(back.astype(int) - frames.astype(int))) < 12


def test_png_directory_and_patterns(tmp_path):
    from PIL import Image

    frames = _frames(3)
    out = Video(frames, fps=7).save(tmp_path / "frames")
    names = sorted(os.listdir(out))
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(out, names[1]))), frames[1])  # lossless
    Video(frames, fps=7).save(str(tmp_path / "p_%03d.png"))
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("p_")) == ["p_000.png", "p_001.png", "p_002.png"]
    Video(frames, fps=7).save(str(tmp_path / "s_*.png"))
    assert (tmp_path / "s_00002.png").exists()
    single = Video(frames[:1], fps=7).save(str(tmp_path / "one.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(single)), frames[0])
    assert _no_partials(tmp_path) == []


def test_export_to_video_like_diffusers(tmp_path):
    from PIL import Image

    frames = _frames(3)
    pil = [Image.fromarray(f) for f in frames]
    p1 = export_to_video(pil, str(tmp_path / "a.mp4"), fps=5)
    assert _read_mp4(p1)[1].shape[0] == 3
    floats = [f.astype(np.float32) / 255 for f in frames]
    p2 = export_to_video(floats, str(tmp_path / "b.gif"), fps=5)
    assert Image.open(p2).n_frames == 3
    p3 = svdc.export_to_video(frames, fps=5)  # temp path like diffusers
    try:
        assert p3.endswith(".mp4") and os.path.getsize(p3) > 0
    finally:
        os.remove(p3)


def test_bad_inputs(tmp_path):
    frames = _frames(2)
    with pytest.raises(ValueError, match="'.avi'"):
        Video(frames).save(tmp_path / "x.avi")
    with pytest.raises(TypeError, match="uint8"):
        Video(frames.astype(np.int32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Video(frames.astype(np.float32))  # 0..255 floats are not float frames
    with pytest.raises(ValueError, match="shape"):
        Video(frames[..., :2])
    with pytest.raises(ValueError, match="fps"):
        Video(frames, fps=0)
    with pytest.raises(ValueError, match="fps"):
        Video(frames, fps=-3)
    with pytest.raises(ValueError, match="fps"):
        Video(frames, fps=float("nan"))
    with pytest.raises(ValueError, match="video_frames"):
        export_to_video([], str(tmp_path / "e.mp4"))
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A failure mid-write (here: an interrupt in the encoder) removes the partial file; an older file survives."""
    frames = _frames(3)
    target = tmp_path / "out.gif"
    target.write_bytes(b"old")

    def boom(self, tmp, fmt):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Video, "_write_pillow", boom)
    with pytest.raises(KeyboardInterrupt):
        Video(frames).save(target)
    assert target.read_bytes() == b"old"
    assert _no_partials(tmp_path) == []


def test_saved_files_get_normal_permissions(tmp_path):
    """The atomic temp-file-then-rename path must not leave the private 0600 mode of mkstemp on the result."""
    umask = os.umask(0o022)
    try:
        video = svdc.Video(np.zeros((2, 8, 8, 3), np.uint8), fps=7)
        for name in ("a.gif", "a.mp4", "frames"):
            out = tmp_path / name
            video.save(str(out))
            expected = 0o755 if out.is_dir() else 0o644
            assert out.stat().st_mode & 0o777 == expected, name
    finally:
        os.umask(umask)


def test_indexing_iteration_and_arrays():
    frames = _frames(4)
    v = Video(frames, fps=6)
    np.testing.assert_array_equal(v[1], frames[1])
    np.testing.assert_array_equal(v[-1], frames[3])
    part = v[1:3]
    assert isinstance(part, Video) and part.num_frames == 2 and part.fps == 6
    assert v[[0, 2]].num_frames == 2
    assert [f.shape for f in v] == [(32, 48, 3)] * 4
    np.testing.assert_array_equal(np.asarray(v), frames)
    assert np.asarray(v, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(v.float_frames * 255, frames.astype(np.float32))
    with pytest.raises(IndexError, match="out of range"):
        v[4]
    with pytest.raises(IndexError, match="no frames"):
        v[2:2]
    with pytest.raises(TypeError, match="pixel"):
        v[0, 1]


def test_float_frames_round_trip():
    frames = _frames(2)
    v = Video(frames.astype(np.float64) / 255)
    np.testing.assert_array_equal(v.frames, frames)
    with pytest.raises(ValueError, match="NaN"):
        Video(np.full((1, 2, 2, 3), np.nan, np.float32))


def test_repr_html_embeds_a_playable_video():
    import base64
    import re

    html = Video(_frames(3), fps=5)._repr_html_()
    assert html.startswith("<video") and "autoplay loop" in html
    data = base64.b64decode(re.search(r'base64,([^"]+)"', html).group(1))
    assert data[4:8] == b"ftyp"  # an mp4 file


def test_save_fps_crf_bitrate(tmp_path):
    import imageio_ffmpeg

    v = Video(_frames(6), fps=7)
    p = v.save(tmp_path / "a.mp4", fps=12)
    meta = next(imageio_ffmpeg.read_frames(p))
    assert abs(meta["fps"] - 12) < 1e-6 and v.fps == 7
    small = os.path.getsize(v.save(tmp_path / "b.mp4", crf=45))
    big = os.path.getsize(v.save(tmp_path / "c.mp4", crf=5))
    assert small < big  # the rate control reaches the encoder
    assert os.path.getsize(v.save(tmp_path / "d.mp4", bitrate="2M")) > 0
    with pytest.raises(ValueError, match="crf"):
        v.save(tmp_path / "e.mp4", crf=60)
    with pytest.raises(ValueError, match="bitrate"):
        v.save(tmp_path / "e.mp4", bitrate="fast")
    with pytest.raises(ValueError, match="one rate control"):
        v.save(tmp_path / "e.mp4", crf=20, bitrate="1M")
    with pytest.raises(ValueError, match="quality"):
        v.save(tmp_path / "e.mp4", quality=11)
    assert not os.path.exists(tmp_path / "e.mp4")
