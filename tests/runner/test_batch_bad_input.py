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
    ([{"id": "a", "image": "x.png", "fps": "fast"}], None, r"row 1: fps: expected a finite number, got 'fast'"),
    ([{"id": "a", "image": "x.png", "workflow": "video_to_audio"}], None, r"row 1: workflow: unknown workflow"),
])
def test_bad_manifest(tmp_path, rows, columns, message):
    path = _csv(tmp_path, rows, columns)
    with pytest.raises(ValueError, match=message):
        run_batch(path, tmp_path / "out", options=OPTIONS, progress=False)
    assert not os.path.exists(tmp_path / "out")  # refused before the output folder was touched


@pytest.mark.parametrize("workflow, row, message", [
    # a JSON number is an integer when it has no fraction: 1e30 is one, but no Generator takes it
    ("image_to_video", {"seed": 1e30},
     r"jobs row 2: seed: expected an integer in \[-9223372036854775808, 18446744073709551615\], "
     r"got 1000000000000000019884624838656"),
    ("image_to_video", {"seed": 2**64}, r"jobs row 2: seed: expected an integer in \[.*\], got 18446744073709551616"),
    ("image_to_video", {"num_frames": 0}, r"jobs row 2: num_frames: expected an integer in \[1, 2147483647\], got 0"),
    ("image_to_video", {"height": 2**40}, r"jobs row 2: height: expected an integer in \[1, 2147483647\]"),
    ("image_to_video", {"motion_bucket_id": -1}, r"jobs row 2: motion_bucket_id: expected a number in \[0.0, "),
    ("image_to_video", {"max_guidance_scale": 1e39}, r"jobs row 2: max_guidance_scale: expected a number in "),
    ("image_to_video", {"fps": "inf"}, r"jobs row 2: fps: expected a finite number, got 'inf'"),
    ("image_to_video", {"noise_aug_strength": float("nan")}, r"jobs row 2: noise_aug_strength: expected a finite"),
    ("multiview", {"elevations": [10, float("inf")]}, r"jobs row 2: elevations: expected a finite number or a list"),
    ("multiview", {"num_inference_steps": -3}, r"jobs row 2: num_inference_steps: expected an integer in \[1, "),
    ("text_to_video", {"seed": -1}, r"jobs row 2: seed: expected an integer >= 0, got -1"),
    ("text_to_image", {"guidance_scale": -2.0}, r"jobs row 2: guidance_scale: expected a number in \[0.0, "),
])
def test_out_of_range_cells_refused_when_read(tmp_path, workflow, row, message):
    """A cell its pipeline would refuse is refused with the manifest, naming the row, the column, the range and the
    value, before the output folder (let alone a worker or a model) exists."""
    key = "prompt" if workflow.startswith("text") else "image"
    rows = [{"id": "good", key: "x.png"}, {"id": "bad", key: "x.png", **row}]
    with pytest.raises(ValueError, match=message):
        run_batch(rows, tmp_path / "out", workflow=workflow, options={"model": "tiny"} if key == "image" else {},
                  progress=False)
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(ValueError, match=message):
        read_manifest(rows, workflow=workflow)


def test_cells_at_their_limits_are_read(tmp_path):
    rows = [{"id": "a", "image": "x.png", "seed": 2**64 - 1, "num_frames": 1, "fps": 0, "motion_bucket_id": 0},
            {"id": "b", "image": "x.png", "seed": -(2**63), "max_guidance_scale": -1.5}]
    jobs = read_manifest(rows)
    assert jobs[0].args["seed"] == 2**64 - 1 and jobs[1].args["seed"] == -(2**63)
    assert read_manifest([{"id": "t", "prompt": "p", "seed": 10**30}], workflow="text_to_video")[0].args["seed"] \
        == 10**30  # stage_seeds takes any int >= 0


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
        (dict(options={"model": "tiny", "device": "tpu"}),
         r"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        (dict(options={"model": "tiny", "device": "cuda:x"}), r"device: expected .* got 'cuda:x'"),
        (dict(options={"model": "tiny", "dtype": "fp8"}), r"dtype: expected None, 'fp32', 'fp16' or 'bf16'.*'fp8'"),
        (dict(options={"model": "tiny", "preset": "sdxl"}), r"preset: expected one of \(None, 'diffusers', 'sgm'\)"),
        (dict(options=OPTIONS, gpus_per_worker=1), r"are Ray settings"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            run_batch(manifest, tmp_path / "out", progress=False, **kwargs)
    assert not os.path.exists(tmp_path / "out")  # every one refused before the output folder, workers or a model
    with pytest.raises(TypeError, match=r"device: expected a string"):
        run_batch(manifest, tmp_path / "out", options={"model": "tiny", "device": 0}, progress=False)


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


def test_task_limits_must_name_numeric_columns():
    from svdc.runner import register_task
    from svdc.runner.tasks import Task

    class Misdeclared(Task):
        name = "misdeclared"
        columns = {"caption": "str", "steps": "int"}
        limits = {"caption": (1, 10)}

    with pytest.raises(ValueError, match=r"limits\['caption'\]: expected \(lowest, highest\) for a numeric column"):
        register_task(Misdeclared())
