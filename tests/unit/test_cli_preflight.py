"""`svdc img2vid` / `svdc demo` refuse a bad output path (extension, unwritable or non-folder parent), a missing or
unreadable image and a missing model before any model loads (the loaders are replaced by tripwires here); the
stages are reported with the total time; `svdc info` says "not built" for a backend the build does not contain."""
import os
import re

import pytest

import svdc.cli
from svdc import tiny
from svdc.cli import main


@pytest.fixture
def no_model_loads(monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(tiny, "tiny_pipeline", tripwire)
    monkeypatch.setattr(svdc.ImageToVideo, "from_pretrained", tripwire)


@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    p = tmp_path / "in.png"
    Image.fromarray(tiny.test_image(32, 32)).save(p)
    return str(p)


def _fails(argv, capsys, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, (text, err)


def test_bad_output_paths(tmp_path, image_file, capsys, no_model_loads):
    _fails(["img2vid", image_file, "--model", "tiny", "-o", str(tmp_path / "out.avi")], capsys, "'.avi'", ".mp4")
    _fails(["demo", "-o", str(tmp_path / "out.mkv")], capsys, "'.mkv'")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    _fails(["img2vid", image_file, "--model", "tiny", "-o", str(a_file / "out.mp4")], capsys, "is not a folder")
    _fails(["demo", "-o", "/proc/svdc-cannot-write-here/out.mp4"], capsys, "cannot write in '/proc'")
    assert [n for n in os.listdir(tmp_path) if n.startswith(".svdc")] == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path, image_file, capsys, no_model_loads):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _fails(["img2vid", image_file, "--model", "tiny", "-o", str(ro / "out.mp4")], capsys, "cannot write in")
    finally:
        ro.chmod(0o700)


def test_bad_image_and_model(tmp_path, image_file, capsys, no_model_loads):
    out = str(tmp_path / "out.mp4")
    _fails(["img2vid", str(tmp_path / "missing.png"), "--model", "tiny", "-o", out], capsys, "no such image file")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not a picture")
    _fails(["img2vid", str(junk), "--model", "tiny", "-o", out], capsys, "cannot read image file")
    _fails(["img2vid", image_file, "--model", str(tmp_path / "no_model"), "-o", out], capsys, "no such file",
           "hub id")
    _fails(["img2vid", image_file, "--model", "org/not-cached", "-o", out], capsys, "not in the local Hugging Face")
    assert not os.path.exists(out)


def test_stages_and_total_time(tmp_path, image_file, capsys):
    out = tmp_path / "v.gif"
    assert main(["img2vid", image_file, "--model", "tiny", "-o", str(out), "--frames", "2", "--steps", "2",
                 "--height", "32", "--width", "32"]) == 0
    captured = capsys.readouterr()
    stages = re.findall(r"\[ *[0-9.]+s\] ([a-z ]+)", captured.err)  # between tqdm's redraws of its bar
    assert stages == ["loading tiny", "denoising", "decoding", "writing"]
    assert " in " in captured.out and captured.out.rstrip().endswith(" s")


def test_info_says_not_built(monkeypatch, capsys):
    import svdc.info_text as info_text

    data = {"version": "9", "compiler": "cc", "backends": {"cpu": "PASS", "cuda": "FAIL: not available (x)"}}
    monkeypatch.setattr(info_text, "cuda_built", lambda: False)
    text = info_text.render(data)
    assert "cuda: not built" in text and "FAIL" not in text and "cpu: PASS" in text
    monkeypatch.setattr(info_text, "cuda_built", lambda: True)
    assert "cuda: FAIL: not available (x)" in info_text.render(data)
    monkeypatch.undo()
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("python:", "numpy:", "install:", "BLAS:", "backends:", "cpu: "):
        assert field in out, field
