"""The scoring stage through svdc.runner: two local worker processes and Ray actors write the same `quality` table
as the same scorers run in this process, and a rerun skips every finished video."""
from __future__ import annotations

import os

import pytest

from svdc.curation.demo import tiny_aesthetic_head, tiny_clip_model
from svdc.curation.scores import ScoreParams, Scorers, score_manifest
from svdc.curation.stages import read_any_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _params(m, tmp_path):
    return ScoreParams(clip_model=tiny_clip_model(tmp_path / "clip"),
                       aesthetic_head=tiny_aesthetic_head(tmp_path / "head.npz"), captions=m["captions"])


def _assert_same_tables(a, b):
    assert [r["clip_id"] for r in a] == [r["clip_id"] for r in b]
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], abs=1e-6), k
            else:
                assert x[k] == y[k], k


def _reference(m, tmp_path, params):
    """The same scorers in this process, on a private copy of the (not yet scored) manifest."""
    import shutil

    root = tmp_path / "inline"
    shutil.copytree(m["root"], root)
    stats = score_manifest(root, params, scorers=Scorers.from_params(params), progress=False)
    assert stats["done"] == 4  # really computed here, not taken from another run's parts
    return read_any_table(root, "quality")


def test_local_workers_equal_in_process(manifest_copy, tmp_path):
    m = manifest_copy
    params = _params(m, tmp_path)
    reference = _reference(m, tmp_path, params)
    stats = score_manifest(m["root"], params, workers=2, progress=False)
    assert (stats["done"], stats["skipped"], stats["failed"]) == (4, 0, 0)
    _assert_same_tables(read_any_table(m["root"], "quality"), reference)
    again = score_manifest(m["root"], params, workers=2, progress=False)
    assert (again["done"], again["skipped"]) == (0, 4)
    with pytest.raises(ValueError, match="Python scorer objects run in this process"):
        score_manifest(m["root"], params, scorers=Scorers(), workers=2, progress=False)


def test_ray_equals_in_process(manifest_copy, tmp_path):
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="the Ray backend needs pip install 'svdc[ray]'")
    import ray

    m = manifest_copy
    params = _params(m, tmp_path)
    reference = _reference(m, tmp_path, params)
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
             log_to_driver=False)
    try:
        stats = score_manifest(m["root"], params, backend="ray", workers=2, cpus_per_worker=0.5, progress=False)
    finally:
        ray.shutdown()
    assert (stats["done"], stats["failed"]) == (4, 0)
    _assert_same_tables(read_any_table(m["root"], "quality"), reference)


def test_a_failing_video_is_reported_and_the_rest_kept(manifest_copy, tmp_path):
    """A video replaced by garbage after `curate run`: its job fails in the worker, the others are scored and
    written, the error names it, and a rerun retries only that video."""
    from svdc.curation.manifest import read_table
    from svdc.curation.stages import write_table

    m = manifest_copy
    videos = read_table(m["root"], "videos")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    victim = videos[0]["video_id"]
    videos[0]["path"] = str(broken)
    write_table(m["root"], "videos", videos)
    params = ScoreParams(captions=m["captions"])
    with pytest.raises(RuntimeError, match=f"1 video\\(s\\) failed.*{victim}"):
        score_manifest(m["root"], params, progress=False)
    scored = {r["video_id"] for r in read_any_table(m["root"], "quality")}
    assert scored == {v["video_id"] for v in videos} - {victim}
    with pytest.raises(RuntimeError, match="1 video"):
        score_manifest(m["root"], params, progress=False)
