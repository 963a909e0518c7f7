"""svdc batch throughput on the CPU: jobs per minute of the local process pool and of Ray actors, with 1 and 2
workers, on tiny random-weight image-to-video jobs of two sizes; the Ray overhead per job is the difference of the
two backends' wall time per job at equal workers (Ray started once beforehand; its start time reported apart).
Every run starts from an empty output folder, so it includes spawning the workers and loading the pipeline.
Writes benchmarks/results/batch_cpu.md (machine, date, commit, medians of --repeat runs).

    python benchmarks/batch_cpu.py [--jobs 12 --repeat 3]        (~5 min on 2 loaded cores)
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place)

from benchmarks._report import commit, machine, version  # noqa: E402

SIZES = {  # name -> per-job pipeline arguments (the tiny model: 64x64)
    "tiny, 3 frames, 2 steps": {"num_frames": 3, "num_inference_steps": 2},
    "tiny, 6 frames, 8 steps": {"num_frames": 6, "num_inference_steps": 8},
}


def make_jobs(folder: Path, n: int, args: dict) -> list[dict]:
    from PIL import Image

    from svdc import tiny

    image = folder / "in.png"
    if not image.exists():
        Image.fromarray(tiny.test_image()).save(image)
    return [{"id": f"job-{i:03d}", "image": str(image), "seed": i, **args} for i in range(n)]


def timed_run(jobs, backend: str, workers: int, scratch: Path) -> float:
    from svdc.runner import run_batch

    out = Path(tempfile.mkdtemp(dir=scratch))
    kwargs = {"cpus_per_worker": 0.5} if backend == "ray" else {}
    start = time.perf_counter()
    summary = run_batch(jobs, out, backend=backend, workers=workers, threads_per_worker=1,
                        options={"model": "tiny", "device": "cpu"}, progress=False, **kwargs)
    wall = time.perf_counter() - start
    if summary.ok != len(jobs):
        raise RuntimeError(f"{backend} x{workers}: {summary}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_cpu.md"))
    args = parser.parse_args()

    import ray

    scratch = Path(tempfile.mkdtemp(prefix="svdc-batch-bench-"))
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    ray_start = time.perf_counter() - start

    rows = []
    for size, job_args in SIZES.items():
        jobs = make_jobs(scratch, args.jobs, job_args)
        walls = {}
        for workers in (1, 2):
            for backend in ("local", "ray"):
                times = [timed_run(jobs, backend, workers, scratch) for _ in range(args.repeat)]
                walls[backend, workers] = statistics.median(times)
                print(f"{size} | {backend} x{workers}: {[round(t, 2) for t in times]} s", flush=True)
        for workers in (1, 2):
            local, on_ray = walls["local", workers], walls["ray", workers]
            rows.append((size, workers, 60 * args.jobs / local, 60 * args.jobs / on_ray, on_ray / local,
                         (on_ray - local) / args.jobs))
    ray.shutdown()
    load_after = os.getloadavg()[0]

    lines = [
        "# svdc batch on the CPU: local process pool vs Ray actors",
        "",
        f"- machine: {machine()}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after "
        f"the runs (a load above the core count means other work shared the cores: single numbers are noisy)",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- ray {version('ray')}, `ray.init(num_cpus=2)` once before the runs: {ray_start:.1f} s (not in the "
        f"times below); actors ask for 0.5 CPU each",
        f"- workload: {args.jobs} jobs per run, svdc.tiny random-weight image-to-video at 64x64, one seed per job, "
        f"mp4 output; 1 CPU thread per worker on both backends; each run from an empty output folder (so worker "
        f"start and pipeline load are included); median of {args.repeat} runs",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')} (no reference library is compared "
        f"here: the local backend is the baseline)",
        "",
        "| jobs | workers | local (jobs/min) | Ray (jobs/min) | Ray / local time | Ray overhead per job (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for size, workers, local, on_ray, ratio, overhead in rows:
        lines.append(f"| {size} | {workers} | {local:.1f} | {on_ray:.1f} | {ratio:.2f} | {overhead:+.2f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
