"""A runner worker: the process-side state of one pool slot or Ray actor. It fixes the CPU thread count, loads each
task's pipeline once (on its first job), and runs a job into a staging folder of its own inside the output folder,
moving the output (a file or a folder) to its final name only when complete; a failing job becomes a "failed"
result row, never an exception."""
from __future__ import annotations

import os
import shutil
import socket
import time
import uuid

from .tasks import Job

PARTIAL_MARK = ".partial-"


def staging_name() -> str:
    """The name of a worker's staging folder: hidden, marked partial (the next run deletes leftovers) and unique
    even among workers of several hosts writing to one shared folder."""
    return f"{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Worker:
    """out_dir: the run's output folder (absolute). plan: {workflow: (its Task, its checked run-level options)}.
    threads: the CPU (OpenMP and BLAS) threads of this worker; results are bit-identical for a given count."""

    def __init__(self, out_dir: str, plan: dict, threads: int):
        from .._native import _C

        _C.set_num_threads(int(threads))
        self.out_dir = out_dir
        self.plan = plan
        self.threads = int(threads)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.staging = os.path.join(out_dir, staging_name())
        self._states = {}

    def run(self, job: Job) -> dict:
        task, opts = self.plan[job.workflow]
        name = task.output_name(job, opts)
        row = {"id": job.id, "workflow": job.workflow, "worker": self.name, "threads": self.threads}
        start = time.perf_counter()
        # the output is made under its own base name (writers pick the format from the suffix) in the staging folder
        tmp = os.path.join(self.staging, name)
        try:
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            if job.workflow not in self._states:
                self._states[job.workflow] = task.load(opts)
                row["load_seconds"] = round(time.perf_counter() - start, 3)
                start = time.perf_counter()
            extra = task.run(self._states[job.workflow], job, tmp, opts)
            final = os.path.join(self.out_dir, name)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            publish(tmp, final)
            row.update(extra)
            row.update(status="ok", output=name, error=None)
        except Exception as e:  # the job's failure is its result; the worker lives on
            discard(tmp)
            # bad job input (an unreadable image, an impossible size) fails the same way every time: not retried
            row.update(status="failed", output=None, error=f"{type(e).__name__}: {e}",
                       retryable=not isinstance(e, (ValueError, TypeError)))
        finally:
            _remove_empty_folders(os.path.dirname(tmp), self.staging)
        row["seconds"] = round(time.perf_counter() - start, 3)
        return row


def publish(tmp: str, final: str) -> None:
    """Renames a finished output (a file, or a folder such as a multiview orbit) to its final name; an older
    folder there is moved aside first (a rename cannot replace a non-empty folder) and then deleted."""
    if os.path.isdir(tmp) and os.path.isdir(final):
        aside = os.path.join(os.path.dirname(tmp), staging_name())
        os.replace(final, aside)
        os.replace(tmp, final)
        discard(aside)
    else:
        os.replace(tmp, final)


def discard(path: str) -> None:
    """Removes a temporary output, file or folder, if it is there."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def _remove_empty_folders(folder: str, root: str) -> None:
    """Removes `folder` and its parents up to and including `root` while they are empty, so a worker that has
    nothing in flight leaves no staging folder behind."""
    root = os.path.abspath(root)
    folder = os.path.abspath(folder)
    while folder == root or folder.startswith(root + os.sep):
        try:
            os.rmdir(folder)
        except OSError:
            return  # not empty (or already gone with its parent)
        folder = os.path.dirname(folder)


def lost_result(job: Job, error: str) -> dict:
    """The result row of an attempt whose worker died or whose result never came back (retryable)."""
    return {"id": job.id, "workflow": job.workflow, "status": "failed", "output": None, "error": error,
            "retryable": True, "worker": None, "seconds": None}
