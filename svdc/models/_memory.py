"""What a model holds beyond its weight block, and giving it back between uses (the pipelines' stage release)."""
from __future__ import annotations


class ReleasableMemory:
    """Mixin for the model wrappers (self._native is an svdc._C model object)."""

    def release_memory(self, keep_packed: bool = False) -> None:
        """Gives back, until the next call, what this model holds beyond its own weight block: its activation
        arena, this process's resident pages of the weights it borrows from a checkpoint's mapping (they stay in
        the page cache; the next call faults them back in as it reads them) and, unless keep_packed, the packed
        weights (SVDC_PREPACK; made by the first call, and by the next call again after a release: the same
        results, at the cost of the packing; `packed_weight_bytes` says how much that holds). Weights converted
        into the block at load (another storage dtype, computed tensors) stay."""
        self._native.release_memory(keep_packed=bool(keep_packed))

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weight table (borrowed file pages or the model's own block)."""
        return int(self._native.weight_bytes)

    @property
    def packed_weight_bytes(self) -> int:
        """Bytes of the packed weights (SVDC_PREPACK): 0 until the first call and after release_memory() until the
        next call."""
        return int(self._native.packed_weight_bytes)
