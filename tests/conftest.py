"""Shared fixtures (torch on the CPU). The parity helpers (tolerance, perturbed weights) live in
reference_helpers.py."""
from __future__ import annotations

import os

import pytest

# The reference runs on the CPU; keep torch from fighting svdc's OpenMP threads for the 2 cores of CI.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
