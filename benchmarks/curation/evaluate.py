"""Scores predicted shot boundaries against the labels written by generate.py, with the matching rules of
PySceneDetect's benchmark evaluator: gradual transitions first, by point-in-interval (the interval widened by the
tolerance; the first prediction inside matches, later ones in the same interval are false positives), then hard cuts
greedily 1-to-1, nearest pair first, within the tolerance; counts summed over videos (micro-average).

A prediction is a frame index: the first frame of the new shot (hard cuts) or any frame of a transition."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    hard_tp: int = 0
    hard_total: int = 0
    gradual_tp: int = 0
    gradual_total: int = 0
    gradual_duplicates: int = 0  # extra predictions inside an already matched transition
    predictions: int = 0
    false_positives: int = 0
    trap_false_positives: int = 0  # unmatched predictions inside a flash or fast-pan trap
    by_type: dict = field(default_factory=dict)  # gradual type -> [found, total]

    def add(self, other: "Counts") -> None:
        for name in ("hard_tp", "hard_total", "gradual_tp", "gradual_total", "gradual_duplicates", "predictions",
                     "false_positives", "trap_false_positives"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, (f, t) in other.by_type.items():
            a = self.by_type.setdefault(k, [0, 0])
            a[0] += f
            a[1] += t

    @staticmethod
    def _f1(p, r):
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> dict:
        tp = self.hard_tp + self.gradual_tp
        events = self.hard_total + self.gradual_total
        p = tp / self.predictions if self.predictions else 0.0
        r = tp / events if events else 0.0
        hard_pred = self.predictions - self.gradual_tp - self.gradual_duplicates  # the pool left for hard cuts
        hp = self.hard_tp / hard_pred if hard_pred else 0.0
        hr = self.hard_tp / self.hard_total if self.hard_total else 0.0
        gr = self.gradual_tp / self.gradual_total if self.gradual_total else 0.0
        return {"precision": 100 * p, "recall": 100 * r, "f1": 100 * self._f1(p, r),
                "hard_precision": 100 * hp, "hard_recall": 100 * hr, "hard_f1": 100 * self._f1(hp, hr),
                "gradual_recall": 100 * gr, "false_positives": self.false_positives,
                "trap_false_positives": self.trap_false_positives}


def score_video(labels: dict, predictions, tolerance: int = 1) -> Counts:
    preds = sorted(int(p) for p in predictions)
    c = Counts(hard_total=len(labels["cuts"]), gradual_total=len(labels["gradual"]), predictions=len(preds))
    pool = list(preds)
    for g in labels["gradual"]:
        lo, hi = g["start"] - tolerance, g["end"] + tolerance
        inside = [p for p in pool if lo <= p <= hi]
        entry = c.by_type.setdefault(g["type"], [0, 0])
        entry[1] += 1
        if inside:
            c.gradual_tp += 1
            entry[0] += 1
            c.gradual_duplicates += len(inside) - 1
            for p in inside:
                pool.remove(p)
    # hard cuts: all (cut, prediction) pairs within the tolerance, nearest first, each used once
    pairs = sorted((abs(p - t), t, p) for t in labels["cuts"] for p in pool if abs(p - t) <= tolerance)
    used_t, used_p = set(), set()
    for _, t, p in pairs:
        if t in used_t or p in used_p:
            continue
        used_t.add(t)
        used_p.add(p)
    c.hard_tp = len(used_t)
    unmatched = [p for p in pool if p not in used_p]
    c.false_positives = len(unmatched) + c.gradual_duplicates
    traps = labels.get("traps", [])
    c.trap_false_positives = sum(any(t["start"] <= p <= t["end"] + 1 for t in traps) for p in unmatched)
    return c
