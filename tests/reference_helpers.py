"""Parity helpers shared by the test folders: DESIGN.md's tolerance, perturbed random weights and float32 state dicts.
Imported by name (`from tests.reference_helpers import ...`), never as `conftest`: several test folders have a conftest.py
and the name would resolve to whichever was imported first."""
from __future__ import annotations

import numpy as np


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
