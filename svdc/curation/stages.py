"""Storage of the later curation stages (quality scores, filter decisions, export index) next to Curation I's
tables in the manifest folder: per-video parts under <stage>_parts/ written atomically (a rerun skips the videos
whose part has the same params hash, like `curate run`), and tables as Parquet or JSON Lines."""
from __future__ import annotations

import json
from pathlib import Path

from .manifest import _atomic_write, _write_parquet, part_json, resolve_format

__all__ = ["StageParts", "write_table", "read_any_table"]


class StageParts:
    def __init__(self, root, stage: str):
        self.root = Path(root)
        self.stage = stage
        self.folder = self.root / f"{stage}_parts"
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, vid: str) -> Path:
        return self.folder / f"{vid}.json"

    def finished(self, vid: str, params_hash: str) -> bool:
        try:
            return json.loads(self.path(vid).read_text()).get("params_hash") == params_hash
        except (OSError, ValueError):
            return False  # absent or unreadable: redo the video

    def write(self, vid: str, params_hash: str, rows: list[dict]) -> None:
        text = part_json({"params_hash": params_hash, "rows": rows})
        _atomic_write(self.path(vid), lambda p: p.write_text(text))

    def rows(self, vids) -> list[dict]:
        out = []
        for vid in vids:
            if self.path(vid).is_file():
                out.extend(json.loads(self.path(vid).read_text())["rows"])
        return out


def write_table(root, name: str, rows: list[dict], fmt: str = "auto") -> Path:
    """rows -> <root>/<name>.parquet (or .jsonl), replacing the other format's file so one table has one file."""
    fmt = resolve_format(fmt)
    root = Path(root)
    ext, other = ("parquet", "jsonl") if fmt == "parquet" else ("jsonl", "parquet")
    path = root / f"{name}.{ext}"
    if fmt == "parquet":
        _atomic_write(path, lambda p: _write_parquet(p, rows))
    else:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        _atomic_write(path, lambda p: p.write_text(text))
    (root / f"{name}.{other}").unlink(missing_ok=True)
    return path


def read_any_table(root, name: str) -> list[dict]:
    """Rows of <root>/<name>.parquet or .jsonl; FileNotFoundError naming the stage that writes it otherwise."""
    root = Path(root)
    if (root / f"{name}.parquet").is_file():
        import pyarrow.parquet as pq

        return pq.read_table(root / f"{name}.parquet").to_pylist()
    path = root / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"manifest: no {name}.parquet or {name}.jsonl in {str(root)!r} (run the stage that "
                                f"writes it first)")
    return [json.loads(line) for line in path.read_text().splitlines() if line]
