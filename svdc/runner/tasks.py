"""The runner's task interface: a task kind (a manifest's `workflow`) declares its per-job columns, checks the
run-level options, loads its expensive state (a pipeline) once per worker, and turns one job into one output file.
Image-to-video is one kind; further kinds register themselves in TASKS."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# Column types a task may declare: "path" is a string resolved against the manifest's folder.
COLUMN_TYPES = ("int", "float", "str", "path")


@dataclass(frozen=True)
class Job:
    """One manifest row, validated: its id, its task kind, its typed arguments and where it came from."""
    id: str
    workflow: str
    args: dict = field(default_factory=dict)
    source: str = field(default="", compare=False)  # "jobs.csv row 3", for error messages


class Task:
    """Base class of a task kind. Subclasses set `name`, `columns` ({column: type}), `required` and `suffix`, and
    implement load() and run(). Instances are cheap and stateless; the loaded state is what load() returns."""

    name: str = ""
    columns: dict[str, str] = {}
    required: tuple[str, ...] = ()
    options: dict[str, object] = {}  # run-level settings this task reads, with their defaults

    def check_options(self, options: dict) -> dict:
        """Validates the run-level options cheaply (before any worker starts); returns them with defaults filled."""
        return {k: options.get(k, v) for k, v in self.options.items()}

    def options_key(self, options: dict):
        """The part of the checked options a job's output depends on (JSON-able): in its parameter hash."""
        return options

    def output_name(self, job: Job, options: dict) -> str:
        """The job's output file name inside the output folder (may name a subfolder: "parts/<id>.json")."""
        raise NotImplementedError

    def load(self, options: dict):
        """The expensive once-per-worker state (a loaded pipeline)."""
        raise NotImplementedError

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        """Writes the job's output to output_path (a temporary name the worker renames when run returns) and
        returns extra result fields (JSON-able). Raises on failure; ValueError/TypeError mean bad job input (not
        retried)."""
        raise NotImplementedError


def seed_from_id(job_id: str) -> int:
    """The seed of a job whose row gives none: derived from its id alone, so reruns and workers agree."""
    return int.from_bytes(hashlib.sha256(job_id.encode("utf-8")).digest()[:4], "little")


def _builtin_tasks() -> dict[str, Task]:
    from .task_curation import CurationTask
    from .task_image_to_video import ImageToVideoTask

    return {t.name: t for t in (ImageToVideoTask(), CurationTask())}


TASKS: dict[str, Task] = _builtin_tasks()


def get_task(name: str, where: str = "workflow") -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"{where}: unknown workflow {name!r}; expected one of {sorted(TASKS)}") from None
