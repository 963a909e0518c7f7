"""Per-frame signals for cut detection, computed from the small planes of one decoding pass: for every frame i and
every lag L in a set (1 for hard cuts, 2..4 for the flash test, the coarse cascade steps), distances between frame
i-L and frame i — a YUV frame difference, a colour-histogram distance and a perceptual-hash distance — plus mean and
spread of luma (uniform black/white frames in fades). Frames are buffered in chunks and processed with vectorised
NumPy and C (frame differences, histograms with luma mean and spread), keeping only the last max(lag) frames
between chunks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._native import _C

HIST_SHIFT_Y, HIST_SHIFT_C = 3, 4  # histogram bins: 256 >> shift = 32 for Y, 16 for U and V
HASH_SIZE = 8  # the low-frequency DCT block of the perceptual hash is HASH_SIZE x HASH_SIZE


def _dct_rows(n: int, k: int) -> np.ndarray:
    """The first k rows of the orthonormal DCT-II matrix of size n: (k, n)."""
    x = np.arange(n)
    rows = np.cos(np.pi * (2 * x[None, :] + 1) * np.arange(k)[:, None] / (2 * n))
    rows[0] *= 1 / np.sqrt(2)
    return (rows * np.sqrt(2 / n)).astype(np.float32)


@dataclass
class SignalSeries:
    """All per-frame signals of one video. Arrays indexed by frame; distances at lag L are NaN for i < L."""
    lags: tuple[int, ...]
    pixel: dict[int, np.ndarray]  # mean |Δ| over Y, U, V (0..255), averaged over the three planes
    hist: dict[int, np.ndarray]  # half L1 distance of Y/U/V histograms (0..1)
    phash: dict[int, np.ndarray]  # Hamming distance of 64-bit DCT hashes / 64 (0..1)
    luma_mean: np.ndarray
    luma_std: np.ndarray
    histograms: np.ndarray  # (N, 64) float32: every frame's Y/U/V histograms, to compare any two frames later
    hashes: np.ndarray  # (N, 8) uint8: every frame's 64-bit perceptual hash, packed

    def hist_distance(self, a: int, b: int) -> float:
        return float(np.abs(self.histograms[a] - self.histograms[b]).sum() / 6)

    def hash_distance(self, a: int, b: int) -> float:
        return float(np.unpackbits(self.hashes[a] ^ self.hashes[b]).sum() / 64)

    @property
    def num_frames(self) -> int:
        return len(self.luma_mean)


class SignalAccumulator:
    """Feed SmallFrame planes with `add(y, u, v)`; `finish()` returns the SignalSeries."""

    def __init__(self, lags, chunk: int = 256):
        lags = tuple(sorted(set(int(x) for x in lags)))
        if not lags or lags[0] < 1:
            raise ValueError(f"lags: expected positive integers, got {lags!r}")
        self.lags, self.chunk = lags, chunk
        self.history = max(lags)
        self._y, self._u, self._v = [], [], []
        self._prev = None  # (features of the last `history` frames) carried between chunks
        self._out = {name: {L: [] for L in lags} for name in ("pixel", "hist", "phash")}
        self._mean, self._std, self._hist, self._bits = [], [], [], []
        self._dct = None
        self._count = 0

    def add(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        self._y.append(y)
        self._u.append(u)
        self._v.append(v)
        if len(self._y) >= self.chunk:
            self._flush()

    def _features(self, y, u, v) -> dict:
        """Per-frame features of a chunk: y (N, h, w), u/v (N, hc, wc) uint8."""
        n, h, w = y.shape
        # histograms of Y (32 bins) and U, V (16 bins), each summing to 1, with luma mean and spread, in C -> (N, 64)
        hy, mean, std = _C._plane_histograms(y, HIST_SHIFT_Y)
        hu = _C._plane_histograms(u, HIST_SHIFT_C)[0]
        hv = _C._plane_histograms(v, HIST_SHIFT_C)[0]
        hist = np.concatenate([hy, hu, hv], axis=1)
        # perceptual hash: low-frequency DCT block of luma, thresholded at its median (DC excluded) -> (N, 64) bool
        if self._dct is None or self._dct[0].shape[1] != h or self._dct[1].shape[1] != w:
            self._dct = (_dct_rows(h, HASH_SIZE), _dct_rows(w, HASH_SIZE))
        dr, dc = self._dct
        # (8, h) @ (N, h, w) @ (w, 8) -> (N, 8, 8) -> (N, 64)
        coef = (np.matmul(dr, y.astype(np.float32)) @ dc.T).reshape(n, -1)
        bits = coef > np.median(coef[:, 1:], axis=1, keepdims=True)
        return {"y": y, "u": u, "v": v, "hist": hist, "bits": bits, "mean": mean, "std": std}

    def _flush(self) -> None:
        if not self._y:
            return
        y, u, v = np.stack(self._y), np.stack(self._u), np.stack(self._v)
        self._y, self._u, self._v = [], [], []
        feats = self._features(y, u, v)
        self._mean.append(feats.pop("mean"))
        self._std.append(feats.pop("std"))
        self._hist.append(feats["hist"])
        self._bits.append(np.packbits(feats["bits"], axis=1))
        if self._prev is not None:  # prepend the carried history: index k of `all_` is frame (start - hist + k)
            all_ = {k: np.concatenate([self._prev[k], feats[k]]) for k in feats}
        else:
            all_ = feats
        n_new = len(y)
        offset = len(all_["y"]) - n_new  # rows of history in front of the new frames
        for L in self.lags:
            out = {name: np.full(n_new, np.nan, np.float32) for name in self._out}
            first = max(0, L - offset)  # new frames with a partner L frames back
            if first < n_new:
                cur = slice(offset + first, offset + n_new)
                ref = slice(offset + first - L, offset + n_new - L)
                def mad_u8(a):  # frame differences of the uint8 planes in C: rows offset+first .. offset+n_new-1
                    return _C._plane_lag_mad(all_[a][offset + first - L:], L)
                out["pixel"][first:] = (mad_u8("y") + mad_u8("u") + mad_u8("v")) / 3
                out["hist"][first:] = np.abs(all_["hist"][cur] - all_["hist"][ref]).sum(axis=1) / 6
                out["phash"][first:] = (all_["bits"][cur] != all_["bits"][ref]).mean(axis=1)
            for name in self._out:
                self._out[name][L].append(out[name])
        self._prev = {k: a[-self.history:] for k, a in all_.items()}
        self._count += n_new

    def finish(self) -> SignalSeries:
        """All signals; also keeps each frame's histogram and packed hash (264 bytes a frame)."""
        self._flush()
        def cat(parts):
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return SignalSeries(
            lags=self.lags,
            pixel={L: cat(p) for L, p in self._out["pixel"].items()},
            hist={L: cat(p) for L, p in self._out["hist"].items()},
            phash={L: cat(p) for L, p in self._out["phash"].items()},
            luma_mean=cat(self._mean), luma_std=cat(self._std),
            histograms=np.concatenate(self._hist) if self._hist else np.zeros((0, 64), np.float32),
            hashes=np.concatenate(self._bits) if self._bits else np.zeros((0, 8), np.uint8))
