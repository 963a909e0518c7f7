"""The Ray backend on one module-wide `ray.init(num_cpus=2)`: Worker actors asking for half a CPU each reproduce the
one-by-one outputs byte for byte, a corrupt image is a failed row while the other jobs finish, and settings the
cluster cannot satisfy are refused up front."""
from __future__ import annotations

import os

import pytest

from svdc.runner import run_batch
from tests.runner._jobs import COLUMNS, OPTIONS, THREADS, assert_same_as_reference, job_rows, outputs, write_csv

if not os.environ.get("CI"):
    pytest.importorskip("ray", reason="the Ray backend needs pip install 'svdc[ray]'")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def ray_session():
    import ray

    # the workers must import this checkout's svdc, as the runner arranges for a Ray it starts itself
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
             log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_equals_local_and_records_a_corrupt_image(ray_session, jobs_dir, reference, tmp_path):
    rows = job_rows() + [{"id": "corrupt", "image": "corrupt.png", "num_frames": 3, "num_inference_steps": 2}]
    manifest = write_csv(jobs_dir / "with_corrupt.csv", rows, COLUMNS)
    out = tmp_path / "out"
    summary = run_batch(manifest, out, backend="ray", workers=2, cpus_per_worker=0.5, threads_per_worker=THREADS,
                        options=OPTIONS, progress=False)
    assert (summary.ok, summary.failed) == (12, 1), summary.results
    assert_same_as_reference(outputs(out), reference)
    bad = summary.results["corrupt"]
    assert bad["status"] == "failed" and "cannot read image file" in bad["error"] and bad["output"] is None
    workers = {r["worker"] for r in summary.results.values()}
    assert len(workers) == 2 and os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in workers}
    assert ray_session.is_initialized()  # the runner leaves a session it did not start running

    again = run_batch(manifest, out, backend="ray", workers=2, cpus_per_worker=0.5, threads_per_worker=THREADS,
                      options=OPTIONS, progress=False)
    assert (again.skipped, again.ok, again.failed) == (12, 0, 1)  # the failed job was tried again, the rest kept


def test_ray_refuses_what_the_cluster_cannot_fit(ray_session, jobs_dir, tmp_path):
    with pytest.raises(ValueError, match=r"workers=3: .* fits 2"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", workers=3, cpus_per_worker=1.0, options=OPTIONS,
                  progress=False)
    with pytest.raises(ValueError, match="gpus_per_worker=1: the Ray cluster has 2 CPU.* 0 GPU"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", gpus_per_worker=1, options=OPTIONS,
                  progress=False)
    with pytest.raises(ValueError, match="already initialised"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", address="127.0.0.1:1", options=OPTIONS,
                  progress=False)



def test_dead_actor_is_replaced_and_its_jobs_retried(ray_session, jobs_dir, reference, tmp_path):
    import json
    import signal
    import threading
    import time

    manifest = write_csv(jobs_dir / "six.csv", job_rows()[:6], COLUMNS)
    out = tmp_path / "out"
    killed = []

    def kill_first_writer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if os.path.exists(out / "results.jsonl"):
                with open(out / "results.jsonl") as f:
                    rows = [json.loads(line) for line in f if line.endswith("\n")]
                if rows:
                    pid = int(rows[0]["worker"].rsplit(":", 1)[1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_writer)
    killer.start()
    summary = run_batch(manifest, out, backend="ray", workers=2, cpus_per_worker=0.5, threads_per_worker=THREADS,
                        retries=2, options=OPTIONS, progress=False)
    killer.join()
    assert killed and (summary.ok, summary.failed) == (6, 0), summary.results
    assert_same_as_reference(outputs(out), reference, ids=[r["id"] for r in job_rows()[:6]])
    with open(out / "results.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert str(killed[0]) not in {r["worker"].rsplit(":", 1)[1] for r in rows if r["worker"] and r["attempt"] > 1}
    if any(r["status"] == "failed" for r in rows):  # the actor held queued jobs when it died
        assert all("actor died" in r["error"] for r in rows if r["status"] == "failed")


def test_curation_on_ray_equals_the_local_manifest(ray_session, tmp_path):
    import numpy as np

    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from svdc.curation import read_table, run
    from svdc.curation.manifest import TABLES
    from tests.curation._videos import Shot, encode

    videos = []
    for k in range(3):
        a, b = Shot(300 + k, 96, 160, (200, 40, 40)), Shot(400 + k, 96, 160, (40, 40, 200))
        frames = (np.clip((a if i < 20 + k else b).frame(i), 0, 255).astype(np.uint8) for i in range(40))
        videos.append(encode(tmp_path / f"v{k}.mp4", frames, 24))
    (tmp_path / "broken.mp4").write_text("not a video\n" * 20)
    videos.append(str(tmp_path / "broken.mp4"))

    local = run(videos, tmp_path / "local", workers=1, progress=False)
    on_ray = run(videos, tmp_path / "ray", workers=2, backend="ray", cpus_per_worker=0.5, progress=False)
    assert (on_ray["done"], on_ray["failed"], on_ray["skipped"]) == (local["done"], local["failed"], 0) == (4, 1, 0)
    want = {t: read_table(tmp_path / "local", t) for t in TABLES}
    got = {t: read_table(tmp_path / "ray", t) for t in TABLES}
    assert got == want
    assert [c["frame"] for c in got["cuts"]] and len(got["videos"]) == 4
    again = run(videos, tmp_path / "ray", workers=2, backend="ray", cpus_per_worker=0.5, progress=False)
    assert (again["done"], again["skipped"]) == (0, 4)
    assert {t: read_table(tmp_path / "ray", t) for t in TABLES} == want


def test_multiview_on_ray_equals_local(ray_session, multiview_dir, multiview_reference, tmp_path):
    from tests.runner._jobs import multiview_outputs
    from tests.runner.test_batch_multiview import assert_same_orbits

    out = tmp_path / "out"
    summary = run_batch(multiview_dir / "multiview.csv", out, backend="ray", workers=2, cpus_per_worker=0.5,
                        threads_per_worker=THREADS, options=OPTIONS, progress=False)
    assert (summary.ok, summary.failed) == (6, 0), summary.results
    assert_same_orbits(multiview_outputs(out), multiview_reference)
    assert sorted(os.listdir(out)) == sorted([*multiview_reference, "results.jsonl"])  # no staging folders left
