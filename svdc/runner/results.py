"""The results table of an output folder: `results.jsonl`, one JSON object per finished attempt (id, workflow,
status "ok"|"failed", output, seconds, error, attempt, worker, threads, plus the task's fields). It is only ever
appended to and flushed line by line, so a killed run loses at most the line being written; the last line of a job
wins."""
from __future__ import annotations

import json
import os

from .._validate import check_path

RESULTS_NAME = "results.jsonl"


def read_results(out_dir) -> dict[str, dict]:
    """{job id: its latest result row} from out_dir/results.jsonl ({} when there is none). A torn last line (a run
    killed while writing it) is ignored."""
    path = os.path.join(check_path(out_dir, "out_dir"), RESULTS_NAME)
    latest = {}
    if not os.path.exists(path):
        return latest
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if isinstance(row, dict) and "id" in row:
                latest[str(row["id"])] = row
    return latest


def finished_ids(out_dir, latest: dict[str, dict]) -> set[str]:
    """Jobs whose latest result is "ok" and whose output (a file or a folder) is still there."""
    out_dir = os.fspath(out_dir)
    return {i for i, r in latest.items()
            if r.get("status") == "ok" and r.get("output") and os.path.exists(os.path.join(out_dir, r["output"]))}


class ResultsLog:
    """Appends result rows to out_dir/results.jsonl, each flushed to the OS when written."""

    def __init__(self, out_dir):
        self.path = os.path.join(os.fspath(out_dir), RESULTS_NAME)
        self._repair_torn_tail()
        self._file = open(self.path, "a", encoding="utf-8")

    def _repair_torn_tail(self) -> None:
        """A kill mid-line leaves text without a newline; end it so the next row starts on its own line."""
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def append(self, row: dict) -> None:
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
