"""The multiview task kind on the local backend: 6 tiny SV3D orbits on 2 worker processes give the same folders
(views, transforms.json with the cameras, orbit video) byte for byte as one-by-one svdc.MultiView calls; a folder
appears whole or not at all; bad orbit input fails the row, not the run."""
from __future__ import annotations

import json
import os

import pytest

from svdc.runner import read_manifest, read_results, run_batch
from tests.runner._jobs import MV_COLUMNS, THREADS, multiview_outputs, multiview_rows, write_csv

OPTIONS = {"model": "tiny", "device": "cpu"}


def assert_same_orbits(got: dict, reference: dict):
    assert sorted(got) == sorted(reference)
    for i in reference:
        assert sorted(got[i]) == sorted(reference[i]), i
        differ = [f for f in reference[i] if got[i][f] != reference[i][f]]
        assert not differ, f"{i}: files differ from the one-by-one reference: {differ[:5]}"
    first = next(iter(reference.values()))
    assert len([f for f in first if f.startswith("images" + os.sep)]) == 21 and "orbit.mp4" in first
    # the rows really make different orbits (views and cameras)
    assert len({r["transforms.json"] for r in reference.values()}) == len(reference)
    assert len({r[os.path.join("images", "000.png")] for r in reference.values()}) == len(reference)


def test_manifest_columns(multiview_dir):
    jobs = {j.id: j for j in read_manifest(multiview_dir / "multiview.csv")}
    assert jobs["orbit-static"].workflow == "multiview" and jobs["orbit-static"].args["elevations"] == 5.0
    assert jobs["orbit-user"].args["azimuths"] == [18.0 * k for k in range(21)]
    assert jobs["orbit-user"].args["image"] == os.path.join(str(multiview_dir), "object.png")
    assert "seed" not in jobs["orbit-noseed"].args
    listed = read_manifest([{"id": "a", "image": "x.png", "elevations": [1, 2.5]}], workflow="multiview")
    assert listed[0].args["elevations"] == [1.0, 2.5]  # a JSON/Parquet list


def test_two_workers_equal_one_by_one(multiview_dir, multiview_reference, tmp_path):
    out = tmp_path / "out"
    summary = run_batch(multiview_dir / "multiview.csv", out, workers=2, threads_per_worker=THREADS,
                        options=OPTIONS, progress=False)
    assert (summary.ok, summary.failed) == (6, 0), summary.results
    assert_same_orbits(multiview_outputs(out), multiview_reference)
    rows = read_results(out)
    assert len({r["worker"] for r in rows.values()}) == 2
    assert rows["orbit-static"]["views"] == 21 and rows["orbit-static"]["output"] == "orbit-static"
    doc = json.loads((out / "orbit-user" / "transforms.json").read_text())
    assert len(doc["frames"]) == 21 and {f["elevation_deg"] for f in doc["frames"]} == {20.0}
    assert sorted(os.listdir(out)) == sorted([r["id"] for r in multiview_rows()] + ["results.jsonl"])  # no staging
    again = run_batch(multiview_dir / "multiview.csv", out, workers=2, threads_per_worker=THREADS, options=OPTIONS,
                      progress=False)
    assert (again.ok, again.skipped) == (0, 6)


def test_bad_orbit_fails_its_row_and_leaves_no_folder(multiview_dir, multiview_reference, tmp_path):
    rows = [dict(multiview_rows()[0]),
            {"id": "short-azimuths", "workflow": "multiview", "image": "object.png", "azimuths": "0 10 20",
             "num_inference_steps": 2},
            {"id": "no-object", "workflow": "multiview", "image": "dark.png", "num_inference_steps": 2}]
    from PIL import Image
    import numpy as np

    Image.fromarray(np.full((32, 32, 3), 40, np.uint8)).save(multiview_dir / "dark.png")  # no white background
    manifest = write_csv(multiview_dir / "bad_orbits.csv", rows, MV_COLUMNS)
    out = tmp_path / "out"
    summary = run_batch(manifest, out, workers=1, threads_per_worker=THREADS, retries=2, options=OPTIONS,
                        progress=False)
    assert (summary.ok, summary.failed) == (1, 2)
    assert "azimuths: expected 21" in summary.results["short-azimuths"]["error"]
    assert "no white background" in summary.results["no-object"]["error"]
    assert all(summary.results[i]["attempt"] == 1 for i in ("short-azimuths", "no-object"))  # bad input: no retry
    assert sorted(os.listdir(out)) == ["orbit-static", "results.jsonl"]
    assert multiview_outputs(out)["orbit-static"] == multiview_reference["orbit-static"]


@pytest.mark.parametrize("options, message", [
    ({"video": "orbit.avi"}, r"video: expected a file name ending in one of"),
    ({"video": "../orbit.mp4"}, r"video: expected a file name"),
    ({"rgba": "yes"}, r"rgba: expected True or False"),
    ({"device": "tpu"}, r"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ({"model": "nowhere.safetensors"}, r"model: no such file or folder"),
])
def test_bad_options(multiview_dir, tmp_path, options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        run_batch(multiview_dir / "multiview.csv", tmp_path, options={**OPTIONS, **options}, progress=False)
    assert not os.listdir(tmp_path)


def test_bad_orbit_cells(tmp_path):
    with pytest.raises(ValueError, match=r"row 1: elevations: expected a finite number or a list of finite numbers, "
                                         r"got 'high'"):
        read_manifest([{"id": "a", "image": "x.png", "elevations": "high"}], workflow="multiview")
    with pytest.raises(ValueError, match=r"row 1: unknown column\(s\) \['motion_bucket_id'\] for workflow 'multiview'"):
        read_manifest([{"id": "a", "image": "x.png", "motion_bucket_id": 3}], workflow="multiview")


def test_changed_row_replaces_the_folder_and_cli(multiview_dir, multiview_reference, tmp_path, capsys):
    """`svdc batch --workflow multiview`: a rerun with a changed seed replaces the orbit folder as a whole."""
    from svdc.cli import main

    row = {k: v for k, v in multiview_rows()[0].items() if k != "workflow"}
    manifest = write_csv(multiview_dir / "one.csv", [row], [c for c in MV_COLUMNS if c != "workflow"])
    out = tmp_path / "out"
    cli = ["batch", manifest, "--out", str(out), "--workflow", "multiview", "--model", "tiny", "--device", "cpu",
           "--workers", "1", "--threads-per-worker", str(THREADS), "-q"]
    assert main(cli) == 0 and "1 ok, 0 failed" in capsys.readouterr().out
    assert multiview_outputs(out)["orbit-static"] == multiview_reference["orbit-static"]
    write_csv(manifest, [dict(row, seed=99)], [c for c in MV_COLUMNS if c != "workflow"])
    assert main(cli + ["--orbit-video", "none"]) == 0
    replaced = multiview_outputs(out)["orbit-static"]
    assert "orbit.mp4" not in replaced  # nothing of the old folder is left
    assert sorted(replaced) == sorted(f for f in multiview_reference["orbit-static"] if f != "orbit.mp4")
    assert replaced["transforms.json"] == multiview_reference["orbit-static"]["transforms.json"]  # same cameras
    assert replaced[os.path.join("images", "000.png")] != \
        multiview_reference["orbit-static"][os.path.join("images", "000.png")]  # another seed
    assert sorted(os.listdir(out)) == ["orbit-static", "results.jsonl"]
