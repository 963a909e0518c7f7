"""Helpers of the runner tests: the 12 fast tiny image-to-video jobs (3 frames, 2 steps, varied seeds, sizes and
conditioning), and comparing a runner's outputs with the one-by-one reference."""
from __future__ import annotations

import csv
import os

import numpy as np

# what the runner's workers use: 1 CPU thread each (svdc's kernels round differently for other thread counts)
THREADS = 1
OPTIONS = {"model": "tiny", "device": "cpu"}
COLUMNS = ["id", "image", "seed", "num_frames", "num_inference_steps", "motion_bucket_id", "height", "width"]


def job_rows() -> list[dict]:
    rows = []
    for i in range(12):
        rows.append({"id": f"clip-{i:02d}", "image": "red.png" if i % 3 else "pics/blue.png", "seed": 1000 + i,
                     "num_frames": 3, "num_inference_steps": 2, "motion_bucket_id": 20 * i,
                     "height": 48 if i % 4 == 1 else 64, "width": 64})
    rows[5].pop("seed")  # a row without a seed: the seed comes from its id
    return rows


def write_csv(path, rows, columns=COLUMNS) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return str(path)


def outputs(out_dir) -> dict[str, bytes]:
    """{job id: bytes} of the finished outputs (final names only) in a runner's output folder."""
    got = {}
    for name in os.listdir(out_dir):
        if name.endswith(".mp4") and not name.startswith("."):
            with open(os.path.join(out_dir, name), "rb") as f:
                got[name[:-4]] = f.read()
    return got


def assert_same_as_reference(got: dict, reference: dict, ids=None):
    ids = sorted(reference) if ids is None else sorted(ids)
    assert sorted(got) == ids
    differ = [i for i in ids if got[i] != reference[i]]
    assert not differ, f"outputs differ from the one-by-one reference for {differ}"
    assert len({reference[i] for i in ids}) == len(ids)  # the rows really do make different videos
    assert all(np.frombuffer(reference[i], np.uint8).size > 1000 for i in ids)


# ---- multi-view jobs: 6 tiny SV3D orbits (2 steps), varied orbits, elevations, seeds and guidance ----------------
MV_COLUMNS = ["id", "workflow", "image", "seed", "orbit", "elevations", "azimuths", "num_inference_steps",
              "max_guidance_scale"]


def multiview_rows() -> list[dict]:
    azimuths = " ".join(str(18 * k) for k in range(21))  # 21 numbers in one CSV cell
    rows = [
        {"id": "orbit-static", "orbit": "static", "elevations": "5", "seed": 3},
        {"id": "orbit-sine", "orbit": "sine", "elevations": "-10", "seed": 4},
        {"id": "orbit-dynamic", "orbit": "dynamic", "elevations": "0", "seed": 23},
        {"id": "orbit-user", "orbit": "static", "elevations": "20", "azimuths": azimuths, "seed": 5},
        {"id": "orbit-guided", "orbit": "static", "seed": 6, "max_guidance_scale": 4.0},
        {"id": "orbit-noseed", "orbit": "comfyui"},  # the seed comes from its id
    ]
    for row in rows:
        row.update(workflow="multiview", image="object.png", num_inference_steps=2)
    return rows


def folder_files(folder) -> dict[str, bytes]:
    """{relative path: bytes} of every file under a folder."""
    got = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                got[os.path.relpath(path, folder)] = f.read()
    return got


def multiview_outputs(out_dir) -> dict[str, dict[str, bytes]]:
    """{job id: {relative path: bytes}} of the finished orbit folders (final names only) in an output folder."""
    return {name: folder_files(os.path.join(out_dir, name)) for name in os.listdir(out_dir)
            if os.path.isdir(os.path.join(out_dir, name)) and not name.startswith(".")}
