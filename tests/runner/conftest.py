"""Fixtures of the runner tests: a folder with the 12-job manifest and its images, and the jobs' outputs made one by
one by direct pipeline calls, the reference every backend must reproduce byte for byte."""
from __future__ import annotations

import os

import pytest

from tests.runner._jobs import THREADS, job_rows, write_csv


@pytest.fixture(scope="session")
def jobs_dir(tmp_path_factory):
    """A folder with jobs.csv, red.png, pics/blue.png and corrupt.png (not an image)."""
    from PIL import Image
    from svdc import tiny

    d = tmp_path_factory.mktemp("jobs")
    Image.fromarray(tiny.test_image(64, 80)).save(d / "red.png")
    (d / "pics").mkdir()
    Image.fromarray(tiny.test_image(72, 72)[:, ::-1, ::-1].copy()).save(d / "pics" / "blue.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    write_csv(d / "jobs.csv", job_rows())
    return d


@pytest.fixture(scope="session")
def reference(jobs_dir, tmp_path_factory):
    """{job id: mp4 bytes} made one by one with svdc.ImageToVideo in this process at THREADS threads."""
    import svdc
    from svdc import tiny
    from svdc.runner.tasks import seed_from_id

    out = tmp_path_factory.mktemp("reference")
    before = svdc._C.build_info()["openmp_threads"]
    svdc._C.set_num_threads(THREADS)
    try:
        pipe = tiny.tiny_pipeline(device="cpu")
        result = {}
        for row in job_rows():
            args = {k: v for k, v in row.items() if k not in ("id", "image")}
            args.setdefault("seed", seed_from_id(row["id"]))
            video = pipe(os.path.join(jobs_dir, row["image"]), progress=False, **args)
            path = video.save(os.path.join(out, row["id"] + ".mp4"))
            with open(path, "rb") as f:
                result[row["id"]] = f.read()
    finally:
        svdc._C.set_num_threads(before)
    return result



@pytest.fixture(scope="session")
def multiview_dir(tmp_path_factory):
    """A folder with multiview.csv and object.png (an RGBA object on transparency)."""
    from PIL import Image
    from svdc import tiny

    from tests.runner._jobs import MV_COLUMNS, multiview_rows

    d = tmp_path_factory.mktemp("orbits")
    Image.fromarray(tiny.test_object()).save(d / "object.png")
    write_csv(d / "multiview.csv", multiview_rows(), MV_COLUMNS)
    return d


@pytest.fixture(scope="session")
def multiview_reference(multiview_dir, tmp_path_factory):
    """{job id: {file: bytes}}: each orbit made one by one with svdc.MultiView and saved with Orbit.save, at THREADS
    threads: what every backend's orbit folders must equal byte for byte (views, transforms.json, orbit.mp4)."""
    import svdc
    from svdc import tiny
    from svdc.runner.tasks import seed_from_id

    from tests.runner._jobs import folder_files, multiview_rows

    out = tmp_path_factory.mktemp("multiview_reference")
    before = svdc._C.build_info()["openmp_threads"]
    svdc._C.set_num_threads(THREADS)
    try:
        pipe = tiny.tiny_multiview("sv3d_p", device="cpu")
        result = {}
        for row in multiview_rows():
            args = {k: v for k, v in row.items() if k not in ("id", "workflow", "image")}
            args["elevations"] = float(args["elevations"]) if "elevations" in args else None
            if "azimuths" in args:
                args["azimuths"] = [float(a) for a in args["azimuths"].split()]
            args.setdefault("seed", seed_from_id(row["id"]))
            orbit = pipe(os.path.join(multiview_dir, row["image"]), progress=False, **args)
            result[row["id"]] = folder_files(orbit.save(out / row["id"]))
    finally:
        svdc._C.set_num_threads(before)
    return result
