"""run_batch: the one resumable runner. Validates the manifest, options and output folder (cheap checks first), skips
jobs already finished with the same parameters, runs the rest on the local process pool or on Ray, retries failed
attempts, appends every attempt to the results table and shows progress (jobs, throughput, ETA)."""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .manifest import read_manifest
from .results import ResultsLog, finished_ids, read_results
from .tasks import Job, get_task
from .worker import PARTIAL_MARK, discard

BACKENDS = ("local", "ray")

@dataclass
class BatchSummary:
    """What a run did. results: the latest result row of every job of the manifest (finished earlier or now);
    ran: the ids this run attempted, in the order they finished."""
    out: str
    total: int
    skipped: int
    ok: int
    failed: int
    seconds: float
    backend: str = ""
    results: dict = field(default_factory=dict)
    ran: list = field(default_factory=list)

    @property
    def jobs_per_minute(self) -> float:
        return 60.0 * (self.ok + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.ok} ok, {self.failed} failed, {self.skipped} already done, of {self.total} jobs in "
                f"{self.seconds:.1f} s ({self.jobs_per_minute:.1f} jobs/min) on {self.backend}; results in "
                f"{os.path.join(self.out, 'results.jsonl')}")


def run_batch(jobs, out, *, backend: str = "local", workers: int | None = None, retries: int = 1,
              workflow: str = "image_to_video", options: Mapping | None = None,
              threads_per_worker: int | None = None, cpus_per_worker: float | None = None,
              gpus_per_worker: float = 0.0, address: str | None = None, connect_timeout: float = 15.0,
              progress: bool = True) -> BatchSummary:
    """Runs every job of `jobs` (a .csv/.jsonl/.parquet manifest or a list of dicts) into the folder `out`: one
    output (a file, or a folder) per job plus out/results.jsonl. Jobs finished by an earlier run with the same
    parameters are skipped; a failed attempt is retried up to `retries` times unless it failed on bad input.

    backend "local": `workers` processes (default: 1 per CPU core) with threads_per_worker CPU threads each
    (default: the cores divided among the workers). backend "ray": `workers` actors (default: 1 per GPU when
    gpus_per_worker > 0, else 1 per CPU of the cluster) each asking Ray for cpus_per_worker CPUs (default 1; a
    fraction is allowed) and gpus_per_worker GPUs, on the cluster at `address` (None: the running ray.init(), or a
    new local Ray). options: run-level settings of the tasks (image_to_video: model, device, dtype, preset, format;
    multiview: model, device, dtype, video, rgba; text_to_image: model, device, dtype, format; text_to_video:
    image_model, video_model, device, dtype, format; a Stage: params).
    A job's output depends only on its row and the options, for a given threads_per_worker."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "local" and (cpus_per_worker is not None or gpus_per_worker or address is not None):
        raise ValueError("cpus_per_worker, gpus_per_worker and address are Ray settings; the local backend "
                         "takes workers and threads_per_worker")
    workers = _optional_int("workers", workers, 1)
    threads_per_worker = _optional_int("threads_per_worker", threads_per_worker, 1)
    if retries is None or _optional_int("retries", retries, 0) is None:
        raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options: expected a mapping of run-level settings, got {type(options).__name__}")
    job_list = read_manifest(jobs, workflow)
    plan = _plan(job_list, dict(options))
    out_dir = prepare_output_folder(out)

    start = time.perf_counter()
    params = {job.id: _params_hash(job, plan[job.workflow][0].options_key(plan[job.workflow][1]))
              for job in job_list}
    latest = read_results(out_dir)
    done = {i for i in finished_ids(out_dir, latest) if latest[i].get("params") == params.get(i)}
    todo = [job for job in job_list if job.id not in done]
    summary = BatchSummary(out=out_dir, total=len(job_list), skipped=len(job_list) - len(todo), ok=0, failed=0,
                           seconds=0.0)
    if todo:
        runner = _make_backend(backend, out_dir, plan, workers, threads_per_worker, cpus_per_worker,
                               gpus_per_worker, address, connect_timeout, len(todo))
        summary.backend = runner.describe()
        with ResultsLog(out_dir) as log:
            _drive(runner, todo, params, retries, log, summary, progress)
    else:
        summary.backend = f"{backend}: nothing to run"
    summary.seconds = time.perf_counter() - start
    latest = read_results(out_dir)
    summary.results = {job.id: latest.get(job.id) for job in job_list}
    return summary


def _drive(runner, todo: list[Job], params: dict, retries: int, log: ResultsLog, summary: BatchSummary,
           progress: bool) -> None:
    """Keeps the backend's slots busy in manifest order; each finished attempt is logged, retried or counted."""
    from tqdm.auto import tqdm

    pending = deque(todo)
    by_id = {job.id: job for job in todo}
    attempts = {job.id: 0 for job in todo}
    in_flight = 0
    bar = tqdm(total=len(todo), unit="job", desc="batch", disable=not progress, dynamic_ncols=True)
    interrupted = True
    try:
        while pending or in_flight:
            while pending and in_flight < runner.capacity:
                runner.submit(pending.popleft())
                in_flight += 1
            row = runner.next_result()
            in_flight -= 1
            attempts[row["id"]] += 1
            row["attempt"] = attempts[row["id"]]
            row["params"] = params[row["id"]]
            retry = row["status"] != "ok" and row.pop("retryable", False) and row["attempt"] <= retries
            row.pop("retryable", None)
            log.append(row)
            if retry:
                pending.append(by_id[row["id"]])
                continue
            summary.ran.append(row["id"])
            if row["status"] == "ok":
                summary.ok += 1
            else:
                summary.failed += 1
                bar.write(f"job {row['id']} failed: {row['error']}")
            bar.update(1)
            bar.set_postfix(failed=summary.failed, refresh=False)
        interrupted = False
    finally:
        bar.close()
        runner.close(interrupted=interrupted)


def prepare_output_folder(out) -> str:
    """Creates `out` if needed, proves it writable and removes temporary files a killed run left behind."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a folder path, got {type(out).__name__}")
    out_dir = os.path.abspath(os.fspath(out))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out: expected a folder, got an existing file: {out_dir!r}")
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, f".svdc-write-test{PARTIAL_MARK}{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"out: cannot write to the output folder {out_dir!r}: {e.strerror or e}") from None
    for folder, subfolders, names in os.walk(out_dir):
        for name in names + subfolders:
            if name.startswith(".") and PARTIAL_MARK in name:
                discard(os.path.join(folder, name))
        subfolders[:] = [d for d in subfolders if not (d.startswith(".") and PARTIAL_MARK in d)]
    return out_dir


def _plan(job_list: list[Job], options: dict) -> dict[str, tuple]:
    """{workflow: (its Task, its checked options)} for the workflows the manifest uses (what every worker gets);
    an option no such task reads is an error."""
    tasks = {wf: get_task(wf) for wf in sorted({job.workflow for job in job_list})}
    known = set()
    for task in tasks.values():
        known |= set(task.options)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"options: unknown setting(s) {unknown} for workflow(s) {sorted(tasks)}; expected among "
                         f"{sorted(known)}")
    return {wf: (task, task.check_options(options)) for wf, task in tasks.items()}


def _params_hash(job: Job, options_key) -> str:
    """What a job's output depends on: its workflow, its arguments and the task's options key."""
    text = json.dumps([job.workflow, job.args, options_key], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _optional_int(name: str, value, minimum: int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def _make_backend(backend: str, out_dir: str, plan: dict, workers, threads, cpus, gpus, address,
                  connect_timeout: float, n_jobs: int):
    if backend == "local":
        from .local import LocalBackend, default_threads

        requested = workers or (os.cpu_count() or 1)
        # threads follow the requested workers, not the jobs left, so a rerun of a few jobs computes the same bits
        threads = threads or default_threads(requested)
        return LocalBackend(out_dir, plan, min(requested, n_jobs), threads)
    from .ray_backend import RayBackend

    return RayBackend(out_dir, plan, workers=workers, threads=threads, cpus_per_worker=cpus,
                      gpus_per_worker=gpus, address=address, connect_timeout=connect_timeout, n_jobs=n_jobs)
