"""Reads a job manifest (CSV, JSONL, Parquet when pyarrow is installed, or a list of dicts) into validated Jobs:
an `id` column (unique, usable as a file name), an optional `workflow` column, and the task's own columns, typed."""
from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping, Sequence

from .tasks import Job, get_task

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def read_manifest(jobs, workflow: str = "image_to_video") -> list[Job]:
    """jobs: a manifest path (.csv, .jsonl, .parquet) or a sequence of dicts (paths in them relative to the current
    folder). workflow: the task kind of rows without a `workflow` column. Raises ValueError naming the row."""
    if isinstance(jobs, (str, os.PathLike)):
        path = os.fspath(jobs)
        try:
            rows = _read_rows(path)
        except UnicodeDecodeError as e:
            raise ValueError(f"jobs: {path!r}: expected UTF-8 text, got undecodable bytes ({e})") from None
        base, label = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    elif isinstance(jobs, Sequence) and all(isinstance(r, Mapping) for r in jobs):
        rows = [{k: v for k, v in r.items() if v is not None} for r in jobs]
        base, label = os.getcwd(), "jobs"
    else:
        raise TypeError(f"jobs: expected a manifest path ({', '.join(MANIFEST_SUFFIXES)}) or a list of dicts, got "
                        f"{type(jobs).__name__}")
    get_task(workflow, "workflow")
    out, first_row = [], {}
    for i, row in enumerate(rows, start=1):
        job = _job(row, f"{label} row {i}", workflow, base)
        if job.id in first_row:
            raise ValueError(f"{job.source}: duplicate job id {job.id!r} (first used at {first_row[job.id]}); "
                             f"job ids must be unique")
        first_row[job.id] = job.source
        out.append(job)
    if not out:
        raise ValueError(f"jobs: {label} has no rows; expected at least one job")
    return out


def _read_rows(path: str) -> list[dict]:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ValueError(f"jobs: expected a manifest ending in one of {MANIFEST_SUFFIXES}, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"jobs: no such manifest file: {path!r}")
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return []
            if None in reader.fieldnames or "" in reader.fieldnames:
                raise ValueError(f"jobs: {path!r} has an unnamed column in its header {reader.fieldnames}")
            if len(set(reader.fieldnames)) != len(reader.fieldnames):
                raise ValueError(f"jobs: {path!r}: expected distinct column names, got the header {reader.fieldnames}")
            rows = []
            for i, row in enumerate(reader, start=1):
                if None in row:  # more cells than header names
                    raise ValueError(f"jobs: {path!r} row {i} has more cells than the header's "
                                     f"{len(reader.fieldnames)} columns")
                rows.append({k: v for k, v in row.items() if v not in ("", None)})  # empty cell: the default
            return rows
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"jobs: {path!r} line {n} is not valid JSON: {e}") from None
                if not isinstance(row, dict):
                    raise ValueError(f"jobs: {path!r} line {n}: expected a JSON object, got {type(row).__name__}")
                rows.append({k: v for k, v in row.items() if v is not None})
        return rows
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"jobs: reading {path!r} needs pyarrow (pip install pyarrow), or give a .csv/.jsonl "
                         f"manifest") from None
    return [{k: v for k, v in row.items() if v is not None} for row in pq.read_table(path).to_pylist()]


def _job(row: dict, source: str, default_workflow: str, base: str) -> Job:
    if "id" not in row:
        raise ValueError(f"{source}: missing the required column 'id' (a unique job name)")
    job_id = row["id"]
    if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
        raise ValueError(f"{source}: id: expected a string, got {type(job_id).__name__} {job_id!r}")
    job_id = str(job_id)
    if not _ID.fullmatch(job_id):
        raise ValueError(f"{source}: id: expected letters, digits, '.', '_' or '-' (at most 200, not starting with "
                         f"'.', '_' or '-'; it names the output file), got {job_id!r}")
    workflow = row.get("workflow", default_workflow)
    task = get_task(workflow, f"{source}: workflow")
    unknown = sorted(set(row) - {"id", "workflow"} - set(task.columns))
    if unknown:
        raise ValueError(f"{source}: unknown column(s) {unknown} for workflow {workflow!r}; expected among "
                         f"{['id', 'workflow', *task.columns]}")
    missing = [c for c in task.required if c not in row]
    if missing:
        raise ValueError(f"{source}: missing required column(s) {missing} for workflow {workflow!r}")
    args = {name: _convert(row[name], kind, f"{source}: {name}", base)
            for name, kind in task.columns.items() if name in row}
    for name, (lowest, highest) in task.limits.items():
        if name in args:
            _check_range(args[name], lowest, highest, f"{source}: {name}", task.columns[name] == "int")
    return Job(id=job_id, workflow=workflow, args=args, source=source)


def _check_range(value, lowest, highest, where: str, integer: bool) -> None:
    """value (a number, or a list of them for "floats") within [lowest, highest] (None: no bound)."""
    for v in value if isinstance(value, list) else [value]:
        if (lowest is not None and v < lowest) or (highest is not None and v > highest):
            expected = (f"in [{lowest}, {highest}]" if lowest is not None and highest is not None else
                        f">= {lowest}" if lowest is not None else f"<= {highest}")
            raise ValueError(f"{where}: expected {'an integer' if integer else 'a number'} {expected}, got "
                             f"{value!r}")


def _convert(value, kind: str, where: str, base: str):
    if kind == "floats":
        return _floats(value, where)
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
        return os.path.normpath(os.path.join(base, value)) if kind == "path" else value
    try:
        if isinstance(value, bool):
            raise ValueError
        if kind == "int":
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) or isinstance(value, int) or hasattr(value, "__index__"):
                return int(value.strip() if isinstance(value, str) else value)  # "1.5" or 1.5 is refused
            raise ValueError
        number = float(value)
        if not math.isfinite(number):  # "nan", "inf" and 1e400 parse as floats
            raise ValueError
        return number
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: expected {'an integer' if kind == 'int' else 'a finite number'}, got "
                         f"{value!r}") from None


def _floats(value, where: str):
    """One number (a float) or several (a list of floats): a JSON/Parquet list, or a CSV cell of numbers separated
    by spaces, commas or semicolons."""
    items = value
    if isinstance(value, str):
        items = value.replace(",", " ").replace(";", " ").split()
    elif not isinstance(value, (list, tuple)):
        items = [value]
    try:
        if not items or any(isinstance(v, bool) for v in items):
            raise ValueError
        numbers = [float(v) for v in items]
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: expected a finite number or a list of finite numbers, got {value!r}") from None
    return numbers[0] if len(numbers) == 1 and not isinstance(value, (list, tuple)) else numbers
