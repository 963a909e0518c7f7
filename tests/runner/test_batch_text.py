"""The text task kinds on the local backend: text-to-image and text-to-video rows in one manifest (a `workflow`
column) on 2 worker processes give the same files byte for byte as one-by-one svdc.TextToImage / svdc.TextToVideo
calls on tiny random models written as pipeline folders."""
from __future__ import annotations

import os

import pytest

from svdc.runner import read_results, run_batch
from tests.runner._jobs import THREADS, write_csv

COLUMNS = ["id", "workflow", "prompt", "negative_prompt", "seed", "num_inference_steps", "guidance_scale", "height",
           "width", "num_frames", "video_num_inference_steps", "motion_bucket_id"]


def _rows() -> list[dict]:
    image = [{"id": f"still-{i}", "workflow": "text_to_image", "prompt": p, "seed": 10 + i, "num_inference_steps": 2,
              "guidance_scale": g} for i, (p, g) in enumerate([("a red fox", 7.5), ("a blue lake", 1.0),
                                                               ("a red fox", 3.0)])]
    image[1]["negative_prompt"] = "fog"
    image.append({"id": "still-noseed", "workflow": "text_to_image", "prompt": "snow", "num_inference_steps": 2,
                  "height": 32, "width": 48})
    video = [{"id": f"clip-{i}", "workflow": "text_to_video", "prompt": p, "seed": 20 + i, "height": 64, "width": 64,
              "num_inference_steps": 2, "video_num_inference_steps": 2, "num_frames": 3, "motion_bucket_id": m}
             for i, (p, m) in enumerate([("a fox running", 60.0), ("waves", 180.0)])]
    return image + video


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from svdc import tiny

    d = tmp_path_factory.mktemp("text_models")
    return tiny.save_sd_pipeline(d / "sd"), tiny.save_pipeline(d / "svd")


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    """{job id: file bytes} made one by one in this process at THREADS threads."""
    import svdc
    from svdc.runner.tasks import seed_from_id
    from svdc.text_cli import save_image

    sd, svd = models
    out = tmp_path_factory.mktemp("text_reference")
    before = svdc._C.build_info()["openmp_threads"]
    svdc._C.set_num_threads(THREADS)
    try:
        t2i = svdc.TextToImage.from_pretrained(sd, device="cpu")
        t2v = svdc.TextToVideo.from_pretrained(sd, svd, device="cpu", keep_image_model=True)
        result = {}
        for row in _rows():
            args = {k: v for k, v in row.items() if k not in ("id", "workflow", "prompt")}
            args.setdefault("seed", seed_from_id(row["id"]))
            if row["workflow"] == "text_to_image":
                path = save_image(t2i(row["prompt"], progress=False, **args), str(out / f"{row['id']}.png"))
            else:
                path = t2v(row["prompt"], progress=False, **args).video.save(str(out / f"{row['id']}.mp4"))
            with open(path, "rb") as f:
                result[row["id"]] = f.read()
    finally:
        svdc._C.set_num_threads(before)
    return result


def test_mixed_text_manifest_on_two_workers_equals_one_by_one(models, reference, tmp_path):
    sd, svd = models
    manifest = write_csv(tmp_path / "prompts.csv", _rows(), COLUMNS)
    out = tmp_path / "out"
    options = {"model": sd, "image_model": sd, "video_model": svd, "device": "cpu"}
    summary = run_batch(manifest, out, workers=2, threads_per_worker=THREADS, options=options, progress=False)
    assert (summary.ok, summary.failed) == (6, 0), summary.results
    got = {}
    for name in os.listdir(out):
        if name.endswith((".png", ".mp4")):
            got[os.path.splitext(name)[0]] = (out / name).read_bytes()
    assert sorted(got) == sorted(reference)
    assert [i for i in reference if got[i] != reference[i]] == []
    assert len(set(reference.values())) == len(reference)  # the rows really make different outputs
    rows = read_results(out)
    assert rows["still-noseed"]["width"] == 48 and rows["clip-1"]["frames"] == 3
    assert rows["clip-0"]["image_seed"] != rows["clip-0"]["video_seed"]


def test_text_options_are_checked(models, tmp_path):
    sd, _ = models
    rows = [{"id": "a", "prompt": "x"}]
    with pytest.raises(ValueError, match="video_model: expected a pipeline folder"):
        run_batch(rows, tmp_path, workflow="text_to_video", options={"image_model": sd}, progress=False)
    with pytest.raises(ValueError, match="format: expected one of"):
        run_batch(rows, tmp_path, workflow="text_to_image", options={"model": sd, "format": "gif"}, progress=False)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['prompt'\]"):
        run_batch([{"id": "a"}], tmp_path, workflow="text_to_image", options={"model": sd}, progress=False)
