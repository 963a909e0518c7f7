"""Hugging Face hub ids ("org/name") resolved to a snapshot folder of the local hub cache, with no network; an
optional download of only the files svdc reads, through huggingface_hub, when installed and asked for.

The cache layout (as huggingface_hub writes it): <cache>/models--<org>--<name>/{refs/<revision> (a commit hash),
snapshots/<commit>/<files as symlinks>, blobs/<etag>[.incomplete]}. <cache> is cache_dir, else $HF_HUB_CACHE, else
$HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
"""
from __future__ import annotations

import os
import re

from .weights import CheckpointError

__all__ = ["is_hub_id", "cache_root", "resolve_snapshot", "download_patterns"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_COMMIT = re.compile(r"[0-9a-f]{40}")
# Components svdc loads from a pipeline folder, and the small files beside them.
PIPELINE_COMPONENTS = ("unet", "vae", "image_encoder")
_SMALL_FILES = ("model_index.json", "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json")


def is_hub_id(path) -> bool:
    """True for "org/name" strings that are not an existing local path (a local folder always wins)."""
    if not isinstance(path, str) or os.path.exists(path):
        return False
    return bool(_ID.fullmatch(path)) and ".." not in path


def cache_root(cache_dir=None) -> str:
    """The hub cache folder, with huggingface_hub's order of precedence (no import of huggingface_hub)."""
    if cache_dir is not None:
        return os.path.expanduser(os.fspath(cache_dir))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def _repo_folder(repo_id: str, root: str) -> str:
    return os.path.join(root, "models--" + repo_id.replace("/", "--"))


def _how_to_get(repo_id: str, revision: str | None, variant: str | None) -> str:
    rev = f" --revision {revision}" if revision and revision != "main" else ""
    include = " ".join(f'--include "{p}"' for p in download_patterns(variant))
    return (f"To get the weights: accept the model's licence at https://huggingface.co/{repo_id} (Stability's SVD "
            f"repositories are gated), log in with `huggingface-cli login`, then run\n"
            f"    huggingface-cli download {repo_id}{rev} {include}\n"
            f"or pass local_files_only=False to download them through huggingface_hub (pip install huggingface_hub). "
            f"A local diffusers folder or a Stability single .safetensors file works too.")


def download_patterns(variant: str | None = None, components=PIPELINE_COMPONENTS) -> list[str]:
    """allow_patterns for the files svdc reads: the small JSON files, each component's config.json, and its
    safetensors weights of the one variant asked for (single file or shards + index); never .bin/.ckpt files."""
    patterns = list(_SMALL_FILES)
    for c in components:
        patterns.append(f"{c}/config.json")
        if variant:
            patterns += [f"{c}/*.{variant}.safetensors", f"{c}/*.safetensors.index.{variant}.json",
                         f"{c}/*.{variant}-*-of-*.safetensors"]
        else:
            patterns += [f"{c}/diffusion_pytorch_model.safetensors", f"{c}/model.safetensors",
                         f"{c}/*.safetensors.index.json", f"{c}/diffusion_pytorch_model-*-of-*.safetensors",
                         f"{c}/model-*-of-*.safetensors"]
    return patterns


def resolve_snapshot(repo_id: str, revision: str | None = None, cache_dir=None, local_files_only: bool | None = None,
                     variant: str | None = None, components=PIPELINE_COMPONENTS) -> str:
    """The local snapshot folder of `repo_id` at `revision` (a branch, tag or 40-hex commit; default "main").

    With local_files_only False, a missing or incomplete snapshot is downloaded through huggingface_hub (only the
    files of download_patterns); otherwise nothing touches the network. Raises CheckpointError naming what is
    missing (the repository, the revision, the snapshot, a broken link or an interrupted download) and how to get it.
    """
    if not isinstance(repo_id, str) or not _ID.fullmatch(repo_id) or ".." in repo_id:
        raise ValueError(f"repo_id: expected a hub id 'org/name', got {repo_id!r}")
    if revision is not None and (not isinstance(revision, str) or not revision or ".." in revision
                                 or revision.startswith("/")):
        raise ValueError(f"revision: expected a branch, tag or commit hash, got {revision!r}")
    if local_files_only not in (None, True, False):
        raise TypeError(f"local_files_only: expected a bool or None, got {type(local_files_only).__name__}")
    revision = revision or "main"
    root = cache_root(cache_dir)
    try:
        return _cached_snapshot(repo_id, revision, root, variant, components)
    except CheckpointError as missing:
        if local_files_only is not False:
            raise
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
            raise CheckpointError(f"{missing}\n(HF_HUB_OFFLINE is set, so nothing was downloaded)") from None
        _download(repo_id, revision, cache_dir, variant, components, missing)
        return _cached_snapshot(repo_id, revision, root, variant, components)


def _cached_snapshot(repo_id, revision, root, variant, components) -> str:
    repo = _repo_folder(repo_id, root)
    if not os.path.isdir(repo):
        raise CheckpointError(f"{repo_id}: no such local file or folder, and not in the local Hugging Face cache "
                              f"(looked for {repo}).\n"
                              + _how_to_get(repo_id, revision, variant))
    if _COMMIT.fullmatch(revision):
        commit = revision
    else:
        ref = os.path.join(repo, "refs", *revision.split("/"))
        if not os.path.isfile(ref):
            known = _cached_refs(repo)
            raise CheckpointError(f"{repo_id}: revision {revision!r} is not in the local cache (no {ref}; cached "
                                  f"revisions: {', '.join(known) or 'none'}).\n" + _how_to_get(repo_id, revision, variant))
        with open(ref, encoding="utf-8") as fh:
            commit = fh.read().strip()
        if not _COMMIT.fullmatch(commit):
            raise CheckpointError(f"{ref}: expected a 40-character commit hash, got {commit[:60]!r} (a damaged cache "
                                  "entry; delete it and download again)")
    snapshot = os.path.join(repo, "snapshots", commit)
    if not os.path.isdir(snapshot):
        raise CheckpointError(f"{repo_id}@{revision}: the snapshot {snapshot} is missing (the cache was partly "
                              "deleted or the download never finished).\n" + _how_to_get(repo_id, revision, variant))
    _check_snapshot(repo_id, snapshot, variant, components)
    return snapshot


def _cached_refs(repo: str) -> list[str]:
    refs_dir = os.path.join(repo, "refs")
    found = []
    for dirpath, _, files in os.walk(refs_dir):
        found += sorted(os.path.relpath(os.path.join(dirpath, f), refs_dir) for f in files)
    snaps = os.path.join(repo, "snapshots")
    if os.path.isdir(snaps):
        found += sorted(os.listdir(snaps))
    return found


def _check_snapshot(repo_id: str, snapshot: str, variant, components) -> None:
    """Every needed entry must be readable: a broken symlink (its blob missing, or still <blob>.incomplete) and a
    component folder without weights are errors that name the file, before any loader sees a confusing listing."""
    broken = []
    for dirpath, _, files in os.walk(snapshot):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path):
                blob = os.path.realpath(path)
                state = "download interrupted" if os.path.exists(blob + ".incomplete") else "blob missing"
                broken.append(f"{os.path.relpath(path, snapshot)} -> {blob} ({state})")
    if broken:
        raise CheckpointError(f"{repo_id}: the cached snapshot {snapshot} has broken links:\n  " + "\n  ".join(broken)
                              + "\nDownload again: " + f"huggingface-cli download {repo_id}")
    if not os.path.isfile(os.path.join(snapshot, "model_index.json")):
        return  # a component repository or a single-file repository: the loaders say what they need
    missing = []
    for c in components:
        folder = os.path.join(snapshot, c)
        has_config = os.path.isfile(os.path.join(folder, "config.json"))
        weights = [n for n in (os.listdir(folder) if os.path.isdir(folder) else []) if n.endswith(".safetensors")]
        if variant:
            weights = [n for n in weights if f".{variant}." in n or f".{variant}-" in n]
        if not has_config or not weights:
            what = "config.json" if not has_config else (f"{variant} " if variant else "") + "safetensors weights"
            missing.append(f"{c}/ ({what})")
    if missing:
        raise CheckpointError(f"{repo_id}: the cached snapshot {snapshot} is incomplete: missing "
                              f"{', '.join(missing)} (a partial download).\n" + _how_to_get(repo_id, None, variant))


def _download(repo_id, revision, cache_dir, variant, components, missing: CheckpointError) -> None:
    try:
        import huggingface_hub
    except ImportError:
        raise CheckpointError(f"{missing}\n(local_files_only=False needs huggingface_hub: pip install "
                              "huggingface_hub)") from None
    try:
        huggingface_hub.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                          allow_patterns=download_patterns(variant, components))
    except Exception as e:  # network, authentication (gated repository), unknown repository ...
        raise CheckpointError(f"{repo_id}: download failed: {type(e).__name__}: {e}\n"
                              + _how_to_get(repo_id, revision, variant)) from e
