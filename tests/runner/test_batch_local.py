"""The local backend: 12 tiny image-to-video jobs on 2 worker processes give the same bytes as one-by-one pipeline
calls; a run killed by SIGKILL after a few jobs leaves no truncated output, and a rerun does only the rest."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from svdc.runner import read_results, run_batch

from tests.runner._jobs import OPTIONS, THREADS, assert_same_as_reference, outputs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_workers_equal_one_by_one(jobs_dir, reference, tmp_path):
    out = tmp_path / "out"
    summary = run_batch(jobs_dir / "jobs.csv", out, workers=2, threads_per_worker=THREADS, options=OPTIONS,
                        progress=False)
    assert (summary.ok, summary.failed, summary.skipped, summary.total) == (12, 0, 0, 12)
    assert_same_as_reference(outputs(out), reference)
    rows = read_results(out)
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert len({r["worker"] for r in rows.values()}) == 2  # both processes took jobs
    assert rows["clip-05"]["seed"] not in (None, 1005)  # the id-derived seed was used and recorded
    assert rows["clip-01"]["height"] == 48 and rows["clip-01"]["frames"] == 3
    # a second run finds everything done and runs nothing
    again = run_batch(jobs_dir / "jobs.csv", out, workers=2, threads_per_worker=THREADS, options=OPTIONS,
                      progress=False)
    assert (again.ok, again.skipped) == (0, 12)
    with open(out / "results.jsonl") as f:
        assert sum(1 for _ in f) == 12


def test_changed_row_is_redone(jobs_dir, tmp_path):
    """A finished job whose row (or options) changed is not 'finished' any more: its parameters hash differs."""
    row = {"id": "a", "image": str(jobs_dir / "red.png"), "seed": 1, "num_frames": 2, "num_inference_steps": 1}
    out = tmp_path / "out"
    assert run_batch([row], out, workers=1, options=OPTIONS, progress=False).ok == 1
    assert run_batch([row], out, workers=1, options=OPTIONS, progress=False).skipped == 1
    assert run_batch([dict(row, seed=2)], out, workers=1, options=OPTIONS, progress=False).ok == 1


def _ok_lines(path) -> int:
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.endswith("\n") and json.loads(line)["status"] == "ok")


def test_killed_run_resumes_without_redoing(jobs_dir, reference, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "svdc", "batch", str(jobs_dir / "jobs.csv"), "--out", str(out), "--workers", "2",
           "--threads-per-worker", str(THREADS), "--model", "tiny", "--device", "cpu", "-q"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while _ok_lines(out / "results.jsonl") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    done_before = {i for i, r in read_results(out).items() if r["status"] == "ok"}
    assert 3 <= len(done_before) < 12, (len(done_before), err.decode()[-2000:])

    # whatever carries a final name is complete (bit-identical to the reference), never truncated
    killed = outputs(out)
    assert all(killed[i] == reference[i] for i in killed)
    stamps = {i: os.stat(out / f"{i}.mp4").st_mtime_ns for i in done_before}

    summary = run_batch(jobs_dir / "jobs.csv", out, workers=2, threads_per_worker=THREADS, options=OPTIONS,
                        progress=False)
    assert summary.skipped == len(done_before) and summary.ok == 12 - len(done_before)
    assert_same_as_reference(outputs(out), reference)
    assert {i: os.stat(out / f"{i}.mp4").st_mtime_ns for i in done_before} == stamps  # not redone
    with open(out / "results.jsonl") as f:
        ids = [json.loads(line)["id"] for line in f]
    assert all(ids.count(i) == 1 for i in done_before)
    assert not [n for n in os.listdir(out) if ".partial-" in n]  # the killed run's temporary files are gone


def test_failed_job_recorded_others_finish(jobs_dir, tmp_path):
    rows = [{"id": "good", "image": str(jobs_dir / "red.png"), "num_frames": 2, "num_inference_steps": 1},
            {"id": "broken", "image": str(jobs_dir / "corrupt.png"), "num_frames": 2, "num_inference_steps": 1},
            {"id": "missing", "image": str(jobs_dir / "nope.png"), "num_frames": 2, "num_inference_steps": 1}]
    summary = run_batch(rows, tmp_path, workers=1, retries=3, options=OPTIONS, progress=False)
    assert (summary.ok, summary.failed) == (1, 2)
    res = summary.results
    assert res["good"]["status"] == "ok" and os.path.isfile(tmp_path / "good.mp4")
    for i in ("broken", "missing"):
        assert res[i]["status"] == "failed" and res[i]["output"] is None and not os.path.exists(tmp_path / f"{i}.mp4")
        assert res[i]["attempt"] == 1  # bad input is not retried
    assert "cannot read image file" in res["broken"]["error"] and "corrupt.png" in res["broken"]["error"]
    assert "no such image file" in res["missing"]["error"]



def _kill_first_worker_after_first_result(out, killed: list) -> None:
    """Waits for the first result row, then SIGKILLs the process that wrote it (a worker dying mid-run)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.exists(out / "results.jsonl"):
            with open(out / "results.jsonl") as f:
                lines = [json.loads(line) for line in f if line.endswith("\n")]
            if lines:
                pid = int(lines[0]["worker"].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.02)


def test_dead_worker_process_is_retried_on_a_fresh_pool(jobs_dir, reference, tmp_path):
    import threading

    out = tmp_path / "out"
    killed: list = []
    killer = threading.Thread(target=_kill_first_worker_after_first_result, args=(out, killed))
    killer.start()
    summary = run_batch(jobs_dir / "jobs.csv", out, workers=2, threads_per_worker=THREADS, retries=1,
                        options=OPTIONS, progress=False)
    killer.join()
    assert killed and summary.ok == 12 and summary.failed == 0
    assert_same_as_reference(outputs(out), reference)
    with open(out / "results.jsonl") as f:
        rows = [json.loads(line) for line in f]
    lost = [r for r in rows if r["status"] == "failed"]
    assert lost and all("a worker process died" in r["error"] for r in lost)
    assert all(read_results(out)[r["id"]]["attempt"] == 2 for r in lost)  # each retried once, then ok
    assert str(killed[0]) not in {r["worker"].rsplit(":", 1)[1] for r in rows if r["attempt"] == 2}
