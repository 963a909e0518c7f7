"""Bad input: missing and empty files, no video stream, variable frame rate, absurd parameters."""
import subprocess

import numpy as np
import pytest

from svdc.cli import main
from svdc.curation import CurationParams, MotionParams, SmallFrames, VideoReadError, probe, process_video
from tests.curation._videos import Shot, encode, ffmpeg


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        probe(str(tmp_path / "nope.mp4"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        SmallFrames(str(tmp_path / "nope.mp4"))
    row = process_video(str(tmp_path / "nope.mp4"))["videos"][0]
    assert row["status"] == "failed" and "no such file" in row["error"]


def test_zero_length_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        probe(str(empty))
    assert process_video(str(empty))["videos"][0]["status"] == "failed"


def test_no_video_stream(tmp_path):
    audio = tmp_path / "tone.m4a"
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio)], check=True)
    with pytest.raises(VideoReadError, match="no video stream"):
        SmallFrames(str(audio))
    row = process_video(str(audio))["videos"][0]
    assert row["status"] == "failed" and "no video stream" in row["error"]


def test_not_a_path():
    with pytest.raises(TypeError, match="path"):
        probe(42)


def test_variable_frame_rate(tmp_path):
    """Frames 3..5 of every 10 dropped, timestamps kept: cut frame indices count decoded frames and times follow
    the timestamps."""
    a, b = Shot(1, 96, 160, (200, 40, 40)), Shot(2, 96, 160, (40, 40, 200))
    cfr = encode(tmp_path / "cfr.mp4", (np.clip((a if i < 50 else b).frame(i), 0, 255).astype(np.uint8)
                                        for i in range(100)), 25)
    vfr = tmp_path / "vfr.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-i", cfr, "-vf", r"select='not(between(mod(n\,10)\,3\,5))'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(vfr)], check=True)
    rows = process_video(str(vfr))
    video = rows["videos"][0]
    assert video["status"] == "ok" and video["variable_frame_rate"] is True
    assert video["num_frames"] == 70
    hard = [c for c in rows["cuts"] if c["kind"] == "hard"]
    assert len(hard) == 1
    # source frame 50 is decoded frame 35 (5 whole groups of 7) and shows at 50 / 25 s
    assert hard[0]["frame"] == 35 and hard[0]["time"] == pytest.approx(2.0)


@pytest.mark.parametrize("make,match", [
    (lambda: CurationParams(motion=MotionParams(sample_fps=0)), "sample_fps"),
    (lambda: CurationParams(motion=MotionParams(sample_fps=float("nan"))), "sample_fps"),
    (lambda: CurationParams(analysis_width=2), "analysis_width"),
])
def test_absurd_pipeline_parameters(make, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        process_video(str(tmp_path / "never-read.mp4"), make())


@pytest.mark.parametrize("option", [["--fps-levels", "8,0,2"], ["--fps-levels", "8,-1"], ["--fps-levels", "x"],
                                    ["--min-seconds", "nan"]])
def test_cli_refuses_absurd_options(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["curate", "run", str(tmp_path / "v.mp4"), "--out", str(tmp_path / "m"), "-q", *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_cli_reports_bad_workers_and_missing_videos(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")
    assert main(["curate", "run", str(video), "--out", str(tmp_path / "m"), "-q", "--workers", "0"]) == 2
    assert "workers" in capsys.readouterr().err
    assert main(["curate", "run", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "m"), "-q"]) == 2
    assert "do not exist" in capsys.readouterr().err
