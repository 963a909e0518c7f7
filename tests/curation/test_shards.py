"""Dataset export: webdataset-style shards read back with the standard library (every sample complete, the clip
decodes), the index, precomputed conditioning, resuming, a failed export leaving no partial shard under its final
name, and the 0.5/0.25/0.25 caption sampler."""
from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
import pytest

from svdc.curation.captions import CaptionSampler
from svdc.curation.shards import Conditioners, ExportParams, export_dataset
from svdc.curation.filters import FilterRule, filter_manifest
from svdc.curation.scores import ScoreParams, score_manifest
from svdc.curation.stages import read_any_table


def _scored_and_filtered(m):
    """Captions from the demo's file (no CLIP model needed for that), then drop the 25 % least moving clips."""
    score_manifest(m["root"], ScoreParams(captions=m["captions"]), progress=False)
    return filter_manifest(m["root"], [FilterRule("motion", drop_lowest=0.25)], plots=False)


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_shards_read_back_complete(manifest_copy, tmp_path):
    import av

    m = manifest_copy
    report = _scored_and_filtered(m)
    out = tmp_path / "shards"
    stats = export_dataset(m["root"], out, ExportParams(shard_size=2), progress=False)
    assert stats["samples"] == report["kept"] and stats["shards"] == -(-report["kept"] // 2)
    shards = sorted(p for p in os.listdir(out) if p.endswith(".tar"))
    assert shards == [f"{i:05d}.tar" for i in range(stats["shards"])]
    assert not [p for p in os.listdir(out) if "partial" in p or p.startswith(".clips")]
    index = {r["key"]: r for r in read_any_table(out, "index")}
    kept = {d["clip_id"] for d in read_any_table(m["root"], "decisions") if d["keep"]}
    assert set(index) == kept
    clips = {c["clip_id"]: c for c in read_any_table(m["root"], "quality")}
    seen = set()
    for shard in shards:
        files = _members(out / shard)
        keys = {name.split(".")[0] for name in files}
        for key in keys:
            assert {f"{key}.mp4", f"{key}.json", f"{key}.txt"} <= set(files)  # every sample complete
            meta = json.loads(files[f"{key}.json"])
            assert meta["clip_id"] == key and index[key]["shard"] == shard
            assert files[f"{key}.txt"].decode() == meta["caption"] == clips[key][f"caption_{meta['caption_role']}"]
            with av.open(io.BytesIO(files[f"{key}.mp4"])) as video:
                n = sum(1 for _ in video.decode(video=0))
            assert n == meta["end_frame"] - meta["start_frame"] + 1
        seen |= keys
    assert seen == kept
    # resumable: a rerun with the same parameters writes nothing new
    again = export_dataset(m["root"], out, ExportParams(shard_size=2), progress=False)
    assert again["shards"] == 0 and again["skipped_shards"] == stats["shards"]
    with pytest.raises(FileExistsError, match="other parameters"):
        export_dataset(m["root"], out, ExportParams(shard_size=3), progress=False)


def test_failed_export_leaves_no_partial_shard(manifest_copy, tmp_path, monkeypatch):
    import svdc.curation.clips as clips_module

    m = manifest_copy
    _scored_and_filtered(m)
    real = clips_module.export
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first clip of the second shard
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(clips_module, "export", failing)
    out = tmp_path / "shards"
    with pytest.raises(OSError, match="simulated"):
        export_dataset(m["root"], out, ExportParams(shard_size=2), progress=False)
    names = os.listdir(out)
    assert "00000.tar" in names and "00001.tar" not in names
    assert not [n for n in names if "partial" in n or n.startswith(".clips")]
    assert len(_members(out / "00000.tar")) >= 2 * 3  # complete: mp4 + json + txt per sample
    monkeypatch.setattr(clips_module, "export", real)
    resumed = export_dataset(m["root"], out, ExportParams(shard_size=2), progress=False)
    assert resumed["skipped_shards"] == 1 and resumed["shards"] >= 1


def test_precomputed_conditioning(manifest_copy, tmp_path):
    from svdc.tiny import tiny_components

    m = manifest_copy
    _scored_and_filtered(m)
    _, vae, encoder = tiny_components(device="cpu")
    out = tmp_path / "shards"
    export_dataset(m["root"], out, ExportParams(shard_size=10, latent_size=(64, 64)),
                   conditioners=Conditioners(vae=vae, image_encoder=encoder), progress=False)
    files = _members(out / "00000.tar")
    key = sorted(n for n in files if n.endswith(".mp4"))[0][:-4]
    latent = np.load(io.BytesIO(files[f"{key}.latent.npy"]))
    embedding = np.load(io.BytesIO(files[f"{key}.clip_embedding.npy"]))
    assert latent.shape == (4, 8, 8) and np.all(np.isfinite(latent))
    assert embedding.shape == (encoder.config["projection_dim"],) and np.all(np.isfinite(embedding))
    with pytest.raises(ValueError, match="latent_size"):
        export_dataset(m["root"], tmp_path / "x", ExportParams(), conditioners=Conditioners(vae=vae), progress=False)


def test_missing_captions_at_export(manifest_copy, tmp_path):
    m = manifest_copy
    filter_manifest(m["root"], [FilterRule("motion", drop_lowest=0.25)], plots=False)  # no captions scored
    with pytest.raises(ValueError, match=r"captions of clip .* expected at least one of"):
        export_dataset(m["root"], tmp_path / "s", progress=False)
    assert not os.path.exists(tmp_path / "s")  # decided before anything is written
    stats = export_dataset(m["root"], tmp_path / "s", sampler=False, progress=False)
    assert stats["samples"] > 0


def test_caption_sampler_weights():
    sampler = CaptionSampler(seed=3)
    caps = {"image": "i", "video": "v", "summary": "s"}
    roles = [sampler.sample(f"clip{i}", caps)[0] for i in range(8000)]
    freq = {r: roles.count(r) / len(roles) for r in caps}
    assert freq["image"] == pytest.approx(0.5, abs=0.02)
    assert freq["video"] == pytest.approx(0.25, abs=0.02) and freq["summary"] == pytest.approx(0.25, abs=0.02)
    assert sampler.sample("clip7", caps) == CaptionSampler(seed=3).sample("clip7", caps)  # reproducible
    # a clip without a video caption: image 2/3, summary 1/3
    roles = [sampler.sample(f"c{i}", {"image": "i", "summary": "s"})[0] for i in range(6000)]
    assert roles.count("image") / 6000 == pytest.approx(2 / 3, abs=0.02)
    with pytest.raises(ValueError, match="weights"):
        CaptionSampler({"image": -1})
