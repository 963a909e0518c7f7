"""Runs one robustness probe in a forked child with a timeout and an address-space limit, and classifies what
happened: typed error / correct result (fine) or crash / hang / untyped / wrong / half-written (defects)."""
from __future__ import annotations

import json
import os
import resource
import signal
import time
import traceback
from collections import Counter

import svdc

FINE = ("typed error", "correct result")
DEFECTS = ("crash", "hang", "untyped", "wrong", "half-written")
# What a caller may catch: the project's contract (DESIGN.md) for bad input.
TYPED = (ValueError, TypeError, OSError, MemoryError, KeyError, svdc.SvdcError)

VERDICTS: Counter = Counter()  # verdict -> count over the run, printed by tests/robustness/conftest.py

ADDRESS_SPACE_HEADROOM = 3 * 2**30  # above what the parent has mapped already (libraries, the tiny models)


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024
    return 0


def _leftovers(folder: str | None) -> list[str]:
    if folder is None or not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if ".partial-" in n or n.endswith(".tmp"))


def _child(probe, out_fd: int) -> None:
    limit = _vm_size() + ADDRESS_SPACE_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = probe.run()
        if probe.expect == "error":
            verdict = ("wrong", f"expected a typed error, got a result: {result!r:.200}")
        else:
            ok = probe.expect(result)
            verdict = ("correct result", "") if ok else ("wrong", f"check failed on {result!r:.200}")
    except TYPED as e:
        if not str(e).strip():
            verdict = ("untyped", f"{type(e).__name__} with an empty message")
        elif probe.expect == "error" or isinstance(e, probe.allowed):
            verdict = ("typed error", f"{type(e).__name__}: {str(e)[:200]}")
        else:
            verdict = ("wrong", f"expected a result, got {type(e).__name__}: {str(e)[:200]}")
    except BaseException as e:  # noqa: BLE001  (classifying everything is the point)
        verdict = ("untyped", f"{type(e).__name__}: {str(e)[:200]} | {traceback.format_exc()[-600:]}")
    os.write(out_fd, json.dumps(verdict).encode())
    os.close(out_fd)


def run_probe(probe, timeout: float = 60.0) -> tuple[str, str]:
    """(class, detail) of one probe, run in a forked child. Files the probe leaves under probe.folder with a
    temporary name, or a probe.keep file whose content changed after an error, make it half-written."""
    kept = None
    if probe.keep is not None and os.path.exists(probe.keep):
        with open(probe.keep, "rb") as f:
            kept = f.read()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            _child(probe, w)
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hang", f"no answer within {timeout:g} s"
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    if os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}"
    if not data:
        return "crash", f"exited with status {os.WEXITSTATUS(status)} without a verdict"
    verdict, detail = json.loads(data)
    left = _leftovers(probe.folder)
    if left:
        return "half-written", f"temporary files left: {left} ({verdict}: {detail})"
    if kept is not None and verdict == "typed error":
        with open(probe.keep, "rb") as f:
            if f.read() != kept:
                return "half-written", f"{probe.keep} changed although the call failed ({detail})"
    return verdict, detail


class Probe:
    """family, name, run() -> result; expect "error" or a check(result) -> bool; folder: where no temporary file
    may remain; keep: a file that must be unchanged when the call fails; allowed: typed errors that count as fine
    even for a probe expecting a result (e.g. MemoryError for a size that may or may not fit)."""

    def __init__(self, family, name, run, expect="error", folder=None, keep=None, allowed=()):
        self.family, self.name, self.run, self.expect = family, name, run, expect
        self.folder, self.keep, self.allowed = folder, keep, tuple(allowed)

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"
