"""svdc.runner: batch generation (and other per-item work) from a job manifest into an output folder, resumable,
on a local process pool or on Ray. See docs/ray.md."""
from .manifest import read_manifest
from .results import read_results
from .run import BatchSummary, run_batch
from .stage import Stage, StageTask, run_stage
from .tasks import TASKS, Job, Task, get_task, register_task

__all__ = ["run_batch", "read_manifest", "read_results", "BatchSummary", "Job", "Task", "TASKS", "get_task",
           "register_task", "Stage", "StageTask", "run_stage"]
