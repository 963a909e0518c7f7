"""The local backend: a process pool (spawn start method: forking after OpenMP has started is unsafe), one Worker
per process, so each process loads its pipeline once; the CPU threads are divided among the processes."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os

from .tasks import Job
from .worker import Worker, lost_result

_worker = None  # this process's Worker (set by _init_process in pool processes)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when the runner dies (even by SIGKILL), so no orphan keeps working
    on a job the next run will redo."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: orphans finish their job and exit when they find the pool gone


def _init_process(out_dir: str, plan: dict, threads: int) -> None:
    global _worker
    _die_with_parent()
    _worker = Worker(out_dir, plan, threads)


def _run_in_process(job: Job) -> dict:
    return _worker.run(job)


class LocalBackend:
    """workers processes with `threads` CPU threads each; at most 2 jobs queued per process."""

    def __init__(self, out_dir: str, plan: dict, workers: int, threads: int):
        self.workers, self.threads = workers, threads
        self.capacity = 2 * workers
        self._args = (out_dir, plan, threads)
        self._pool = self._new_pool()
        self._running: dict[cf.Future, tuple[Job, cf.ProcessPoolExecutor]] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_process, initargs=self._args)

    def describe(self) -> str:
        return f"local: {self.workers} process(es) x {self.threads} thread(s)"

    def submit(self, job: Job) -> None:
        self._running[self._pool.submit(_run_in_process, job)] = (job, self._pool)

    def next_result(self) -> dict:
        """Blocks until a submitted job finishes; returns its result row."""
        done, _ = cf.wait(self._running, return_when=cf.FIRST_COMPLETED)
        future = next(iter(done))
        job, pool = self._running.pop(future)
        try:
            return future.result()
        except cf.process.BrokenProcessPool as e:
            # a process died (killed, out of memory, a crash in native code): every job queued on that pool fails
            # this attempt the same way and may come back as a retry; a fresh pool takes the resubmissions
            if pool is self._pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            return lost_result(job, f"a worker process died ({e})")
        except Exception as e:  # the job or its result could not cross the process boundary
            return lost_result(job, f"{type(e).__name__}: {e}")

    def close(self, interrupted: bool = False) -> None:
        """Interrupted: do not wait for running jobs (their outputs still appear whole or not at all)."""
        self._pool.shutdown(wait=not interrupted, cancel_futures=True)



def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)
