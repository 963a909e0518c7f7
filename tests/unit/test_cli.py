"""`svdc img2vid --model tiny` and `svdc demo` write readable mp4 / gif / PNG output; bad input exits with a clear
message and status 2 instead of a traceback."""
import os

import numpy as np
import pytest

from svdc.cli import main
from svdc import tiny


def _mp4_frames(path):
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(path)
    meta = gen.__next__()
    return meta, sum(1 for _ in gen)


@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    p = tmp_path / "in.png"
    Image.fromarray(tiny.test_image(48, 80)).save(p)
    return str(p)


FAST = ["--frames", "3", "--steps", "2", "--seed", "1", "-q"]


def test_img2vid_tiny_mp4(tmp_path, image_file, capsys):
    out = tmp_path / "out.mp4"
    assert main(["img2vid", image_file, "--model", "tiny", "-o", str(out), *FAST]) == 0
    meta, n = _mp4_frames(str(out))
    assert n == 3 and tuple(meta["size"]) == (tiny.TINY_WIDTH, tiny.TINY_HEIGHT)
    text = capsys.readouterr().out
    assert "RANDOM" in text and "wrote" in text and "seed 1" in text


def test_img2vid_gif_and_pngs(tmp_path, image_file):
    from PIL import Image

    gif = tmp_path / "out.gif"
    assert main(["img2vid", image_file, "--model", "tiny", "-o", str(gif), "--height", "32", "--width", "48",
                 *FAST]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size == (48, 32)
    folder = tmp_path / "frames"
    assert main(["img2vid", image_file, "--model", "tiny", "-o", str(folder), *FAST]) == 0
    assert sorted(os.listdir(folder)) == [f"frame_{i:05d}.png" for i in range(3)]


def test_demo(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "-o", str(out), *FAST]) == 0
    assert _mp4_frames(str(out))[1] == 3
    assert "weights are RANDOM" in capsys.readouterr().out


def test_same_seed_same_output(tmp_path, image_file):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["img2vid", image_file, "--model", "tiny", "-o", str(d), *FAST]) == 0
    from PIL import Image

    for name in os.listdir(a):
        np.testing.assert_array_equal(np.asarray(Image.open(a / name)), np.asarray(Image.open(b / name)))


@pytest.mark.parametrize("extra,match", [
    (["--height", "60"], "height"),
    (["--steps", "0"], "num_inference_steps"),
    (["--fps", "-2"], "fps"),
    (["--min-guidance", "3", "--max-guidance", "1"], "min_guidance_scale"),
    (["--frames", "0"], "num_frames"),
])
def test_bad_arguments_exit_2(tmp_path, image_file, capsys, extra, match):
    out = tmp_path / "x.mp4"
    assert main(["img2vid", image_file, "--model", "tiny", "-o", str(out), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    assert "error" in err and match in err
    assert not out.exists()


def test_bad_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["img2vid", str(bad), "--model", "tiny", "-o", str(tmp_path / "x.mp4"), *FAST]) == 2
    assert "cannot read image file" in capsys.readouterr().err
    assert main(["img2vid", str(bad), "--model", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path / "x.avi"), *FAST]) == 2
    assert "'.avi'" in capsys.readouterr().err
