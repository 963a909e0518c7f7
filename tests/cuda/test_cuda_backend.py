"""CUDA backend: runs only where a GPU is usable (skips with the reason elsewhere, e.g. in CI)."""
import pytest

import svdc
from svdc import runtime

_CUDA_COUNT, _CUDA_REASON = runtime._cuda_status()
pytestmark = pytest.mark.skipif(_CUDA_COUNT == 0, reason=f"no usable CUDA device: cuda {_CUDA_REASON}")


def test_devices_list_cuda():
    assert "cuda:0" in svdc.devices()
    assert runtime.resolve_device("cuda") == "cuda:0"


def test_info_passes_cuda():
    assert svdc.info()["backends"]["cuda"].startswith("PASS")
