"""Filters on a synthetic score table (percentile cuts remove exactly the requested fractions, absolute thresholds,
the combined AND, the report, NaN handling) and Elo on synthetic votes with a known ordering."""
from __future__ import annotations

import numpy as np
import pytest

from svdc.curation.elo import elo_ratings, read_votes
from svdc.curation.filters import SVD_RULES, FilterRule, apply_filters


def _rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return [{"clip_id": f"c{i:04d}", "motion": float(rng.gamma(2.0)), "aesthetic": float(rng.normal(5, 1)),
             "clip_sim": float(rng.uniform(0.1, 0.4)), "text_ratio": float(rng.uniform(0, 0.2) * (i % 3 == 0))}
            for i in range(n)]


def test_percentiles_remove_exact_fractions():
    rows = _rows()
    result = apply_filters(rows, SVD_RULES)
    removed = {r["score"]: r["removed"] for r in result.report["rules"]}
    # text_ratio: two thirds are exactly 0; ties at the cut are broken by clip_id, so still exactly 25 %
    assert removed == {"motion": 50, "aesthetic": 50, "clip_sim": 100, "text_ratio": 50}
    motion = np.array([r["motion"] for r in rows])
    gone = np.array(["motion drop lowest 25%" in why for why in result.reasons])
    assert motion[gone].max() < motion[~gone].min()  # the 50 lowest, not any 50
    text = np.array([r["text_ratio"] for r in rows])
    gone_text = np.array(["text_ratio drop highest 25%" in why for why in result.reasons])
    assert text[gone_text].min() >= text[~gone_text].max()
    # combined: a clip is kept iff no rule removed it; report and funnel agree
    assert np.array_equal(result.keep, np.array([not why for why in result.reasons]))
    assert result.report["kept"] == int(result.keep.sum())
    assert result.report["funnel"][-1]["kept"] == result.report["kept"]
    assert result.report["removed_fraction"] == pytest.approx(1 - result.keep.mean())
    assert sum(result.report["histograms"]["motion"]["counts"]) == 200


def test_absolute_thresholds_and_combination():
    rows = _rows(50)
    result = apply_filters(rows, [FilterRule("text_ratio", max=0.07), FilterRule("aesthetic", min=5.0)])
    expected = np.array([r["text_ratio"] <= 0.07 and r["aesthetic"] >= 5.0 for r in rows])
    assert np.array_equal(result.keep, expected)


def test_nan_scores():
    rows = _rows(40)
    rows[3]["motion"] = float("nan")
    rows[7]["motion"] = None
    with pytest.raises(ValueError, match=r"motion: 2 clip\(s\) have no finite value.*c0003"):
        apply_filters(rows, [FilterRule("motion", drop_lowest=0.25)])
    dropped = apply_filters(rows, [FilterRule("motion", drop_lowest=0.25)], on_missing="drop")
    assert not dropped.keep[3] and not dropped.keep[7]
    assert dropped.report["rules"][0]["removed"] == 2 + round(0.25 * 38)
    kept = apply_filters(rows, [FilterRule("motion", drop_lowest=0.25)], on_missing="keep")
    assert kept.keep[3] and kept.keep[7] and kept.report["rules"][0]["removed"] == round(0.25 * 38)


def test_bad_rules_and_empty_input():
    with pytest.raises(ValueError, match="no clips"):
        apply_filters([], SVD_RULES)
    with pytest.raises(ValueError, match="no clip has a 'aesthetc' column"):
        apply_filters(_rows(5), [FilterRule("aesthetc", min=1)])
    with pytest.raises(ValueError, match=r"drop_lowest: expected a fraction in \[0, 1\)"):
        apply_filters(_rows(5), [FilterRule("motion", drop_lowest=1.5)])


def test_elo_recovers_known_ordering(tmp_path):
    strengths = {"unfiltered": 0.0, "drop12": 150.0, "drop25": 300.0, "drop50": 450.0}  # true Elo-scale gaps
    rng = np.random.default_rng(0)
    names = list(strengths)
    lines = ["model_a,model_b,winner"]
    for _ in range(1500):
        a, b = rng.choice(names, 2, replace=False)
        p_a = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
        u = rng.uniform()
        winner = "tie" if abs(u - p_a) < 0.03 else ("a" if u < p_a else b)  # both spellings of a win
        lines.append(f"{a},{b},{winner}")
    (tmp_path / "votes.csv").write_text("\n".join(lines) + "\n")
    votes = read_votes(tmp_path / "votes.csv")
    result = elo_ratings(votes, orderings=1000, seed=1)
    assert result.models == ["drop50", "drop25", "drop12", "unfiltered"]
    assert result.samples.shape == (1000, 4)
    assert np.all(result.low <= result.mean) and np.all(result.mean <= result.high)
    assert np.all(np.diff(result.mean) < 0)
    # Elo is zero-sum: the mean rating stays at R0 = 1000
    assert result.mean.mean() == pytest.approx(1000.0)


def test_elo_single_update_by_hand():
    result = elo_ratings([("x", "y", 1.0)], orderings=3)
    # E = 1/2 at equal ratings; K = 1 -> +0.5 / -0.5
    assert dict(zip(result.models, result.mean)) == {"x": 1000.5, "y": 999.5}


def test_bad_votes(tmp_path):
    (tmp_path / "v.csv").write_text("model_a,model_b,winner\nx,y,maybe\n")
    with pytest.raises(ValueError, match="winner: expected 'a', 'b', 'tie'"):
        read_votes(tmp_path / "v.csv")
    (tmp_path / "w.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected the columns"):
        read_votes(tmp_path / "w.csv")
