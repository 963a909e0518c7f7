"""svdc batch throughput on the CPU: jobs per minute of the local process pool and of Ray actors, with 1 and 2
workers, on image-to-video jobs of a tiny random-weight pipeline and of a "small real-config" one (SVD-XT's block
structure — 4 UNet levels, 2 res blocks each, attention at levels 0-2 with 64-dim heads, context 1024, the real
added-time ids; the SVD VAE's 4 levels; ViT-H/14's 32 layers — at reduced widths: UNet channels 64-128-256-256
instead of 320-640-1280-1280, VAE 64-128-256-256 instead of 128-256-512-512, ViT width 256 instead of 1280; about
120 M parameters instead of 2.2 G, so that 2 workers and Ray fit in ~3 GB). The Ray overhead per job is the
difference of the two backends' wall time per job at equal workers (all local runs first, then Ray started once;
its start time reported apart). Every run starts from an empty output folder, so it includes spawning the
workers and loading the pipeline. Peak memory is the summed RSS of this process and all its descendants (the
pool's processes, Ray's processes), sampled every 0.2 s. Writes benchmarks/results/batch_cpu.md (machine, date,
commit, medians).

    python benchmarks/batch_cpu.py                       (all workloads, 12 jobs, 3 repeats: ~15-20 min, 2 cores)
    python benchmarks/batch_cpu.py --workloads tiny-3f2s,small-real --jobs 8 --repeat 2     (~8 min)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's svdc (built in place)

from benchmarks._report import commit, machine, version  # noqa: E402

# name -> (model: "tiny" or "small-real", per-job pipeline arguments, what it is)
WORKLOADS = {
    "tiny-3f2s": ("tiny", {"num_frames": 3, "num_inference_steps": 2}, "tiny, 64x64, 3 frames, 2 steps"),
    "tiny-6f8s": ("tiny", {"num_frames": 6, "num_inference_steps": 8}, "tiny, 64x64, 6 frames, 8 steps"),
    "small-real": ("small-real", {"num_frames": 4, "num_inference_steps": 2, "height": 64, "width": 64},
                   "small real-config, 64x64, 4 frames, 2 steps"),
}


def small_real_configs() -> dict:
    """The small real-config components: SVD-XT's structure at reduced widths (see the module docstring)."""
    from svdc import tiny
    from svdc.configs.clip import VIT_H_14
    from svdc.configs.unet import DIFFUSERS_DEFAULTS
    from svdc.configs.vae import SVD

    vae = {k: v for k, v in SVD.items() if not k.startswith("_")}
    return {
        "unet": {**DIFFUSERS_DEFAULTS, "block_out_channels": [64, 128, 256, 256], "num_attention_heads": [1, 2, 4, 4]},
        "vae": {**vae, "block_out_channels": [64, 128, 256, 256]},
        "image_encoder": {**VIT_H_14, "hidden_size": 256, "intermediate_size": 1024, "num_attention_heads": 4},
        "scheduler": dict(tiny.SCHEDULER_CONFIG),  # SVD-XT's scheduler config
    }


def save_small_real(folder: Path) -> tuple[str, int]:
    """Writes the small real-config pipeline with random weights as a diffusers folder; returns (path, parameters)."""
    from svdc import ImageEncoder, UNet, VAE, tiny
    from svdc.weights import save_file

    configs = small_real_configs()
    parts = {"unet": (UNet, "diffusion_pytorch_model", ["diffusers", "UNetSpatioTemporalConditionModel"]),
             "vae": (VAE, "diffusion_pytorch_model", ["diffusers", "AutoencoderKLTemporalDecoder"]),
             "image_encoder": (ImageEncoder, "model", ["transformers", "CLIPVisionModelWithProjection"])}
    index = {"_class_name": "StableVideoDiffusionPipeline", "scheduler": ["diffusers", "EulerDiscreteScheduler"]}
    total = 0
    for seed, (name, (cls, stem, kind)) in enumerate(parts.items()):
        (folder / name).mkdir(parents=True)
        weights = tiny.random_weights(cls.weight_shapes(configs[name]), seed)
        total += sum(w.size for w in weights.values())
        save_file(weights, folder / name / f"{stem}.safetensors")
        head = {"architectures": [kind[1]]} if kind[0] == "transformers" else {"_class_name": kind[1]}
        (folder / name / "config.json").write_text(json.dumps({**head, **configs[name]}))
        index[name] = kind
        del weights
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "EulerDiscreteScheduler", **configs["scheduler"]}))
    (folder / "model_index.json").write_text(json.dumps(index))
    return str(folder), total


def tree_rss_mb(root_pid: int) -> float:
    """Summed resident memory of root_pid and all its descendants (Linux /proc), in MB."""
    children: dict[int, list[int]] = {}
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1e6


class PeakMemory:
    """Samples tree_rss_mb(this process) in a thread; .peak after the with block."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            self._stop.wait(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def make_jobs(folder: Path, n: int, args: dict) -> list[dict]:
    from PIL import Image

    from svdc import tiny

    image = folder / "in.png"
    if not image.exists():
        Image.fromarray(tiny.test_image()).save(image)
    return [{"id": f"job-{i:03d}", "image": str(image), "seed": i, **args} for i in range(n)]


def timed_run(jobs, model: str, backend: str, workers: int, scratch: Path) -> tuple[float, float]:
    """(wall seconds, peak MB of the process tree) of one run from an empty output folder."""
    from svdc.runner import run_batch

    out = Path(tempfile.mkdtemp(dir=scratch))
    kwargs = {"cpus_per_worker": 0.5} if backend == "ray" else {}
    with PeakMemory() as memory:
        start = time.perf_counter()
        summary = run_batch(jobs, out, backend=backend, workers=workers, threads_per_worker=1,
                            options={"model": model, "device": "cpu"}, progress=False, **kwargs)
        wall = time.perf_counter() - start
    if summary.ok != len(jobs):
        raise RuntimeError(f"{backend} x{workers}: {summary}")
    return wall, memory.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, among {list(WORKLOADS)} (default: all)")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_cpu.md"))
    args = parser.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads: unknown {unknown}; expected among {list(WORKLOADS)}")

    import ray

    scratch = Path(tempfile.mkdtemp(prefix="svdc-batch-bench-"))
    models = {"tiny": ("tiny", 0)}
    if any(WORKLOADS[w][0] == "small-real" for w in names):
        # in a child process, so that the driver's memory (in every peak below) does not keep the weights it drew
        code = (f"import json; from pathlib import Path; from benchmarks.batch_cpu import save_small_real; "
                f"print(json.dumps(save_small_real(Path({str(scratch / 'small_real')!r}))))")
        made = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
        models["small-real"] = tuple(json.loads(made.stdout.strip().splitlines()[-1]))
    driver = tree_rss_mb(os.getpid())
    load_before = os.getloadavg()[0]
    jobs = {name: make_jobs(scratch, args.jobs, WORKLOADS[name][1]) for name in names}
    walls, peaks = {}, {}

    def measure(backend: str) -> None:
        for name in names:
            model, _, label = WORKLOADS[name]
            for workers in (1, 2):
                runs = [timed_run(jobs[name], models[model][0], backend, workers, scratch)
                        for _ in range(args.repeat)]
                walls[name, backend, workers] = statistics.median(w for w, _ in runs)
                peaks[name, backend, workers] = max(p for _, p in runs)
                print(f"{label} | {backend} x{workers}: {[round(w, 2) for w, _ in runs]} s, peak "
                      f"{peaks[name, backend, workers]:.0f} MB", flush=True)

    measure("local")  # before Ray starts, so the local peaks hold no Ray process
    baseline = tree_rss_mb(os.getpid())
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    ray_start = time.perf_counter() - start
    time.sleep(2.0)  # let Ray's processes settle before reading their memory
    ray_idle = tree_rss_mb(os.getpid()) - baseline
    measure("ray")
    rows = []
    for name in names:
        for workers in (1, 2):
            local, on_ray = walls[name, "local", workers], walls[name, "ray", workers]
            rows.append((WORKLOADS[name][2], workers, 60 * args.jobs / local, 60 * args.jobs / on_ray,
                         on_ray / local, (on_ray - local) / args.jobs, peaks[name, "local", workers],
                         peaks[name, "ray", workers]))
    ray.shutdown()
    load_after = os.getloadavg()[0]

    small = ""
    if "small-real" in models:
        small = (f"; small real-config: {models['small-real'][1] / 1e6:.0f} M parameters (fp32), "
                 f"configs in `small_real_configs()` of benchmarks/batch_cpu.py")
    lines = [
        "# svdc batch on the CPU: local process pool vs Ray actors",
        "",
        f"- machine: {machine()}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after "
        f"the runs (a load above the core count means other work shared the cores: single numbers are noisy)",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- command: `python benchmarks/batch_cpu.py --workloads {','.join(names)} --jobs {args.jobs} "
        f"--repeat {args.repeat}`",
        f"- ray {version('ray')}, `ray.init(num_cpus=2)` once after the local runs and before the Ray runs: "
        f"{ray_start:.1f} s and {ray_idle:.0f} MB resident when idle (the start is not in the times below; the "
        f"memory is in the Ray peaks); actors ask for 0.5 CPU each",
        f"- workload: {args.jobs} image-to-video jobs per run from random-weight pipelines, one seed per job, mp4 "
        f"output; 1 CPU thread per worker on both backends; each run from an empty output folder (so worker start "
        f"and pipeline load are included); median of {args.repeat} run(s){small}",
        f"- peak memory: summed RSS of the driver ({driver:.0f} MB before the runs) and all its descendant "
        "processes (pool workers; Ray's own processes and actors), max over the runs; pages shared between "
        "processes count once per process",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')} (no reference library is compared "
        f"here: the local backend is the baseline)",
        "",
        "| jobs | workers | local (jobs/min) | Ray (jobs/min) | Ray / local time | Ray overhead per job (s) "
        "| peak MB local | peak MB Ray |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, workers, local, on_ray, ratio, overhead, peak_local, peak_ray in rows:
        lines.append(f"| {label} | {workers} | {local:.1f} | {on_ray:.1f} | {ratio:.2f} | {overhead:+.2f} "
                     f"| {peak_local:.0f} | {peak_ray:.0f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
