"""Curation I over many videos through svdc.runner: `process_video` is the runner stage "curation" (one video per
job, its rows saved as the manifest part parts/<video_id>.json), run by the local process pool or by Ray actors —
the backends differ only in where the jobs run. Videos whose part was written with the same parameters are
skipped on a rerun; the tables are rebuilt from the parts at the end."""
from __future__ import annotations

import dataclasses
import os

from ..runner.stage import Stage, StageTask
from .manifest import Manifest
from .pipeline import CurationParams, process_video, video_id

BACKENDS = ("local", "ray")


def curate_item(state, item: dict, params: CurationParams) -> dict:
    """The stage function: one video's rows of every manifest table (a failed `videos` row when unreadable)."""
    return process_video(item["video"], params)


def _video_fields(rows: dict) -> dict:
    video = rows["videos"][0]
    # an unreadable video is a finished job: its failure is a row of the curation manifest
    return {"video_status": video["status"], "video_error": video.get("error"), "clips": len(rows["clips"])}


CURATION = Stage(name="curation", process=curate_item, columns={"video": "path"}, folder="parts",
                 params_type=CurationParams, summary=_video_fields)
CURATION_TASK = StageTask(CURATION)  # the runner's built-in "curation" workflow


def _check_inputs(paths) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("videos: expected a list of paths, got a single path (wrap it in a list)")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("videos: expected at least one path, got none")
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"videos: {len(missing)} path(s) do not exist: {missing[:5]}")
    return paths


def run(videos, out_dir, params: CurationParams | None = None, workers: int = 1, fmt: str = "auto",
        progress: bool = True, backend: str = "local", **ray_settings) -> dict:
    """Curates `videos` into the manifest folder `out_dir`; returns {"done", "skipped", "failed", "tables"}.
    backend "local": `workers` processes; "ray": `workers` Ray actors, ray_settings:
    address, cpus_per_worker, gpus_per_worker, connect_timeout (see svdc.runner.run_batch)."""
    from ..runner.stage import run_stage

    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "local" and ray_settings:
        raise ValueError(f"{sorted(ray_settings)}: Ray settings need backend='ray'")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    params = params or CurationParams()
    params.validate()
    if workers > 1 and params.decoder_threads == 0:
        # the workers already fill the cores: one decoder thread per video is the cheapest per frame
        params = dataclasses.replace(params, decoder_threads=1)
    paths = _check_inputs(videos)
    manifest = Manifest(out_dir, fmt)
    phash = params.hash()
    ids = {p: video_id(p) for p in paths}
    unique = list(dict.fromkeys(paths))
    todo = [p for p in unique if not manifest.finished(ids[p], phash)]
    stats = {"done": 0, "skipped": len(unique) - len(todo), "failed": 0}
    if todo:
        jobs = [{"id": ids[p], "video": os.path.abspath(p)} for p in todo]
        summary = run_stage(CURATION, jobs, out_dir, params, backend=backend, workers=workers, progress=progress,
                            **ray_settings)
        unreadable = sum(summary.results[i]["status"] == "ok" and summary.results[i].get("video_status") == "failed"
                         for i in summary.ran)
        stats.update(done=len(summary.ran), failed=summary.failed + unreadable)
    stats["tables"] = {k: str(v) for k, v in manifest.write_tables(ids.values()).items()}
    return stats
