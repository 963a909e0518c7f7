"""The Ray backend: Worker actors (one per GPU, or per CPU slot) that load the pipeline once and take jobs as they
free up, on a running ray.init(), a new local Ray, or an existing cluster at an address. Needs `pip install
svdc[ray]`; on a cluster every node needs svdc installed, and the output folder must be shared storage."""
from __future__ import annotations

import math
import os
import socket
from urllib.parse import urlsplit

from .tasks import Job
from .worker import Worker, lost_result


def import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("backend='ray' needs Ray: pip install 'svdc[ray]' (or 'ray[data]>=2.9')") from None
    return ray


def check_address(address: str, timeout: float) -> None:
    """Fails within `timeout` seconds when nothing listens at a host:port or ray://host:port address (ray.init
    itself would retry for minutes). "auto" and "local" are left to Ray."""
    if not isinstance(address, str) or not address:
        raise ValueError(f"address: expected 'host:port', 'ray://host:port', 'auto' or 'local', got {address!r}")
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise ValueError(f"address: expected 'host:port', 'ray://host:port', 'auto' or 'local', got {address!r}")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise ConnectionError(f"address: no Ray cluster answers at {address!r} ({reason}; waited at most "
                              f"{timeout:g} s). Start one with `ray start --head` and pass the address it "
                              f"prints, or leave address unset for a local Ray") from None


def _svdc_root() -> str:
    """The folder svdc is imported from, so that workers of a Ray started here import the same svdc."""
    import svdc

    return os.path.dirname(os.path.dirname(os.path.abspath(svdc.__file__)))


class RayBackend:
    """`workers` Worker actors, each asking for cpus_per_worker CPUs and gpus_per_worker GPUs; two jobs queued per
    actor at most, so a free actor never waits for the driver."""

    def __init__(self, out_dir: str, plan: dict, *, workers, threads, cpus_per_worker, gpus_per_worker,
                 address, connect_timeout: float, n_jobs: int):
        cpus = 1.0 if cpus_per_worker is None else _positive("cpus_per_worker", cpus_per_worker, allow_zero=False)
        gpus = _positive("gpus_per_worker", gpus_per_worker, allow_zero=True)
        ray = import_ray()
        self._ray = ray
        self._owns_ray = False
        if ray.is_initialized():
            if address is not None:
                raise ValueError(f"address={address!r}: Ray is already initialised in this process; call "
                                 f"ray.shutdown() first or leave address unset to use that session")
        else:
            if address is not None:
                check_address(address, connect_timeout)
                ray.init(address=address, include_dashboard=False)
            else:
                root = _svdc_root()
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
                ray.init(include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
            self._owns_ray = True
        try:
            total = ray.cluster_resources()
            fit = int(math.floor(total.get("CPU", 0.0) / cpus + 1e-9))
            if gpus > 0:
                fit = min(fit, int(math.floor(total.get("GPU", 0.0) / gpus + 1e-9)))
            if fit < 1:
                raise ValueError(f"cpus_per_worker={cpus:g}, gpus_per_worker={gpus:g}: the Ray cluster has "
                                 f"{total.get('CPU', 0):g} CPU(s) and {total.get('GPU', 0):g} GPU(s); no worker fits")
            if workers is not None and workers > fit:
                raise ValueError(f"workers={workers}: at {cpus:g} CPU(s) and {gpus:g} GPU(s) each the Ray cluster "
                                 f"({total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs) fits {fit}")
            count = min(workers or fit, n_jobs)
            # fractional CPUs still run one thread; threads do not follow the cluster's size
            self.threads = threads or max(1, int(cpus))
            self._cpus, self._gpus = cpus, gpus
            self._actor_class = ray.remote(Worker)
            self._args = (out_dir, plan, self.threads)
            self._actors = [self._new_actor() for _ in range(count)]
        except BaseException:
            self.close(interrupted=True)
            raise
        self._load = [0] * count
        self._running = {}  # object ref -> (job, actor index, actor handle)
        self.capacity = 2 * count

    def _new_actor(self):
        return self._actor_class.options(num_cpus=self._cpus, num_gpus=self._gpus).remote(*self._args)

    def describe(self) -> str:
        return (f"ray: {len(self._actors)} actor(s) x {self._cpus:g} CPU, {self._gpus:g} GPU, {self.threads} "
                f"thread(s)")

    def submit(self, job: Job) -> None:
        i = min(range(len(self._actors)), key=lambda k: self._load[k])
        actor = self._actors[i]
        self._running[actor.run.remote(job)] = (job, i, actor)
        self._load[i] += 1

    def next_result(self) -> dict:
        ray = self._ray
        ready, _ = ray.wait(list(self._running), num_returns=1)
        job, i, actor = self._running.pop(ready[0])
        self._load[i] -= 1
        try:
            return ray.get(ready[0])
        except ray.exceptions.RayActorError as e:
            if self._actors[i] is actor:  # replace a dead actor once, not once per job it held
                self._actors[i] = self._new_actor()
            return lost_result(job, f"the Ray actor died: {e}")
        except ray.exceptions.RayError as e:
            return lost_result(job, f"{type(e).__name__}: {e}")

    def close(self, interrupted: bool = False) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False



def _positive(name: str, value, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)
