"""Test helper: a fake Hugging Face hub cache built offline, laid out as huggingface_hub writes it
(models--org--name/{blobs/<sha256>, snapshots/<commit>/<relative symlinks into blobs>, refs/<revision>})."""
from __future__ import annotations

import hashlib
import os
import shutil


def add_snapshot(cache: str, repo_id: str, folder: str, revision: str = "main", commit: str | None = None) -> str:
    """Copies every file of `folder` into the cache as blobs + a snapshot of symlinks; writes refs/<revision>.
    Returns the snapshot folder."""
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    files = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
    if commit is None:
        digest = hashlib.sha1()
        for rel in files:
            digest.update(rel.encode())
            digest.update(_sha256(os.path.join(folder, rel)).encode())
        commit = digest.hexdigest()
    snapshot = os.path.join(repo, "snapshots", commit)
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    for rel in files:
        sha = _sha256(os.path.join(folder, rel))
        blob = os.path.join(repo, "blobs", sha)
        if not os.path.exists(blob):
            shutil.copyfile(os.path.join(folder, rel), blob)
        link = os.path.join(snapshot, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(blob, os.path.dirname(link)), link)
    ref = os.path.join(repo, "refs", *revision.split("/"))
    os.makedirs(os.path.dirname(ref), exist_ok=True)
    with open(ref, "w") as fh:
        fh.write(commit)
    return snapshot


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
