"""Video.save never loses data: ffmpeg's failures are errors (the old file survives), PNG frame sets are replaced
whole, and symlinks / named pipes / private files are written through, refused or kept private."""
import os
import subprocess
import sys

import numpy as np
import pytest

import svdc


def _noise(n=4, h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if ".partial-" in n)


def test_mp4_refused_frame_size_is_an_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"the user's old video")
    with pytest.raises(OSError, match="ffmpeg failed.*invalid width x height"):
        svdc.Video(np.zeros((1, 2, 40000, 3), np.uint8)).save(target)  # libx264 refuses 40000x2
    assert target.read_bytes() == b"the user's old video"
    assert _leftovers(tmp_path) == []


def test_mp4_file_size_limit_is_an_error(tmp_path):
    """A file-size limit (what a full disk looks like to ffmpeg: its writes fail) must not report success."""
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    code = (
        "import resource, sys, numpy as np, svdc\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "frames = np.random.default_rng(0).integers(0, 256, (6, 128, 128, 3), dtype=np.uint8)\n"
        f"svdc.Video(frames).save({str(target)!r})\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(svdc.__file__)))
    assert r.returncode != 0, r.stdout
    assert "ffmpeg" in r.stderr and "OSError" in r.stderr, r.stderr[-2000:]
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_png_folder_holding_a_longer_video_ends_with_the_new_one_only(tmp_path):
    out = tmp_path / "frames"
    svdc.Video(_noise(5, seed=1)).save(out)
    other = out / "notes.txt"
    other.write_text("mine")
    new = _noise(3, seed=2)
    svdc.Video(new).save(out)
    names = sorted(os.listdir(out))
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png", "notes.txt"]
    from PIL import Image
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"frame_{i:05d}.png")), new[i])


def test_png_pattern_failure_part_way_leaves_the_old_set(tmp_path, monkeypatch):
    old = _noise(3, seed=3)
    pattern = str(tmp_path / "f_%03d.png")
    svdc.Video(old).save(pattern)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    import svdc.video as video_module

    real, calls = video_module._write_png, []

    def fail_on_third(path, frame):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real(path, frame)

    monkeypatch.setattr(video_module, "_write_png", fail_on_third)
    with pytest.raises(OSError, match="simulated"):
        svdc.Video(_noise(3, seed=4)).save(pattern)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before


def test_png_folder_failure_part_way_leaves_the_old_set(tmp_path, monkeypatch):
    out = tmp_path / "frames"
    svdc.Video(_noise(3, seed=5)).save(out)
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    import svdc.video as video_module

    real, calls = video_module._write_png, []

    def fail_on_second(path, frame):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, frame)

    monkeypatch.setattr(video_module, "_write_png", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        svdc.Video(_noise(3, seed=6)).save(out)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png"])
def test_saving_over_a_symlink_writes_through_it(tmp_path, suffix):
    real = tmp_path / ("real" + suffix)
    real.write_bytes(b"old")
    link = tmp_path / ("link" + suffix)
    link.symlink_to(real)
    svdc.Video(_noise(1)).save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.stat().st_size > 3


def test_saving_over_a_named_pipe_is_refused(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="named pipe"):
        svdc.Video(_noise(1)).save(fifo)
    assert os.path.exists(fifo) and not fifo.is_file()
    assert _leftovers(tmp_path) == []


def test_saving_over_dev_null_is_refused_not_replaced(tmp_path):
    link = tmp_path / "null.gif"
    link.symlink_to("/dev/null")
    with pytest.raises(ValueError, match="device"):
        svdc.Video(_noise(1)).save(link)


@pytest.mark.parametrize("suffix", [".mp4", ".webp"])
def test_a_private_file_stays_private(tmp_path, suffix):
    target = tmp_path / ("secret" + suffix)
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    svdc.Video(_noise(2)).save(target)
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.stat().st_size > 3
