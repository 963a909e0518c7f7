"""Shared test helpers: the parity tolerance of DESIGN.md, random-weight reference models with every parameter
perturbed (so no zero-initialised path hides a bug), and saving them as diffusers folders."""
from __future__ import annotations

import os

import numpy as np
import pytest

# The reference runs on the CPU; keep torch from fighting svdc's OpenMP threads for the 2 cores of CI.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def assert_parity(actual: np.ndarray, reference, rel: float = 1e-4, what: str = "output"):
    """DESIGN.md's component bound: max |svdc - ref| <= rel * max |ref|, with shapes equal."""
    ref = reference.detach().cpu().numpy() if hasattr(reference, "detach") else np.asarray(reference)
    actual = np.asarray(actual)
    assert actual.shape == ref.shape, f"{what}: svdc shape {actual.shape} != reference shape {ref.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: svdc output has non-finite values"
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(actual.astype(np.float64) - ref.astype(np.float64))))
    assert scale > 0, f"{what}: the reference is all zeros, the comparison would prove nothing"
    assert err <= rel * scale, f"{what}: max|svdc-ref| = {err:.3e} > {rel:g} * max|ref| = {rel * scale:.3e}"
    return err / scale


def perturb_parameters(module, seed: int = 0, scale: float = 0.05):
    """Adds N(0, scale * (std + 0.1)) noise to every parameter in place, including zero-initialised ones such as
    conv_out, the mix factors and norm biases, so every path contributes to the output."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            std = float(p.float().std()) if p.numel() > 1 else 0.0
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale * (std + 0.1))
    return module


def state_dict_float32(module) -> dict[str, np.ndarray]:
    """The module's weights as float32 NumPy arrays under their diffusers/transformers names."""
    return {k: v.detach().cpu().float().contiguous().numpy() for k, v in module.state_dict().items()}


@pytest.fixture
def torch_cpu():
    """torch, seeded and limited to the CPU threads CI has."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise  # parity tests must run in CI, never skip there
        pytest.skip("torch (CPU) is a test dependency: pip install -e '.[test]'")
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return torch
