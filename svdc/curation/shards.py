"""Dataset export: the kept clips of a filtered manifest as webdataset-style tar shards ({shard:05d}.tar holding
<key>.mp4, <key>.json, <key>.txt and optionally <key>.latent.npy / <key>.clip_embedding.npy per sample, the
layout video2dataset writes) plus an index table (index.parquet or .jsonl) and _export.json. Written with the
standard library's tarfile; each shard appears under its final name only when complete (written as a hidden
.partial file, then renamed), so a rerun skips finished shards and never trusts a half-written one.

Precomputed conditioning (optional, with svdc's own models): the VAE posterior mean of each clip's first frame at
`latent_size` and its CLIP image embedding (SVD's image-encoder input), as SVD-style training consumes them."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from .captions import CaptionSampler
from .manifest import _json_safe

__all__ = ["ExportParams", "export_dataset", "Conditioners"]


@dataclass
class ExportParams:
    shard_size: int = 100  # samples per shard
    kept_only: bool = True  # only clips the `decisions` table keeps (False: every clip)
    reencode: bool = False  # re-encode clips (H.264) instead of a stream copy
    caption_seed: int = 0  # the caption sampler's seed
    latent_size: tuple | None = None  # (height, width) for precomputed VAE latents, multiples of 8

    def validate(self) -> None:
        if not (isinstance(self.shard_size, int) and self.shard_size >= 1):
            raise ValueError(f"shard_size: expected an int >= 1, got {self.shard_size!r}")
        if self.latent_size is not None:
            size = tuple(self.latent_size)
            if len(size) != 2 or any(not isinstance(v, int) or v < 8 or v % 8 for v in size):
                raise ValueError(f"latent_size: expected (height, width), multiples of 8, got {self.latent_size!r}")


@dataclass
class Conditioners:
    """svdc models for precomputed conditioning: vae (svdc.VAE) and/or image_encoder (svdc.ImageEncoder)."""

    vae: object | None = None
    image_encoder: object | None = None


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    tar.addfile(info, io.BytesIO(data))


def _write_shard(path: str, samples) -> None:
    """samples: an iterable (consumed lazily, so one sample at a time is in memory) of {"key", "files": {extension:
    bytes}} -> a tar at `path`, appearing only when complete; on any error the partial file is removed."""
    partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial")
    now = time.time()
    try:
        with tarfile.open(partial, "w") as tar:
            for s in samples:
                for ext, data in s["files"].items():
                    _add(tar, f"{s['key']}.{ext}", data, now)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _sample_json(row: dict, caption_role: str | None, caption: str | None) -> dict:
    keep = {k: v for k, v in row.items() if k not in ("svdc_version", "params_hash", "stage", "reasons", "keep")}
    keep["caption"] = caption
    keep["caption_role"] = caption_role
    return keep


def _conditioning(row: dict, path: str, params: ExportParams, cond: Conditioners) -> dict:
    """Extra files of one sample: the first frame's VAE latent and CLIP image embedding."""
    from PIL import Image

    from .scores import read_frames

    first = read_frames(path, [int(row["start_frame"])])[int(row["start_frame"])]  # (H, W, 3) uint8
    files = {}
    if cond.vae is not None:
        h, w = params.latent_size
        img = np.asarray(Image.fromarray(first).resize((w, h), Image.BICUBIC), np.float32)
        x = (img / 127.5 - 1.0).transpose(2, 0, 1)[None]  # (1, 3, h, w) in [-1, 1]
        files["latent.npy"] = _npy_bytes(cond.vae.encode(x)[0])  # (C, h/8, w/8) posterior mean
    if cond.image_encoder is not None:
        files["clip_embedding.npy"] = _npy_bytes(cond.image_encoder.encode_image(first[None])[0])  # (D,)
    return files


def _sample(row: dict, chosen: tuple, source: str, scratch: str, params: ExportParams, cond: Conditioners) -> dict:
    """One sample's files: the clip cut out of its video (stream copy), its metadata, caption and conditioning."""
    from .clips import Clip, export as cut_clip

    clip_file = cut_clip(source, Clip.from_row(row), os.path.join(scratch, f"{row['clip_id']}.mp4"),
                         reencode=params.reencode)
    with open(clip_file, "rb") as f:
        files = {"mp4": f.read()}
    os.remove(clip_file)
    role, caption = chosen
    files["json"] = json.dumps(_json_safe(_sample_json(row, role, caption)), sort_keys=True).encode()
    if caption is not None:
        files["txt"] = caption.encode()
    if cond.vae is not None or cond.image_encoder is not None:
        files.update(_conditioning(row, source, params, cond))
    return {"key": row["clip_id"], "files": files}


def _export_hash(params: ExportParams, rows: list[dict], chosen: list, cond: Conditioners) -> str:
    """Identifies an export: parameters, clips, their chosen captions and the conditioning models' kinds."""
    text = json.dumps([params.__dict__, [r["clip_id"] for r in rows], chosen,
                       [type(cond.vae).__name__ if cond.vae else None,
                        type(cond.image_encoder).__name__ if cond.image_encoder else None]], default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def export_dataset(root, out_dir, params: ExportParams | None = None, sampler: CaptionSampler | None = None,
                   conditioners: Conditioners | None = None, fmt: str = "auto", progress: bool = True,
                   overwrite: bool = False) -> dict:
    """Writes the shards of the manifest folder `root` into `out_dir`. sampler: picks each sample's caption
    (default: the paper's 0.5/0.25/0.25 over the clip's caption_<role> columns; a clip with none of them raises);
    sampler=False exports without captions. Returns {"samples", "shards", "skipped_shards", "index"}."""
    from .. import __version__
    from .filters import joined_rows
    from .manifest import read_table
    from .stages import read_any_table, write_table

    params = params or ExportParams()
    params.validate()
    cond = conditioners or Conditioners()
    if cond.vae is not None and params.latent_size is None:
        raise ValueError("latent_size: a VAE for precomputed latents needs latent_size=(height, width)")
    rows = joined_rows(root)
    if not rows:
        raise ValueError(f"manifest: {os.fspath(root)!r} has no clips to export")
    if params.kept_only:
        decisions = {d["clip_id"]: d["keep"] for d in read_any_table(root, "decisions")}
        rows = [r for r in rows if decisions.get(r["clip_id"], False)]
        if not rows:
            raise ValueError("decisions: the filters keep no clip; nothing to export")
    rows.sort(key=lambda r: r["clip_id"])
    sampler = CaptionSampler(seed=params.caption_seed) if sampler is None else sampler
    chosen = []
    for r in rows:  # every caption is decided before any file is written
        if sampler is False:
            chosen.append((None, None))
            continue
        caps = {k[len("caption_"):]: v for k, v in r.items() if k.startswith("caption_") and isinstance(v, str)}
        chosen.append(sampler.sample(r["clip_id"], caps))
    paths = {v["video_id"]: v["path"] for v in read_table(root, "videos")}

    os.makedirs(out_dir, exist_ok=True)
    phash = _export_hash(params, rows, chosen, cond)
    meta_path = os.path.join(out_dir, "_export.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            old = json.load(f).get("params_hash")
        if old != phash:
            if not overwrite:
                raise FileExistsError(f"out_dir: {out_dir!r} holds an export with other parameters or clips "
                                      f"(params_hash {old} vs {phash}); use a new folder or overwrite=True")
            for name in os.listdir(out_dir):
                if name.endswith(".tar"):
                    os.remove(os.path.join(out_dir, name))
    with open(meta_path + ".partial", "w") as f:
        json.dump({"params_hash": phash, "params": params.__dict__, "samples": len(rows)}, f, default=list)
    os.replace(meta_path + ".partial", meta_path)

    from tqdm import tqdm

    index, written, skipped = [], 0, 0
    groups = [list(range(i, min(i + params.shard_size, len(rows)))) for i in range(0, len(rows), params.shard_size)]
    scratch = tempfile.mkdtemp(prefix=".clips-", dir=out_dir)
    try:
        for shard, members in enumerate(tqdm(groups, unit="shard", desc="export", disable=not progress)):
            name = f"{shard:05d}.tar"
            path = os.path.join(out_dir, name)
            for i in members:
                r = rows[i]
                index.append({"key": r["clip_id"], "shard": name, "clip_id": r["clip_id"], "video_id": r["video_id"],
                              "caption": chosen[i][1], "caption_role": chosen[i][0],
                              **{k: r.get(k) for k in ("duration", "fps", "motion", "motion_bucket_id", "aesthetic",
                                                       "clip_sim", "text_ratio")},
                              "svdc_version": __version__, "params_hash": phash, "stage": "export"})
            if os.path.isfile(path):
                skipped += 1
                continue
            _write_shard(path, (_sample(rows[i], chosen[i], paths[rows[i]["video_id"]], scratch, params, cond)
                                for i in members))
            written += 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = write_table(out_dir, "index", index, fmt)
    return {"samples": len(rows), "shards": written, "skipped_shards": skipped, "index": str(table)}
