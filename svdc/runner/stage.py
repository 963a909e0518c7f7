"""A per-item stage through the runner: a pure function item -> JSON-able output (curation's per-video rows, a
per-clip score table...), saved as <folder>/<item id>.json in the output folder, with the runner's resumption,
retries, atomic outputs, results table and local/Ray backends. `run_stage(stage, items, out_dir, params)` runs one;
svdc.curation's per-video stage is one (svdc/curation/runner.py)."""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .tasks import Job, Task, register_task


@dataclass(frozen=True, eq=True)
class Stage:
    """name: the runner workflow name (unique per stage). process(state, item, params) -> dict: the work of one
    item, a pure function (the same item and params give the same output on any worker); `item` is {"id": ...,
    column: value} with path columns absolute. load(params) -> state: once per worker (models), None: state None.
    columns: {column: type} of an item ("path", "str", "int", "float", "floats"); required: the columns every item
    must have (None: all). folder: where the outputs go inside the output folder. params_type: the class of
    `params` (None given: params_type()); a params object with validate() is validated and one with hash() is
    keyed by it (else by its dataclass fields, else its repr). summary(output) -> a few JSON-able fields for the
    item's results.jsonl row. Every function must be a module-level function of an importable module (workers
    import it by name)."""
    name: str
    process: Callable
    load: Callable | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: {"video": "path"})
    required: tuple[str, ...] | None = None
    folder: str = "parts"
    params_type: type | None = None
    summary: Callable | None = None


class StageTask(Task):
    """The runner task of a Stage: option `params`, output <folder>/<id>.json."""

    options = {"params": None}

    def __init__(self, stage: Stage):
        if not isinstance(stage, Stage):
            raise TypeError(f"stage: expected a svdc.runner.Stage, got {type(stage).__name__}")
        for name in ("process", "load", "summary"):
            value = getattr(stage, name)
            if value is not None and not callable(value):
                raise TypeError(f"stage.{name}: expected a function, got {type(value).__name__}")
        if not isinstance(stage.folder, str) or not stage.folder or stage.folder.startswith((".", "/")):
            raise ValueError(f"stage.folder: expected a relative folder name, got {stage.folder!r}")
        self.stage = stage
        self.name = stage.name
        self.columns = dict(stage.columns)
        self.required = tuple(stage.columns) if stage.required is None else tuple(stage.required)

    def __eq__(self, other) -> bool:
        return isinstance(other, StageTask) and other.stage == self.stage

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"StageTask({self.name!r}, process={getattr(self.stage.process, '__qualname__', self.stage.process)})"

    def check_options(self, options: dict) -> dict:
        params = options.get("params")
        kind = self.stage.params_type
        if params is None and kind is not None:
            params = kind()
        if kind is not None and not isinstance(params, kind):
            raise TypeError(f"params: expected a {kind.__module__}.{kind.__qualname__}, got {type(params).__name__}")
        if hasattr(params, "validate"):
            params.validate()
        return {"params": params}

    def options_key(self, options: dict):
        return {"params": params_key(options["params"])}

    def output_name(self, job: Job, options: dict) -> str:
        return f"{self.stage.folder}/{job.id}.json"

    def load(self, options: dict):
        return None if self.stage.load is None else self.stage.load(options["params"])

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        output = self.stage.process(state, {"id": job.id, **job.args}, options["params"])
        if not isinstance(output, Mapping):
            raise RuntimeError(f"stage {self.name!r}: process returned {type(output).__name__}, expected a dict")
        with open(output_path, "w", encoding="utf-8") as f:
            f.write(output_json(output))
        return {} if self.stage.summary is None else dict(self.stage.summary(output))


def params_key(params) -> str:
    """What identifies a stage's params for resumption (a string in the job's parameter hash)."""
    if params is None:
        return "None"
    if callable(getattr(params, "hash", None)):
        return str(params.hash())
    if dataclasses.is_dataclass(params):
        return json.dumps(dataclasses.asdict(params), sort_keys=True, default=repr)
    return repr(params)


def output_json(output: Mapping) -> str:
    """The text of a stage output: sorted keys, NaN and infinities as null (JSON has none)."""
    return json.dumps(_json_safe(output), sort_keys=True)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def run_stage(stage: Stage, items, out_dir, params=None, *, backend: str = "local", workers: int | None = None,
              retries: int = 1, progress: bool = True, **settings):
    """Runs `stage` over `items` (a list of dicts with an "id" and the stage's columns, paths relative to the
    current folder; or a .csv/.jsonl/.parquet manifest) into out_dir/<stage.folder>/<id>.json, plus
    out_dir/results.jsonl. Items finished by an earlier run with the same params are skipped. settings: the other
    run_batch settings (threads_per_worker; Ray: address, cpus_per_worker, gpus_per_worker, connect_timeout).
    Returns run_batch's BatchSummary."""
    from .run import run_batch

    register_task(StageTask(stage))
    return run_batch(items, out_dir, backend=backend, workers=workers, retries=retries, workflow=stage.name,
                     options={"params": params}, progress=progress, **settings)
