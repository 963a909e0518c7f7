"""A runner worker: the process-side state of one pool slot or Ray actor. It fixes the CPU thread count, loads each
task's pipeline once (on its first job), and runs a job into its output file under a temporary name that is renamed
only when complete, returning a result row; a failing job becomes a "failed" row, never an exception."""
from __future__ import annotations

import os
import shutil
import socket
import time

from .tasks import Job, get_task

PARTIAL_MARK = ".partial-"


def partial_name(name: str) -> str:
    """The temporary name of an output being written, in the same folder and with the same suffix (writers pick
    the format from it)."""
    folder, base = os.path.split(name)
    stem, suffix = os.path.splitext(base)
    return os.path.join(folder, f".{stem}{PARTIAL_MARK}{os.getpid()}{suffix}")


class Worker:
    """out_dir: the run's output folder (absolute). options: {workflow: checked run-level options}. threads: the CPU
    (OpenMP and BLAS) threads of this worker; results are bit-identical for a given thread count."""

    def __init__(self, out_dir: str, options: dict[str, dict], threads: int):
        from .._native import _C

        _C.set_num_threads(int(threads))
        self.out_dir = out_dir
        self.options = options
        self.threads = int(threads)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._states = {}

    def run(self, job: Job) -> dict:
        task = get_task(job.workflow)
        opts = self.options[job.workflow]
        name = task.output_name(job, opts)
        row = {"id": job.id, "workflow": job.workflow, "worker": self.name, "threads": self.threads}
        start = time.perf_counter()
        tmp = os.path.join(self.out_dir, partial_name(name))
        try:
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            if job.workflow not in self._states:
                self._states[job.workflow] = task.load(opts)
                row["load_seconds"] = round(time.perf_counter() - start, 3)
                start = time.perf_counter()
            extra = task.run(self._states[job.workflow], job, tmp, opts)
            publish(tmp, os.path.join(self.out_dir, name))
            row.update(extra)
            row.update(status="ok", output=name, error=None)
        except Exception as e:  # the job's failure is its result; the worker lives on
            discard(tmp)
            # bad job input (an unreadable image, an impossible size) fails the same way every time: not retried
            row.update(status="failed", output=None, error=f"{type(e).__name__}: {e}",
                       retryable=not isinstance(e, (ValueError, TypeError)))
        row["seconds"] = round(time.perf_counter() - start, 3)
        return row


def publish(tmp: str, final: str) -> None:
    """Renames a finished output (a file, or a folder such as a multiview orbit) to its final name; an older
    folder there is moved aside first (a rename cannot replace a non-empty folder) and then deleted."""
    if os.path.isdir(tmp) and os.path.isdir(final):
        aside = os.path.join(os.path.dirname(final), partial_name(os.path.basename(final) + ".old"))
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


def lost_result(job: Job, error: str) -> dict:
    """The result row of an attempt whose worker died or whose result never came back (retryable)."""
    return {"id": job.id, "workflow": job.workflow, "status": "failed", "output": None, "error": error,
            "retryable": True, "worker": None, "seconds": None}
