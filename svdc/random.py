"""svdc.Generator: seeded normal noise equal to torch.randn(..., generator=torch.Generator("cpu").manual_seed(seed)),
drawn by the C core (csrc/core/rng.c), so a seed gives the same video as diffusers without torch."""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from ._native import _C

Shape = Union[int, Sequence[int]]

# The seeds a Generator takes (torch's manual_seed range): an int in SEED_MIN..SEED_MAX.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


class Generator:
    """A torch-compatible CPU random stream. Successive ``randn`` calls continue the stream exactly as successive
    ``torch.randn(..., generator=g)`` calls on one ``torch.Generator`` do."""

    def __init__(self, seed: int = 0):
        self._seed_check(seed)
        self._gen = _C.Generator(int(seed))

    @staticmethod
    def _seed_check(seed) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__} {seed!r:.60}")
        if not SEED_MIN <= int(seed) <= SEED_MAX:
            raise ValueError(f"seed: expected an int in [-2**63, 2**64), got {seed}")

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed`` (like torch.Generator.manual_seed); returns self."""
        self._seed_check(seed)
        self._gen.manual_seed(int(seed))
        return self

    def initial_seed(self) -> int:
        return self._gen.initial_seed()

    def randn(self, *shape) -> np.ndarray:
        """Standard normal float32 array of ``shape`` (``randn(2, 3)`` or ``randn((2, 3))``)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            try:
                shape = tuple(shape[0])
            except TypeError:
                raise ValueError(f"shape: expected an int or a sequence of ints, got {shape[0]!r}") from None
        dims = []
        for d in shape:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or int(d) < 0:
                raise ValueError(f"shape: expected non-negative ints, got {tuple(shape)}")
            dims.append(int(d))
        return self._gen.randn(tuple(dims))

    def __repr__(self) -> str:
        return f"svdc.Generator(seed={self.initial_seed()})"
