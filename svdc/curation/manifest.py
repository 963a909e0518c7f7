"""The curation manifest: a folder with one table per stage (videos, cuts, clips, scores) as Parquet (pyarrow) or,
without pyarrow, JSON Lines. Each finished video first lands as its own part file (parts/<video_id>.json, written
atomically), so a killed run loses at most the videos in flight; the tables are rebuilt from the parts, in a fixed
order, so a resumed run writes the same manifest as an uninterrupted one."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

TABLES = ("videos", "cuts", "clips", "scores")


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_format(fmt: str) -> str:
    if fmt not in ("auto", "parquet", "jsonl"):
        raise ValueError(f"format: expected 'auto', 'parquet' or 'jsonl', got {fmt!r}")
    if fmt == "auto":
        return "parquet" if _have_pyarrow() else "jsonl"
    if fmt == "parquet" and not _have_pyarrow():
        raise ImportError("format='parquet' needs pyarrow: pip install 'svdc[curation]' (or use format='jsonl')")
    return fmt


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    write(tmp)
    os.replace(tmp, path)


def _json_safe(value):
    """NaN/inf -> None (JSON has no NaN); containers recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def part_json(rows: dict) -> str:
    """JSON text with sorted keys and NaN/inf as null: the text of a part file (svdc.runner's stages write their
    outputs, Curation I's parts included, with the same rules: svdc.runner.stage.output_json)."""
    return json.dumps(_json_safe(rows), sort_keys=True)


class Manifest:
    def __init__(self, root, fmt: str = "auto"):
        self.root = Path(root)
        self.format = resolve_format(fmt)
        self.parts = self.root / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def part_path(self, vid: str) -> Path:
        return self.parts / f"{vid}.json"

    def finished(self, vid: str, params_hash: str) -> bool:
        """True when this video has a part written with these parameters."""
        path = self.part_path(vid)
        if not path.is_file():
            return False
        try:
            rows = json.loads(path.read_text())
        except (OSError, ValueError):
            return False  # unreadable part: redo the video
        return rows.get("videos", [{}])[0].get("params_hash") == params_hash

    def rows(self, vids) -> dict[str, list[dict]]:
        """All tables' rows of the given videos, in the order given (missing parts are skipped)."""
        out = {t: [] for t in TABLES}
        for vid in vids:
            path = self.part_path(vid)
            if path.is_file():
                part = json.loads(path.read_text())
                for t in TABLES:
                    out[t].extend(part.get(t, []))
        return out

    def write_tables(self, vids) -> dict[str, Path]:
        """Rebuilds every table from the parts of `vids` (sorted by video id, so input order does not matter)."""
        rows = self.rows(sorted(set(vids)))
        written = {}
        for table in TABLES:
            ext = "parquet" if self.format == "parquet" else "jsonl"
            path = self.root / f"{table}.{ext}"
            if self.format == "parquet":
                _atomic_write(path, lambda p, r=rows[table]: _write_parquet(p, r))
            else:
                text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows[table])
                _atomic_write(path, lambda p, t=text: p.write_text(t))
            written[table] = path
        return written


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = sorted({k for r in rows for k in r})
    table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]) if rows else pa.table({})
    pq.write_table(table, path)


def read_table(root, table: str) -> list[dict]:
    """The rows of one table of a manifest folder (Parquet or JSON Lines, whichever is there)."""
    if table not in TABLES:
        raise ValueError(f"table: expected one of {TABLES}, got {table!r}")
    root = Path(root)
    if (root / f"{table}.parquet").is_file():
        import pyarrow.parquet as pq

        return pq.read_table(root / f"{table}.parquet").to_pylist()
    path = root / f"{table}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"root: no {table}.parquet or {table}.jsonl in {str(root)!r}")
    return [json.loads(line) for line in path.read_text().splitlines() if line]
