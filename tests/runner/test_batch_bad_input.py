"""Bad manifests, options, output folders and Ray addresses fail fast with a clear message naming the row, the
column or the setting, before any worker starts; the manifest formats agree; `svdc batch` exits 0/1/2."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from svdc.cli import main
from svdc.runner import read_manifest, run_batch
from tests.runner._jobs import OPTIONS, job_rows, write_csv


def _csv(tmp_path, rows, columns=None):
    columns = columns or sorted({k for r in rows for k in r}, key=lambda c: (c != "id", c))
    return write_csv(tmp_path / "m.csv", rows, columns)


def test_formats_agree(jobs_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = job_rows()
    from_csv = read_manifest(jobs_dir / "jobs.csv")
    (jobs_dir / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), jobs_dir / "jobs.parquet")
    assert read_manifest(jobs_dir / "jobs.jsonl") == from_csv
    assert read_manifest(jobs_dir / "jobs.parquet") == from_csv
    first = from_csv[0]
    assert first.id == "clip-00" and first.workflow == "image_to_video"
    assert first.args["image"] == os.path.join(str(jobs_dir), "pics", "blue.png")  # relative to the manifest
    assert first.args["seed"] == 1000 and isinstance(first.args["seed"], int)
    assert isinstance(first.args["motion_bucket_id"], float) and "seed" not in from_csv[5].args


@pytest.mark.parametrize("rows, columns, message", [
    ([{"id": "a", "image": "x.png", "sede": "1"}], None, r"row 1: unknown column\(s\) \['sede'\].*expected among"),
    ([{"id": "a", "image": "x.png"}, {"id": "b", "image": "y.png"}, {"id": "a", "image": "z.png"}], None,
     r"row 3: duplicate job id 'a' \(first used at m.csv row 1\)"),
    ([{"id": "../up", "image": "x.png"}], None, r"row 1: id: expected letters.*got '../up'"),
    ([{"image": "x.png"}], ["image"], r"row 1: missing the required column 'id'"),
    ([{"id": "a", "seed": "7"}], None, r"row 1: missing required column\(s\) \['image'\]"),
    ([{"id": "a", "image": "x.png", "seed": "1.5"}], None, r"row 1: seed: expected an integer, got '1.5'"),
    ([{"id": "a", "image": "x.png", "fps": "fast"}], None, r"row 1: fps: expected a number, got 'fast'"),
    ([{"id": "a", "image": "x.png", "workflow": "video_to_audio"}], None, r"row 1: workflow: unknown workflow"),
])
def test_bad_manifest(tmp_path, rows, columns, message):
    path = _csv(tmp_path, rows, columns)
    with pytest.raises(ValueError, match=message):
        run_batch(path, tmp_path / "out", options=OPTIONS, progress=False)
    assert not os.path.exists(tmp_path / "out")  # refused before the output folder was touched


def test_bad_manifest_files(tmp_path):
    with pytest.raises(ValueError, match=r"expected a manifest ending in one of"):
        read_manifest(tmp_path / "jobs.xlsx")
    with pytest.raises(ValueError, match=r"no such manifest file"):
        read_manifest(tmp_path / "missing.csv")
    (tmp_path / "j.jsonl").write_text('{"id": "a", "image": "x.png"}\n{"id": "b", \n')
    with pytest.raises(ValueError, match=r"line 2 is not valid JSON"):
        read_manifest(tmp_path / "j.jsonl")
    with pytest.raises(TypeError, match=r"jobs: expected a manifest path"):
        read_manifest(42)
    (tmp_path / "empty.csv").write_text("id,image\n")
    with pytest.raises(ValueError, match=r"jobs: empty.csv has no rows"):
        read_manifest(tmp_path / "empty.csv")
    with pytest.raises(ValueError, match=r"jobs: jobs has no rows"):
        read_manifest([])


def test_bad_settings(jobs_dir, tmp_path):
    manifest = jobs_dir / "jobs.csv"
    cases = [
        (dict(backend="spark"), r"backend: expected one of \('local', 'ray'\), got 'spark'"),
        (dict(workers=0), r"workers: expected an integer >= 1, got 0"),
        (dict(retries=-1), r"retries: expected an integer >= 0, got -1"),
        (dict(options={"model": "tiny", "modle": "x"}), r"options: unknown setting\(s\) \['modle'\]"),
        (dict(options={}), r"model: expected a pipeline folder"),
        (dict(options={"model": str(tmp_path / "nowhere")}), r"model: no such file or folder"),
        (dict(options={"model": "tiny", "format": "avi"}), r"format: expected one of"),
        (dict(options=OPTIONS, gpus_per_worker=1), r"are Ray settings"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            run_batch(manifest, tmp_path / "out", progress=False, **kwargs)


def test_bad_output_folder(jobs_dir, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"out: expected a folder, got an existing file"):
        run_batch(jobs_dir / "jobs.csv", a_file, options=OPTIONS, progress=False)
    with pytest.raises(ValueError, match=r"out: cannot write to the output folder"):
        run_batch(jobs_dir / "jobs.csv", "/proc/svdc-batch-out", options=OPTIONS, progress=False)
    if os.geteuid() != 0:  # root writes anywhere; the /proc case above covers it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=r"out: cannot write to the output folder"):
            run_batch(jobs_dir / "jobs.csv", locked, options=OPTIONS, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_that_does_not_answer(jobs_dir, tmp_path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"address: no Ray cluster answers at '127.0.0.1:\d+'"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", address=f"127.0.0.1:{_free_port()}",
                  options=OPTIONS, progress=False)
    # 192.0.2.1 (TEST-NET-1) never answers: the connect timeout bounds the wait
    with pytest.raises(ConnectionError, match=r"no Ray cluster answers at 'ray://192.0.2.1:10001'"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", address="ray://192.0.2.1:10001",
                  connect_timeout=1.0, options=OPTIONS, progress=False)
    assert time.monotonic() - start < 60  # generous bound: ray.init alone would retry for minutes
    with pytest.raises(ValueError, match=r"address: expected 'host:port'"):
        run_batch(jobs_dir / "jobs.csv", tmp_path, backend="ray", address="no-port", options=OPTIONS,
                  progress=False)
    assert not ray.is_initialized()


def test_cli_batch(jobs_dir, tmp_path, capsys):
    rows = [{"id": "one", "image": "red.png", "num_frames": 2, "num_inference_steps": 1},
            {"id": "two", "image": "corrupt.png", "num_frames": 2, "num_inference_steps": 1}]
    manifest = write_csv(jobs_dir / "cli.csv", rows, ["id", "image", "num_frames", "num_inference_steps"])
    out = tmp_path / "out"
    assert main(["batch", manifest, "--out", str(out), "--model", "tiny", "--device", "cpu", "--workers", "1",
                 "--format", "gif", "-q"]) == 1  # one job failed
    assert "1 ok, 1 failed" in capsys.readouterr().out and (out / "one.gif").is_file()
    assert main(["batch", manifest, "--out", str(out), "--model", "tiny", "--workers", "1", "--format", "gif",
                 "-q", "--address", "x:1"]) == 2
    assert "are Ray settings" in capsys.readouterr().err
    bad = write_csv(jobs_dir / "bad.csv", [{"id": "a", "image": "x.png", "seed": "s"}], ["id", "image", "seed"])
    assert main(["batch", bad, "--out", str(out), "--model", "tiny", "-q"]) == 2
    assert "seed: expected an integer" in capsys.readouterr().err
