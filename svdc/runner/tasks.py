"""The runner's task interface: a task kind (a manifest's `workflow`) declares its per-job columns, checks the
run-level options, loads its expensive state (a pipeline) once per worker, and turns one job into one output (a file
or a folder). The built-in kinds are imported when first named; other kinds join with register_task (a per-item
stage with svdc.runner.Stage). Workers receive the task objects themselves, so a kind registered in the driver runs
on every worker as long as its module is importable there."""
from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass, field

from .._validate import FLOAT32_MAX
from ..random import SEED_MIN, SEED_MAX

# Column types a task may declare: "path" is a string resolved against the manifest's folder; "float" is a finite
# number; "floats" is one finite number or a list of them (a JSON/Parquet list, or numbers separated by spaces or
# commas in a CSV cell).
COLUMN_TYPES = ("int", "float", "str", "path", "floats")

# Ranges of the built-in kinds' numeric columns (Task.limits), inclusive, None for no bound: what the pipelines
# accept, so that a cell they would refuse is refused when the manifest is read, before any job starts.
SEEDS = (SEED_MIN, SEED_MAX)  # svdc.Generator's seeds
COUNT = (1, 2**31 - 1)  # frames, steps, chunk sizes and pixel sizes: positive C ints
AT_LEAST_0 = (0.0, FLOAT32_MAX)  # fps, motion bucket, noise strength: >= 0 and within float32, where svdc computes
ANY_FLOAT32 = (-FLOAT32_MAX, FLOAT32_MAX)


@dataclass(frozen=True)
class Job:
    """One manifest row, validated: its id, its task kind, its typed arguments and where it came from."""
    id: str
    workflow: str
    args: dict = field(default_factory=dict)
    source: str = field(default="", compare=False)  # "jobs.csv row 3", for error messages


def model_option(options: dict, name: str, expected: str, allow_tiny: bool = False) -> str:
    """options[name] checked as a model path (or "tiny" where allowed) and made absolute, since workers may run
    elsewhere (another cwd); `expected` says what the task accepts, for the message."""
    model = options[name]
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"{name}: expected {expected}, got {model!r}")
    model = os.fspath(model)
    if allow_tiny and model == "tiny":
        return model
    if not os.path.exists(model):
        raise ValueError(f"{name}: no such file or folder: {model!r}")
    return os.path.abspath(model)


class Task:
    """Base class of a task kind. Subclasses set `name`, `columns` ({column: type}), `required`, `limits` and
    `options`, and implement output_name(), load() and run(). Instances are cheap, stateless and picklable (they
    travel to the workers); the loaded state is what load() returns."""

    name: str = ""
    columns: dict[str, str] = {}
    required: tuple[str, ...] = ()
    limits: dict[str, tuple] = {}  # {numeric column: (lowest, highest)}, inclusive, None: no bound
    options: dict[str, object] = {}  # run-level settings this task reads, with their defaults

    def check_options(self, options: dict) -> dict:
        """Validates the run-level options cheaply (before any worker starts); returns them with defaults filled.
        The settings every svdc pipeline takes are checked here for the tasks that declare them: `device` (its
        syntax: whether that device works is the worker's to find out, since workers may run elsewhere) and
        `dtype`."""
        from ..runtime import dtype_name, parse_device

        opts = {k: options.get(k, v) for k, v in self.options.items()}
        if "device" in opts:
            parse_device(opts["device"])
        if "dtype" in opts:
            dtype_name(opts["dtype"], "dtype")
        return opts

    def options_key(self, options: dict):
        """The part of the checked options a job's output depends on (JSON-able): in its parameter hash."""
        return options

    def output_name(self, job: Job, options: dict) -> str:
        """The job's output (a file, or a folder) inside the output folder; may name a subfolder: "parts/<id>.json"."""
        raise NotImplementedError

    def load(self, options: dict):
        """The expensive once-per-worker state (a loaded pipeline)."""
        raise NotImplementedError

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        """Writes the job's output to output_path (a temporary path with the final name's base name, in a staging
        folder; the worker moves it to its final place when run returns) and returns extra result fields
        (JSON-able). Raises on failure; ValueError/TypeError mean bad job input (not retried)."""
        raise NotImplementedError


def seed_from_id(job_id: str) -> int:
    """The seed of a job whose row gives none: derived from its id alone, so reruns and workers agree."""
    return int.from_bytes(hashlib.sha256(job_id.encode("utf-8")).digest()[:4], "little")


# Built-in kinds: name -> "module:attribute" of the Task instance, imported when first used.
BUILTIN_TASKS = {
    "image_to_video": "svdc.runner.task_image_to_video:TASK",
    "multiview": "svdc.runner.task_multiview:TASK",
    "text_to_image": "svdc.runner.task_text:TEXT_TO_IMAGE",
    "text_to_video": "svdc.runner.task_text:TEXT_TO_VIDEO",
    "curation": "svdc.curation.runner:CURATION_TASK",
}
TASKS: dict[str, Task] = {}  # the kinds in use in this process: built-ins once named, and registered ones


def register_task(task: Task) -> Task:
    """Makes `task` available as the workflow task.name (in this process: the driver). Registering the same task
    again is a no-op; another task under a taken name is an error."""
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a svdc.runner.Task, got {type(task).__name__}")
    if not isinstance(task.name, str) or not task.name:
        raise ValueError(f"task.name: expected a non-empty string, got {task.name!r}")
    for name, kind in task.columns.items():
        if kind not in COLUMN_TYPES or name in ("id", "workflow"):
            raise ValueError(f"task {task.name!r}: column {name!r}: expected a type among {COLUMN_TYPES} and a name "
                             f"other than 'id'/'workflow', got {kind!r}")
    for name, bounds in task.limits.items():
        if task.columns.get(name) not in ("int", "float", "floats") or not isinstance(bounds, tuple) or \
                len(bounds) != 2:
            raise ValueError(f"task {task.name!r}: limits[{name!r}]: expected (lowest, highest) for a numeric column, "
                             f"got {bounds!r} for a column of type {task.columns.get(name)!r}")
    taken = TASKS.get(task.name)
    if taken is None and task.name in BUILTIN_TASKS:
        taken = get_task(task.name)
    if taken is not None and taken != task:
        raise ValueError(f"task.name: the workflow {task.name!r} is already registered (by {taken!r})")
    TASKS[task.name] = task
    return task


def get_task(name: str, where: str = "workflow") -> Task:
    task = TASKS.get(name)
    if task is None and isinstance(name, str) and name in BUILTIN_TASKS:
        module, attribute = BUILTIN_TASKS[name].split(":")
        task = TASKS[name] = getattr(importlib.import_module(module), attribute)
    if task is None:
        known = sorted(set(BUILTIN_TASKS) | set(TASKS))
        raise ValueError(f"{where}: unknown workflow {name!r}; expected one of {known}")
    return task
