"""Fork safety: a child made by fork() (multiprocessing's default start method on Linux) inherits the parent's
OpenMP state but not its worker threads, so its first parallel region waits forever for threads that do not exist
(GNU libgomp). The child therefore runs svdc's CPU work on one thread; call svdc._C.set_num_threads(n) in the child
to ask for more only with an OpenMP runtime that supports it, or use the "spawn"/"forkserver" start methods."""
import os

from ._native import _C

# The parent's setting is inherited unchanged: the handler only runs in children made after import.


def _one_thread_in_child() -> None:
    try:
        _C.set_num_threads(1)
    except Exception:  # a fork handler must never raise into the child's fork() caller
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_in_child)
