"""Fixtures of the curation tests: a short generated video with exact labels."""
from __future__ import annotations

import os

import numpy as np
import pytest

if not os.environ.get("CI"):  # in CI the curation extra is part of .[test]: a missing package must fail there
    pytest.importorskip("av")
    pytest.importorskip("cv2")

from tests.curation._videos import Shot, encode  # noqa: E402


@pytest.fixture(scope="session")
def labelled_video(tmp_path_factory):
    """160x96 at 24 fps, 264 frames: hard cuts at 48 and 120, a flash at 70..72 (trap), a fade through black
    over frames 150..173, a dissolve over 210..225. Keyframes every 20 frames (no scene-cut keyframes), so clip
    starts really move. Returns (path, labels)."""
    h, w, fps = 96, 160, 24
    tints = [(200, 40, 40), (40, 200, 40), (40, 40, 220), (220, 200, 40), (200, 40, 200)]
    shots = [Shot(10 + k, h, w, tints[k]) for k in range(5)]
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 2, (h, w, 3)).astype(np.float32) for _ in range(4)]
    frames = []
    for i in range(264):
        if i < 48:
            img = shots[0].frame(i)
        elif i < 120:
            img = shots[1].frame(i)
            if 70 <= i <= 72:
                a = (0.85, 0.55, 0.25)[i - 70]
                img = img * (1 - a) + 255 * a
        elif i < 150:
            img = shots[2].frame(i)
        elif i < 162:  # fade out 150..161, black 162, fade in 163..173
            img = shots[2].frame(i) * (1 - (i - 149) / 12)
        elif i == 162:
            img = np.zeros((h, w, 3), np.float32)
        elif i < 174:
            img = shots[3].frame(i) * ((i - 162) / 12)
        elif i < 210:
            img = shots[3].frame(i)
        elif i < 226:
            a = (i - 209) / 17
            img = shots[3].frame(i) * (1 - a) + shots[4].frame(i) * a
        else:
            img = shots[4].frame(i)
        frames.append(np.clip(img + noise[i % 4], 0, 255).astype(np.uint8))
    path = tmp_path_factory.mktemp("videos") / "labelled.mp4"
    encode(path, frames, fps, ["-g", "20", "-keyint_min", "20", "-sc_threshold", "0", "-bf", "2"])
    labels = {"fps": fps, "num_frames": 264, "cuts": [48, 120], "flash": (70, 72),
              "gradual": [("fade_black", 150, 173), ("dissolve", 210, 225)]}
    return str(path), labels


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory):
    """Curation I's manifest of svdc.curation.demo's labelled videos (4 videos, 6 clips), built once. Tests that
    write into a manifest take `manifest_copy`. Returns {"root", "videos", "labels", "captions"}."""
    from svdc.curation import run
    from svdc.curation.demo import synthetic_videos

    base = tmp_path_factory.mktemp("demo")
    made = synthetic_videos(base / "videos")
    run(made["videos"], base / "manifest", progress=False)
    return {"root": str(base / "manifest"), **made}


@pytest.fixture
def manifest_copy(demo_manifest, tmp_path):
    """A private copy of the demo manifest folder (same videos)."""
    import shutil

    root = tmp_path / "manifest"
    shutil.copytree(demo_manifest["root"], root)
    return {**demo_manifest, "root": str(root)}
