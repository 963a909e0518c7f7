"""The local runner: `process_video` over many videos in a process pool (one video per worker), each finished video
saved as a manifest part at once, finished videos skipped on a rerun, the tables rebuilt at the end. Kept apart from
the per-video work so that another backend (e.g. Ray) can drive the same function."""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .._validate import check_path
from .manifest import Manifest
from .pipeline import CurationParams, process_video, video_id


def _check_inputs(paths) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("videos: expected a list of paths, got a single path (wrap it in a list)")
    try:
        paths = list(paths)  # any iterable: a list, Path.glob(...)
    except TypeError:
        raise TypeError(f"videos: expected a list of paths, got {type(paths).__name__}") from None
    paths = [check_path(p, f"videos[{i}]") for i, p in enumerate(paths)]
    if not paths:
        raise ValueError("videos: expected at least one path, got none")
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"videos: {len(missing)} path(s) do not exist: {missing[:5]}")
    return paths


def run(videos, out_dir, params: CurationParams | None = None, workers: int = 1, fmt: str = "auto",
        progress: bool = True, backend: str = "local", **ray_settings) -> dict:
    """Curates `videos` into the manifest folder `out_dir`; returns {"done", "skipped", "failed", "tables"}.
    backend "ray" runs process_video through svdc.runner on Ray (ray_settings: address, cpus_per_worker, ...; see
    svdc.runner.run_batch) and writes the same tables."""
    out_dir = check_path(out_dir, "out_dir")
    if params is not None and not isinstance(params, CurationParams):
        raise TypeError(f"params: expected a CurationParams (or None), got {type(params).__name__}")
    if backend == "ray":
        return _run_on_ray(videos, out_dir, params, workers, fmt, progress, ray_settings)
    if backend != "local":
        raise ValueError(f"backend: expected 'local' or 'ray', got {backend!r}")
    if ray_settings:
        raise ValueError(f"{sorted(ray_settings)}: Ray settings need backend='ray'")
    params = params or CurationParams()
    params.validate()
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    if workers > 1 and params.decoder_threads == 0:
        # the pool already fills the cores: one decoder thread per video is the cheapest per frame
        params = dataclasses.replace(params, decoder_threads=1)
    paths = _check_inputs(videos)
    manifest = Manifest(out_dir, fmt)
    phash = params.hash()
    ids = {p: video_id(p) for p in paths}
    todo = [p for p in dict.fromkeys(paths) if not manifest.finished(ids[p], phash)]
    stats = {"done": 0, "skipped": len(set(paths)) - len(todo), "failed": 0}

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="video", desc="curate")

    def record(path, rows):
        manifest.write_part(ids[path], rows)
        stats["done"] += 1
        stats["failed"] += rows["videos"][0]["status"] != "ok"
        if bar is not None:
            bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            for path in todo:
                record(path, process_video(path, params))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                futures = {pool.submit(process_video, path, params): path for path in todo}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
    finally:
        if bar is not None:
            bar.close()
    stats["tables"] = {k: str(v) for k, v in manifest.write_tables(ids.values()).items()}
    return stats


def _run_on_ray(videos, out_dir, params, workers, fmt, progress, ray_settings) -> dict:
    """The same videos through svdc.runner's "curation" task on Ray: each part lands in parts/ as the local runner
    writes it, videos finished by an earlier Ray run (results.jsonl) are skipped, and the tables are rebuilt from
    the parts."""
    from ..runner import run_batch

    params = params or CurationParams()
    params.validate()
    paths = _check_inputs(videos)
    manifest = Manifest(out_dir, fmt)
    ids = {p: video_id(p) for p in paths}
    jobs = [{"id": ids[p], "video": os.path.abspath(p)} for p in dict.fromkeys(paths)]
    summary = run_batch(jobs, out_dir, backend="ray", workers=workers, workflow="curation",
                        options={"curation_params": params}, progress=progress, **ray_settings)
    unreadable = sum(summary.results[i]["status"] == "ok" and summary.results[i].get("video_status") == "failed"
                     for i in summary.ran)
    stats = {"done": len(summary.ran), "skipped": summary.skipped, "failed": summary.failed + unreadable}
    stats["tables"] = {k: str(v) for k, v in manifest.write_tables(ids.values()).items()}
    return stats
