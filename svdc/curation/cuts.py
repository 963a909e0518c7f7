"""Cascaded cut detection on one decoding pass (the SVD paper's "cut detectors at three frame rates, each with its own
threshold"). Level 0 runs at native fps and finds hard cuts; coarse levels compare frames k apart (k = fps / level
fps, all phases, taken from the same plane stream) and find gradual transitions with a twin-comparison test and a
contrast test.

Level 0, frame i (the first frame of the new shot) is a hard cut when its perceptual-hash or frame-difference jump
stands out from the median of its neighbours (so camera motion, which raises every frame's score, does not fire) and
it is not a flash: a flash is a jump whose frames return to the pre-jump frame within `flash_frames`.

Coarse level k, window [i-k, i] holds no hard cut or flash, and is a gradual candidate by either of two tests:
- twin comparison: its endpoints differ (colour histograms by at least the level's threshold, or perceptual hashes
  by `gradual_hash`), its frame difference accumulates consistently (endpoint difference / summed per-frame
  differences >= `linearity`, i.e. a blend rather than motion) and no single step dominates;
- contrast: its endpoints show different content (perceptual hashes by `contrast_hash`) and its change stands out
  from both neighbouring windows' ([i-2k, i-k] and [i, i+k]): endpoint frame difference by `contrast_ratio`, or
  histogram distance by `contrast_hist_ratio` (and at least `contrast_hist`). The picture changed more in this
  window than just before and just after it. This needs no large colour change and no linear accumulation, so it
  finds dissolves between shots of alike colours or next to fast motion, and wipes (whose changed band moves: every
  step differs only in a band), while motion at a steady speed, which changes every window alike, does not fire.
Runs of candidates form transition intervals. A short run of uniform black or white frames between textured ones is a
fade's hold and forms one too (fades from dark shots change too little per step for the twin test). Intervals of all
levels that overlap or lie within `merge_gap_frames`, or that touch one uniform run, merge into one transition,
reported at the centre of its window with the largest histogram distance."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .signals import SignalSeries


def _median_filter_excluding_centre(x: np.ndarray, w: int) -> np.ndarray:
    """For each i, the median of x[i-w..i-1] and x[i+1..i+w] (clipped at the ends; NaN ignored)."""
    n = len(x)
    pad = np.concatenate([np.full(w, np.nan), x, np.full(w, np.nan)])
    # windows of 2w+1 around each i -> (n, 2w+1); drop the centre column
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)
    win = np.delete(win, w, axis=1)
    with np.errstate(all="ignore"):
        out = np.nanmedian(win, axis=1) if n else np.zeros(0)
    return np.nan_to_num(out, nan=0.0)


@dataclass
class CutParams:
    """All thresholds of the cascade (defaults chosen on the development half of benchmarks/curation's set)."""
    levels_fps: tuple = (8.0, 4.0, 2.0)  # coarse levels, frames per second
    hist_thresholds: tuple = (0.30, 0.30, 0.30)  # per coarse level: endpoint histogram distance (0..1)
    gradual_hash: float = 0.5  # or instead: endpoint perceptual-hash distance (0..1; unrelated frames ~0.5)
    gradual_hash_min_hist: float = 0.15  # ... with at least this histogram distance
    persist_hash: float = 0.35  # a transition's outside frames differ by this hash distance or the histogram one
    linearity: float = 0.55  # endpoint difference / accumulated per-frame difference, per window
    max_step_fraction: float = 0.6  # largest single step / endpoint difference inside a gradual window
    min_gradual_pixel: float = 4.0  # endpoint frame difference (0..255) a gradual window needs
    contrast_hash: float = 0.25  # contrast test: endpoint perceptual-hash distance (0..1) ...
    contrast_ratio: float = 1.15  # ... and frame difference >= this x both neighbouring windows' (0 = test off)
    contrast_hist: float = 0.12  # ... or histogram distance >= this ...
    contrast_hist_ratio: float = 1.5  # ... and >= this x both neighbouring windows'
    hash_jump: float = 0.25  # level 0: hash distance above the neighbours' median
    hash_min: float = 0.30  # level 0: absolute hash distance
    pixel_jump_ratio: float = 3.0  # level 0: frame difference / neighbours' median
    pixel_min: float = 12.0  # level 0: absolute frame difference (0..255)
    neighbourhood: int = 4  # level 0: neighbours on each side for the medians
    flash_frames: int = 3  # a jump that returns to the pre-jump frame within this many frames is a flash
    flash_return: float = 0.5  # ... "returns" = difference to the pre-jump frame below this fraction of the jump
    uniform_std: float = 3.0  # luma spread below which a frame is uniform (black/white)
    max_fade_hold_seconds: float = 2.0  # a uniform run up to this long between textured frames is a fade's hold
    black_luma: float = 40.0  # ... when its mean luma (limited range: black 16, white 235) is below this
    white_luma: float = 210.0  # ... or above this
    hash_min_std: float = 8.0  # level 0 uses the hash only between frames with at least this luma spread
    min_gap_frames: int = 8  # hard cuts closer than this merge (the stronger one stays)
    merge_gap_frames: int = 4  # transition intervals closer than this merge

    def validate(self) -> None:
        if not isinstance(self.levels_fps, (tuple, list)):
            raise TypeError(f"levels_fps: expected a tuple of numbers, got {type(self.levels_fps).__name__}")
        if len(self.hist_thresholds) != len(self.levels_fps):
            raise ValueError(f"hist_thresholds: expected one per level ({len(self.levels_fps)}), got "
                             f"{len(self.hist_thresholds)}")
        for name, seq in (("levels_fps", self.levels_fps), ("hist_thresholds", self.hist_thresholds)):
            for v in seq:
                if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise ValueError(f"{name}: expected finite numbers > 0, got {v!r} in {tuple(seq)!r}")
        for name, v in asdict(self).items():
            if name in ("levels_fps", "hist_thresholds"):
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
        if self.neighbourhood < 1 or self.flash_frames < 1:
            raise ValueError(f"neighbourhood and flash_frames: expected >= 1, got {self.neighbourhood} and "
                             f"{self.flash_frames}")

    def steps(self, fps: float) -> list[int]:
        """Frame step of each coarse level at this frame rate (at least 2)."""
        return [max(2, int(round(fps / f))) for f in self.levels_fps]

    def lags(self, fps: float) -> list[int]:
        return sorted({1, *range(2, self.flash_frames + 2), *self.steps(fps)})


@dataclass
class Cut:
    frame: int  # first frame of the new shot (hard) or the transition's reported frame (gradual)
    time: float
    level: int  # 0 = native fps; 1.. = coarse levels in CutParams.levels_fps order
    kind: str  # "hard" or "gradual"
    score: float  # hard: the signal over its threshold (>= 1); gradual: histogram distance over the level threshold
    start: int = -1  # gradual: first and last frame of the transition interval; hard: the cut frame
    end: int = -1
    levels: list = field(default_factory=list)  # every level that fired for this transition

    def to_row(self) -> dict:
        return asdict(self)


def detect_hard_cuts(s: SignalSeries, p: CutParams) -> tuple[list[tuple[int, float]], np.ndarray]:
    """(frame, score) of level-0 cuts, and a mask of the frames found to be flashed."""
    q = np.nan_to_num(s.phash[1])
    d = np.nan_to_num(s.pixel[1])
    n = len(q)
    q_med = _median_filter_excluding_centre(q, p.neighbourhood)
    d_med = _median_filter_excluding_centre(d, p.neighbourhood)
    # the hash of a near-uniform frame (inside a fade) is noise: only trust it between textured frames
    textured = s.luma_std >= p.hash_min_std
    textured_pair = textured & np.concatenate([[False], textured[:-1]])
    by_hash = (q >= p.hash_min) & (q - q_med >= p.hash_jump) & textured_pair
    by_pixel = (d >= p.pixel_min) & (d >= p.pixel_jump_ratio * np.maximum(d_med, 0.5))
    score = np.maximum(q / max(p.hash_min, 1e-6), d / max(p.pixel_min, 1e-6))
    found = []
    flashed = np.zeros(n, bool)
    for i in np.flatnonzero(by_hash | by_pixel):
        if i == 0:
            continue
        span = _flash_span(s, i, d[i], p)
        if span is not None:
            # b included: the picture is back near the pre-flash frame there, but a decaying flash still shows in it
            flashed[span[0] + 1:span[1] + 1] = True
            continue
        found.append((int(i), float(score[i])))
    return _suppress_close(found, p.min_gap_frames), flashed


def _flash_span(s: SignalSeries, i: int, jump: float, p: CutParams) -> tuple[int, int] | None:
    """(a, b) when frames a < i <= b at most flash_frames + 1 apart are alike (difference below flash_return * the
    jump at i): the picture came back, so the jump at i is the onset or the end of a flash, not a cut."""
    n = s.num_frames
    for lag in range(2, p.flash_frames + 2):
        for b in range(i, min(n, i + lag)):
            if b - lag >= 0 and s.pixel[lag][b] < p.flash_return * jump:
                return b - lag, b
    return None


def _suppress_close(found: list[tuple[int, float]], gap: int) -> list[tuple[int, float]]:
    """Keeps the strongest of detections closer than `gap` frames."""
    kept: list[tuple[int, float]] = []
    for i, sc in sorted(found, key=lambda t: -t[1]):
        if all(abs(i - j) >= gap for j, _ in kept):
            kept.append((i, sc))
    return sorted(kept)


def detect_gradual(s: SignalSeries, p: CutParams, fps: float, hard: list[int], flashed: np.ndarray) -> list[dict]:
    """Transition intervals of the coarse levels, merged: dicts with start, end (every frame a firing window
    touched), core_start, core_end (the firing windows' centres), frame, score, levels."""
    d1 = np.nan_to_num(s.pixel[1])
    n = len(d1)
    hard_mask = np.zeros(n + 1, bool)
    hard_mask[hard] = True
    hard_mask[:n] |= flashed  # windows holding a cut or a flash are no blends
    intervals = []
    for level, (k, thr) in enumerate(zip(p.steps(fps), p.hist_thresholds), start=1):
        if k >= n:
            continue
        hk = np.nan_to_num(s.hist[k])
        dk = np.nan_to_num(s.pixel[k])
        qk = np.nan_to_num(s.phash[k])
        csum = np.concatenate([[0.0], np.cumsum(d1)])
        acc = np.zeros(n)
        acc[k:] = csum[k + 1:] - csum[1:n - k + 1]  # sum of d1[i-k+1..i]
        step = np.zeros(n)
        win = np.lib.stride_tricks.sliding_window_view(d1, k)  # (n-k+1, k): d1[j..j+k-1]
        step[k - 1:] = win.max(axis=1)
        hcount = np.concatenate([[0], np.cumsum(hard_mask[:n])])
        has_hard = np.zeros(n, bool)
        has_hard[k:] = (hcount[k + 1:] - hcount[1:n - k + 1]) > 0  # a marked frame in i-k+1..i
        with np.errstate(all="ignore"):
            endpoints_differ = (hk >= thr) | ((qk >= p.gradual_hash) & (hk >= p.gradual_hash_min_hist))
            twin = endpoints_differ & (dk >= p.linearity * acc) & (step <= p.max_step_fraction * dk)
            # the window's change stands out from the windows just before and just after it, in frame difference
            # or in colour
            stands_out = ((dk >= p.contrast_ratio * _neighbour_windows_max(dk, k))
                          | ((hk >= p.contrast_hist) & (hk >= p.contrast_hist_ratio * _neighbour_windows_max(hk, k))))
            contrast = (p.contrast_ratio > 0) & (qk >= p.contrast_hash) & stands_out
            ok = (twin | contrast) & (dk >= p.min_gradual_pixel) & ~has_hard
        ok[:k] = False
        for a, b in _runs(ok):
            best = a + int(np.argmax(hk[a:b + 1]))
            intervals.append({"start": a - k, "end": b, "core_start": a - k // 2, "core_end": b - k // 2,
                              "frame": best - k // 2, "score": float(hk[best] / thr), "levels": [level]})
    uniform = s.luma_std < p.uniform_std
    steps = p.steps(fps)
    reach = max(steps) if steps else 0
    if reach:
        # a short uniform run between textured frames is the hold of a fade through black or white, however
        # dark the shots around it (the twin test can miss a fade from a dark shot: its steps are at noise level)
        longest = max(1, int(round(p.max_fade_hold_seconds * fps)))
        black_or_white = (s.luma_mean < p.black_luma) | (s.luma_mean > p.white_luma)
        for a, b in _runs(uniform & black_or_white & ~flashed):
            if 0 < a and b < n - 1 and b - a + 1 <= longest:
                intervals.append({"start": a - reach, "end": b + reach, "core_start": a - reach // 2,
                                  "core_end": b + reach // 2, "frame": (a + b) // 2, "score": 1.0,
                                  "levels": [len(steps)]})
    return _merge(intervals, uniform, p.merge_gap_frames)


def _neighbour_windows_max(x: np.ndarray, k: int) -> np.ndarray:
    """For x indexed by window end i (window [i-k, i]): max(x[i-k], x[i+k]), the windows [i-2k, i-k] and [i, i+k];
    inf where either is missing (no contrast can be measured there)."""
    n = len(x)
    out = np.full(n, np.inf)
    if 3 * k < n:
        out[2 * k:n - k] = np.maximum(x[k:n - 2 * k], x[3 * k:])
    return out


def _runs(mask: np.ndarray):
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[0::2], edges[1::2] - 1))


def _merge(intervals: list[dict], uniform: np.ndarray, gap: int) -> list[dict]:
    """Merges intervals whose cores overlap or lie within `gap` frames of each other, whose frames overlap by two or
    more, or that both touch one uniform run (the two halves of a fade through black or white)."""
    for a, b in _runs(uniform):
        # a uniform run only joins transitions; on its own it is a still dark/bright shot, not an event
        touching = [iv for iv in intervals if iv["start"] - gap <= b and iv["end"] + gap >= a]
        if len(touching) >= 2:
            for iv in touching:
                iv["start"], iv["end"] = min(iv["start"], a), max(iv["end"], b)
                iv["core_start"], iv["core_end"] = min(iv["core_start"], a), max(iv["core_end"], b)
            # the run's middle frame is the fade's centre: report it
            best = max(touching, key=lambda iv: iv["score"])
            best["frame"] = (a + b) // 2
            best["score"] += 1e-9  # stays the representative below
    merged: list[dict] = []
    for iv in sorted(intervals, key=lambda iv: iv["core_start"]):
        # cores within `gap`, or windows sharing more than an end frame (a window's end frames are shot frames, which
        # two transitions back to back may share)
        if merged and (iv["core_start"] <= merged[-1]["core_end"] + gap or iv["start"] <= merged[-1]["end"] - 2):
            m = merged[-1]
            if iv["score"] > m["score"]:
                m["frame"], m["score"] = iv["frame"], iv["score"]
            m["start"], m["end"] = min(m["start"], iv["start"]), max(m["end"], iv["end"])
            m["core_end"] = max(m["core_end"], iv["core_end"])
            m["levels"] = sorted(set(m["levels"]) | set(iv["levels"]))
        else:
            merged.append(dict(iv))
    return merged


def detect_cuts(s: SignalSeries, fps: float, times: np.ndarray, params: CutParams | None = None) -> list[Cut]:
    """The cascade over one video's signals; `times` are the frames' timestamps in seconds."""
    p = params or CutParams()
    p.validate()
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: expected a finite number > 0, got {fps!r}")
    missing = set(p.lags(fps)) - set(s.lags)
    if missing:
        raise ValueError(f"signals: lags {sorted(missing)} missing (computed {list(s.lags)}); compute with "
                         f"CutParams.lags(fps)")
    hard, flashed = detect_hard_cuts(s, p)
    cuts = [Cut(frame=i, time=float(times[i]), level=0, kind="hard", score=sc, start=i, end=i, levels=[0])
            for i, sc in hard]
    n = s.num_frames
    thr = min(p.hist_thresholds) if p.hist_thresholds else math.inf
    for g in detect_gradual(s, p, fps, [i for i, _ in hard], flashed):
        start, end = max(0, g["start"]), min(n - 1, g["end"])
        # the scene must change: the frames just outside the transition differ like the windows' endpoints did
        # (a flash, or a fade out and back into the same shot, leaves them alike)
        before, after = max(0, start - 1), min(n - 1, end + 1)
        if s.hist_distance(before, after) < thr and s.hash_distance(before, after) < p.persist_hash:
            continue
        frame = min(max(g["frame"], start), end)
        cuts.append(Cut(frame=int(frame), time=float(times[frame]), level=min(g["levels"]), kind="gradual",
                        score=g["score"], start=int(start), end=int(end), levels=[int(x) for x in g["levels"]]))
    return sorted(cuts, key=lambda c: c.frame)
