"""Elo ratings from pairwise human-preference votes, as the SVD paper calibrates its filter thresholds (App. E.1):
expected score E_a = 1 / (1 + 10^((R_b - R_a) / 400)), update R += K (S - E) with K = 1 and R0 = 1000, and the
ranking bootstrapped over 1000 random orderings of the games (the result depends on the order; the spread over
orderings gives the confidence interval). A vote is a win (S = 1 / 0) or a tie (S = 0.5 each)."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["EloResult", "elo_ratings", "read_votes"]


@dataclass
class EloResult:
    models: list  # names, best first
    mean: np.ndarray  # (M,) mean rating over the orderings
    low: np.ndarray  # (M,) lower bound of the interval
    high: np.ndarray  # (M,) upper bound
    samples: np.ndarray  # (B, M) final ratings per ordering, columns in `models` order

    def rows(self) -> list[dict]:
        return [{"rank": i + 1, "model": m, "elo": float(self.mean[i]), "low": float(self.low[i]),
                 "high": float(self.high[i])} for i, m in enumerate(self.models)]


def read_votes(path) -> list[tuple[str, str, float]]:
    """A CSV with a header: model_a, model_b, winner (winner: "a", "b", "tie", or the winning model's name) ->
    [(model_a, model_b, score of a)]."""
    path = os.fspath(path)
    votes = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"model_a", "model_b", "winner"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected the columns {sorted(need)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, 2):
            a, b, w = row["model_a"].strip(), row["model_b"].strip(), row["winner"].strip()
            if not a or not b or a == b:
                raise ValueError(f"{path}:{line}: expected two different models, got {a!r} and {b!r}")
            score = {"a": 1.0, a: 1.0, "b": 0.0, b: 0.0, "tie": 0.5}.get(w)
            if score is None:
                raise ValueError(f"{path}:{line}: winner: expected 'a', 'b', 'tie', {a!r} or {b!r}, got {w!r}")
            votes.append((a, b, score))
    if not votes:
        raise ValueError(f"{path}: no votes")
    return votes


def elo_ratings(votes, k: float = 1.0, initial: float = 1000.0, orderings: int = 1000, seed: int = 0,
                interval: float = 0.95) -> EloResult:
    """votes: [(model_a, model_b, score of a in {0, 0.5, 1})]. Runs the Elo updates over `orderings` random
    permutations of the votes at once (vectorised over the orderings) and reports the mean and the central
    `interval` of each model's final rating."""
    votes = list(votes)
    if not votes:
        raise ValueError("votes: expected at least one vote, got none")
    if not (isinstance(orderings, int) and orderings >= 1):
        raise ValueError(f"orderings: expected an int >= 1, got {orderings!r}")
    if not (0 < interval < 1):
        raise ValueError(f"interval: expected a fraction in (0, 1), got {interval!r}")
    names = sorted({m for a, b, _ in votes for m in (a, b)})
    index = {m: i for i, m in enumerate(names)}
    a = np.array([index[v[0]] for v in votes])
    b = np.array([index[v[1]] for v in votes])
    s = np.array([float(v[2]) for v in votes])
    if not np.all(np.isin(s, (0.0, 0.5, 1.0))):
        raise ValueError("votes: the score of model_a must be 0, 0.5 or 1")
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(len(votes)) for _ in range(orderings)])  # (B, G) game order per ordering
    ratings = np.full((orderings, len(names)), float(initial))  # (B, M)
    rows = np.arange(orderings)
    for t in range(len(votes)):
        g = order[:, t]  # (B,) the game played at step t in each ordering
        ia, ib = a[g], b[g]
        ra, rb = ratings[rows, ia], ratings[rows, ib]
        expected = 1.0 / (1.0 + 10.0 ** ((rb - ra) / 400.0))
        delta = k * (s[g] - expected)
        ratings[rows, ia] = ra + delta
        ratings[rows, ib] = rb - delta
    mean = ratings.mean(axis=0)
    tail = (1 - interval) / 2 * 100
    low, high = np.percentile(ratings, [tail, 100 - tail], axis=0)
    best = np.argsort(-mean, kind="stable")
    return EloResult([names[i] for i in best], mean[best], low[best], high[best], ratings[:, best])
