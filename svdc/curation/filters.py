"""Filters over per-clip scores: absolute thresholds (min / max) and percentile cuts (drop the lowest or highest
fraction), each rule judged on the whole set and combined with AND, as the SVD paper applies its calibrated
filters together. Returns a keep mask, the reasons per clip and a report (removal fraction per rule and overall, a
funnel in rule order, histograms); `filter_manifest` writes them into the manifest folder, with PNG plots when
matplotlib is installed. The paper's final cuts are `SVD_RULES` (motion 25 %, aesthetics 25 %, CLIP similarity
50 %, OCR text 25 %); App. C's absolute OCR rule is `FilterRule("text_ratio", max=0.07)`."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["FilterRule", "FilterResult", "SVD_RULES", "apply_filters", "filter_manifest", "plot_report"]


@dataclass(frozen=True)
class FilterRule:
    """Keep a clip when min <= score <= max (absolute) and it is not among the `drop_lowest` / `drop_highest`
    fraction of the clips by that score (percentile; ties broken by clip_id, so exactly round(fraction * n) go)."""

    score: str
    min: float | None = None
    max: float | None = None
    drop_lowest: float | None = None
    drop_highest: float | None = None

    def validate(self) -> None:
        if not isinstance(self.score, str) or not self.score:
            raise ValueError(f"score: expected a column name, got {self.score!r}")
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ValueError(f"{self.score} {name}: expected a finite number, got {v!r}")
        for name in ("drop_lowest", "drop_highest"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{self.score} {name}: expected a fraction in [0, 1), got {v!r}")
        if self.min is None and self.max is None and self.drop_lowest is None and self.drop_highest is None:
            raise ValueError(f"{self.score}: a rule needs min, max, drop_lowest or drop_highest")

    @property
    def name(self) -> str:
        parts = [f">={self.min:g}" if self.min is not None else "", f"<={self.max:g}" if self.max is not None else "",
                 f" drop lowest {self.drop_lowest:.0%}" if self.drop_lowest else "",
                 f" drop highest {self.drop_highest:.0%}" if self.drop_highest else ""]
        return self.score + "".join(p for p in parts if p)


SVD_RULES = (FilterRule("motion", drop_lowest=0.25), FilterRule("aesthetic", drop_lowest=0.25),
             FilterRule("clip_sim", drop_lowest=0.5), FilterRule("text_ratio", drop_highest=0.25))


@dataclass
class FilterResult:
    keep: np.ndarray  # (N,) bool
    reasons: list  # per clip: names of the rules that removed it
    report: dict


def _values(rows: list[dict], score: str) -> np.ndarray:
    """The column as float64, None -> NaN; a column no clip has raises ValueError (a typo, or a stage not run)."""
    if not any(score in r for r in rows):
        have = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "keep"})
        raise ValueError(f"score: no clip has a {score!r} column (numeric columns: {have})")
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        v = r.get(score)
        out[i] = np.nan if v is None or isinstance(v, bool) else float(v)
    return out


def _percentile_mask(values: np.ndarray, ids: list[str], fraction: float, lowest: bool) -> np.ndarray:
    """True for the round(fraction * n) finite values at the chosen end (ties by id)."""
    finite = np.flatnonzero(np.isfinite(values))
    k = int(round(fraction * len(finite)))
    order = sorted(finite, key=lambda i: ((values[i] if lowest else -values[i]), ids[i]))
    mask = np.zeros(len(values), bool)
    mask[order[:k]] = True
    return mask


def apply_filters(rows: list[dict], rules, on_missing: str = "raise", bins: int = 20) -> FilterResult:
    """rows: one dict per clip with "clip_id" and the score columns. on_missing: what a NaN / absent score does:
    "raise" (ValueError naming the clips), "drop" (the rule removes the clip) or "keep" (the rule passes it)."""
    if on_missing not in ("raise", "drop", "keep"):
        raise ValueError(f"on_missing: expected 'raise', 'drop' or 'keep', got {on_missing!r}")
    rules = list(rules)
    if not rows:
        raise ValueError("rows: the manifest has no clips to filter")
    if not rules:
        raise ValueError("rules: expected at least one FilterRule, got none")
    for r in rules:
        if not isinstance(r, FilterRule):
            raise TypeError(f"rules: expected FilterRule objects, got {type(r).__name__}")
        r.validate()
    ids = [str(r["clip_id"]) for r in rows]
    n = len(rows)
    removed_by = []
    report_rules = []
    for rule in rules:
        values = _values(rows, rule.score)
        missing = ~np.isfinite(values)
        if missing.any() and on_missing == "raise":
            bad = [ids[i] for i in np.flatnonzero(missing)[:5]]
            raise ValueError(f"{rule.score}: {int(missing.sum())} clip(s) have no finite value (e.g. {bad}); pass "
                             f"on_missing='drop' or 'keep' to decide what happens to them")
        with np.errstate(invalid="ignore"):
            out = np.zeros(n, bool)
            if rule.min is not None:
                out |= values < rule.min
            if rule.max is not None:
                out |= values > rule.max
        cuts = {}
        for name, lowest in (("drop_lowest", True), ("drop_highest", False)):
            fraction = getattr(rule, name)
            if fraction:
                mask = _percentile_mask(values, ids, fraction, lowest)
                out |= mask
                if mask.any():
                    cuts[name + "_cut_value"] = float(values[mask].max() if lowest else values[mask].min())
        if on_missing == "drop":
            out |= missing
        removed_by.append(out)
        report_rules.append({"name": rule.name, **asdict(rule), "removed": int(out.sum()),
                             "removed_fraction": float(out.mean()), "missing": int(missing.sum()), **cuts})
    removed = np.stack(removed_by)  # (rules, N)
    keep = ~removed.any(axis=0)
    reasons = [[rules[k].name for k in np.flatnonzero(removed[:, i])] for i in range(n)]
    funnel, alive = [{"after": "all clips", "kept": n}], np.ones(n, bool)
    for rule, out in zip(rules, removed_by):
        alive &= ~out
        funnel.append({"after": rule.name, "kept": int(alive.sum())})
    report = {"clips": n, "kept": int(keep.sum()), "removed_fraction": float(1 - keep.mean()),
              "rules": report_rules, "funnel": funnel,
              "histograms": {s: _histogram(_values(rows, s), keep, bins)
                             for s in dict.fromkeys(r.score for r in rules)}}
    return FilterResult(keep, reasons, report)


def _histogram(values: np.ndarray, keep: np.ndarray, bins: int) -> dict:
    finite = np.isfinite(values)
    if not finite.any():
        return {"edges": [], "counts": [], "kept_counts": [], "missing": int((~finite).sum())}
    edges = np.histogram_bin_edges(values[finite], bins=bins)
    return {"edges": edges.tolist(), "counts": np.histogram(values[finite], edges)[0].tolist(),
            "kept_counts": np.histogram(values[finite & keep], edges)[0].tolist(), "missing": int((~finite).sum())}


def plot_report(report: dict, folder) -> list[str]:
    """PNG plots of a report (one histogram per score, all vs kept, and the funnel) -> paths; [] without
    matplotlib (an optional dependency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(folder, exist_ok=True)
    paths = []
    for score, h in report["histograms"].items():
        if not h["edges"]:
            continue
        fig, ax = plt.subplots(figsize=(5, 3))
        edges = np.asarray(h["edges"])
        ax.stairs(h["counts"], edges, fill=True, alpha=0.4, label="all")
        ax.stairs(h["kept_counts"], edges, fill=True, alpha=0.7, label="kept")
        ax.set_xlabel(score)
        ax.set_ylabel("clips")
        ax.legend()
        fig.tight_layout()
        paths.append(os.path.join(folder, f"hist_{score}.png"))
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f["after"] for f in report["funnel"]]
    ax.barh(labels[::-1], [f["kept"] for f in report["funnel"]][::-1])
    ax.set_xlabel("clips kept")
    fig.tight_layout()
    paths.append(os.path.join(folder, "funnel.png"))
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return paths


def joined_rows(root) -> list[dict]:
    """Every clip of a manifest with its Curation I scores (motion, ...) and its quality scores, by clip_id."""
    from .manifest import read_table
    from .stages import read_any_table

    clips = read_table(root, "clips")
    scores = {r["clip_id"]: r for r in read_table(root, "scores")}
    try:
        quality = {r["clip_id"]: r for r in read_any_table(root, "quality")}
    except FileNotFoundError:
        quality = {}  # filters on motion alone need no `curate score`
    drop = ("svdc_version", "params_hash", "stage")
    out = []
    for c in clips:
        row = dict(c)
        for extra in (scores.get(c["clip_id"], {}), quality.get(c["clip_id"], {})):
            row.update({k: v for k, v in extra.items() if k not in drop})
        out.append(row)
    return out


def filter_manifest(root, rules=SVD_RULES, on_missing: str = "raise", fmt: str = "auto", plots: bool = True) -> dict:
    """Filters the clips of the manifest folder `root`: writes the `decisions` table (clip_id, video_id, keep,
    reasons), filter_report.json and, with matplotlib, filter_plots/*.png. Returns the report."""
    from .. import __version__
    from .stages import write_table

    rows = joined_rows(root)
    result = apply_filters(rows, rules, on_missing)
    phash = _rules_hash(rules, on_missing)
    decisions = [{"clip_id": r["clip_id"], "video_id": r["video_id"], "keep": bool(k), "reasons": why,
                  "svdc_version": __version__, "params_hash": phash, "stage": "filter"}
                 for r, k, why in zip(rows, result.keep, result.reasons)]
    report = {**result.report, "params_hash": phash}
    write_table(root, "decisions", decisions, fmt)
    report["plots"] = plot_report(report, os.path.join(root, "filter_plots")) if plots else []
    tmp = os.path.join(root, ".filter_report.json.partial")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, os.path.join(root, "filter_report.json"))
    return report


def _rules_hash(rules, on_missing: str) -> str:
    import hashlib

    text = json.dumps([[asdict(r) for r in rules], on_missing], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
