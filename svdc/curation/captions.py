"""Caption hooks and the training-time caption sampler. The SVD paper gives each clip three synthetic captions: an
image captioner on the middle frame (CoCa), a video captioner (V-BLIP) and an LLM summary of the two; training
picks one at random with p = 0.5 / 0.25 / 0.25. svdc bundles no captioning model: a `Captioner` is a user plugin,
and captions can also come from a file (`read_captions`). Roles here: "image", "video", "summary"."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Captioner", "CaptionSampler", "SVD_CAPTION_WEIGHTS", "read_captions"]

# The paper's sampling weights (App. E.2.2): CoCa (image) 0.5, V-BLIP (video) 0.25, LLM summary 0.25.
SVD_CAPTION_WEIGHTS = {"image": 0.5, "video": 0.25, "summary": 0.25}


@runtime_checkable
class Captioner(Protocol):
    """`name`: the caption's key in the manifest (e.g. "image"). `__call__(frames, captions)`: frames are the
    clip's first, middle and last RGB frames (3, H, W, 3) uint8 (an image captioner uses frames[1]); captions
    holds the captions made so far for this clip (a summariser reads them). Returns one string."""

    name: str

    def __call__(self, frames: np.ndarray, captions: dict[str, str]) -> str: ...


def read_captions(path) -> dict[str, dict[str, str]]:
    """A JSON Lines file, one object per clip or per video: {"clip_id" or "video_id": ..., "captions": {role: text}}
    -> {id: {role: text}} (a video's captions apply to each of its clips that has none of its own)."""
    path = os.fspath(path)
    out: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{number}: not JSON: {e}") from None
            key = row.get("clip_id") or row.get("video_id") if isinstance(row, dict) else None
            caps = row.get("captions") if isinstance(row, dict) else None
            if not key or not isinstance(caps, dict) or not all(isinstance(v, str) for v in caps.values()):
                raise ValueError(f"{path}:{number}: expected {{\"clip_id\" or \"video_id\": ..., \"captions\": "
                                 f"{{role: text}}}}, got {line.strip()[:120]!r}")
            out.setdefault(str(key), {}).update(caps)
    return out


class CaptionSampler:
    """Picks one caption per clip with the given role weights, renormalised over the roles the clip has. The draw
    depends only on (seed, clip_id), so an export is reproducible and independent of the clip order."""

    def __init__(self, weights: dict[str, float] | None = None, seed: int = 0):
        weights = dict(SVD_CAPTION_WEIGHTS if weights is None else weights)
        if not weights or any(not (isinstance(w, (int, float)) and np.isfinite(w) and w >= 0)
                              for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"weights: expected role -> weight >= 0 with a positive sum, got {weights!r}")
        self.weights = weights
        self.seed = int(seed)

    def sample(self, clip_id: str, captions: dict[str, str]) -> tuple[str, str]:
        """-> (role, text). A clip without any weighted caption raises ValueError naming it."""
        roles = [r for r in self.weights if self.weights[r] > 0 and captions.get(r)]
        if not roles:
            raise ValueError(f"captions of clip {clip_id!r}: expected at least one of {sorted(self.weights)}, got "
                             f"{sorted(k for k, v in captions.items() if v) or 'none'}")
        p = np.array([self.weights[r] for r in roles], np.float64)
        digest = hashlib.sha256(f"{self.seed}:{clip_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "little") / 2.0 ** 64  # uniform in [0, 1)
        k = int(np.searchsorted(np.cumsum(p / p.sum()), u, side="right"))
        role = roles[min(k, len(roles) - 1)]
        return role, captions[role]
