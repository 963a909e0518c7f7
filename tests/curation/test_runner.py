"""The manifest runner: resumable after a kill (same manifest as an uninterrupted run), failures recorded."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from svdc.curation import read_table, run
from svdc.curation.manifest import TABLES
from tests.curation._videos import Shot, encode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory):
    """Six 2-second 160x96 videos, each with one hard cut at frame 24."""
    d = tmp_path_factory.mktemp("many")
    paths = []
    for k in range(6):
        a, b = Shot(100 + k, 96, 160, (200, 40, 40)), Shot(200 + k, 96, 160, (40, 40, 200))
        frames = (np.clip((a if i < 24 else b).frame(i), 0, 255).astype(np.uint8) for i in range(48))
        paths.append(encode(d / f"v{k}.mp4", frames, 24))
    return paths


def tables(root):
    return {t: read_table(root, t) for t in TABLES}


def curate_cli(videos, out):
    return [sys.executable, "-m", "svdc", "curate", "run", *videos, "--out", str(out), "--workers", "1", "-q"]


def test_killed_run_resumes_to_the_same_manifest(small_videos, tmp_path):
    reference = tmp_path / "whole"
    stats = run(small_videos, reference, progress=False)
    assert stats["done"] == 6 and stats["failed"] == 0
    whole = tables(reference)
    assert len(whole["videos"]) == 6 and len(whole["cuts"]) == 6
    assert [c["frame"] for c in whole["cuts"]] == [24] * 6

    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(curate_cli(small_videos, out), cwd=ROOT, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "parts").is_dir() and any(p.suffix == ".json" for p in (out / "parts").iterdir()):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p for p in (out / "parts").iterdir() if p.suffix == ".json"]
    assert 1 <= len(finished) < 6, "the kill should land mid-run"
    assert not (out / "videos.parquet").exists()

    stats = run(small_videos, out, progress=False)
    assert stats["skipped"] == len(finished) and stats["done"] == 6 - len(finished)
    assert tables(out) == whole
    # a third run has nothing to do and leaves the same manifest
    assert run(small_videos, out, progress=False)["done"] == 0
    assert tables(out) == whole


def test_unreadable_files_are_recorded_and_the_run_goes_on(small_videos, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    data = open(small_videos[0], "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    stats = run([str(truncated), small_videos[1], str(text)], tmp_path / "m", workers=2, fmt="jsonl",
                progress=False)
    assert stats["done"] == 3 and stats["failed"] == 2
    videos = {os.path.basename(r["path"]): r for r in read_table(tmp_path / "m", "videos")}
    assert videos["v1.mp4"]["status"] == "ok"
    for name in ("truncated.mp4", "notes.mp4"):
        assert videos[name]["status"] == "failed" and videos[name]["error"], videos[name]
    assert (tmp_path / "m" / "videos.jsonl").is_file()


def test_runner_checks_its_arguments(small_videos, tmp_path):
    with pytest.raises(FileNotFoundError, match="do not exist"):
        run([small_videos[0], str(tmp_path / "missing.mp4")], tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match="workers"):
        run(small_videos, tmp_path / "m", workers=0, progress=False)
    with pytest.raises(TypeError, match="list of paths"):
        run(small_videos[0], tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match="format"):
        run(small_videos, tmp_path / "m", fmt="csv", progress=False)
