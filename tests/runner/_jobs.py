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
