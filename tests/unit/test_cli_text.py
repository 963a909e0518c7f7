"""`svdc txt2img`, `svdc txt2vid` and `svdc demo --workflow txt2vid` on the tiny random models (in process), and
their refusals of bad arguments before any model loads."""
import numpy as np
import pytest
from PIL import Image

from svdc.cli import main


def test_txt2img_tiny(tmp_path, capsys):
    out = tmp_path / "fox.png"
    assert main(["txt2img", "a fox!", "--model", "tiny", "-o", str(out), "--seed", "1", "--steps", "2", "-q"]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)
    assert "seed 1" in capsys.readouterr().out


def test_txt2img_scheduler_switch(tmp_path):
    a, b = tmp_path / "euler.png", tmp_path / "dpm.png"
    common = ["--model", "tiny", "--seed", "1", "--steps", "3", "-q"]
    assert main(["txt2img", "a fox", "-o", str(a), *common]) == 0
    assert main(["txt2img", "a fox", "-o", str(b), "--scheduler", "DPMSolverMultistepScheduler", *common]) == 0
    assert not np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_txt2img_unknown_scheduler_is_refused_by_argparse(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["txt2img", "a", "--model", "tiny", "-o", "x.png", "--scheduler", "LMSDiscreteScheduler"])
    assert e.value.code == 2 and "--scheduler" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_txt2vid_tiny_writes_video_and_image(tmp_path, capsys):
    out, image = tmp_path / "fox.gif", tmp_path / "first.png"
    assert main(["txt2vid", "a fox", "--image-model", "tiny", "--video-model", "tiny", "-o", str(out),
                 "--image-output", str(image), "--seed", "3", "--frames", "2", "--steps", "2",
                 "--image-steps", "2", "-q"]) == 0
    assert out.stat().st_size > 0 and np.asarray(Image.open(image)).shape == (64, 64, 3)
    assert "image seed" in capsys.readouterr().out


def test_demo_txt2vid(tmp_path):
    out = tmp_path / "demo.gif"
    assert main(["demo", "--workflow", "txt2vid", "-o", str(out), "--frames", "2", "--steps", "1", "-q"]) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("argv, match", [
    (["txt2img", "a", "--model", "tiny", "-o", "x.txt"], "expected an image file name"),
    (["txt2img", "a", "--model", "/no/such/model", "-o", "x.png"], "--model"),
    (["txt2vid", "a", "--image-model", "tiny", "--video-model", "/no/such", "-o", "x.mp4"], "--video-model"),
    (["txt2vid", "a", "--image-model", "/no/such", "--video-model", "tiny", "-o", "x.mp4"], "--image-model"),
    (["txt2vid", "a", "--image-model", "tiny", "--video-model", "tiny", "-o", "x.avi"], "extension"),
])
def test_bad_arguments_refused_before_loading(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
