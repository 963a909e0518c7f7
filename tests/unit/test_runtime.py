"""Device choice: 'auto' falls back to the CPU, an explicit CUDA request without a usable GPU raises with the reason,
and malformed device strings are refused by name."""
import warnings

import pytest

import svdc
from svdc import runtime


def test_cpu_resolves_to_cpu():
    assert runtime.resolve_device("cpu") == "cpu"
    assert runtime.resolve_device(" CPU ") == "cpu"


def test_auto_picks_a_working_device():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        chosen = runtime.resolve_device("auto")
    assert chosen in svdc.devices()


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cuda:-1", "tpu:0", ""])
def test_malformed_device_is_refused(bad):
    with pytest.raises(ValueError, match="device"):
        runtime.resolve_device(bad)


def test_non_string_device_is_refused():
    with pytest.raises(TypeError, match="device"):
        runtime.resolve_device(0)


def test_explicit_cuda_without_gpu_raises_with_reason():
    if len(svdc.devices()) > 1:
        pytest.skip("a CUDA device is present on this machine")
    with pytest.raises(svdc.DeviceUnavailableError, match="cuda"):
        runtime.resolve_device("cuda")


def test_info_names_a_reason_for_cuda():
    status = svdc.info()["backends"]["cuda"]
    assert status.startswith("PASS") or (status.startswith("FAIL:") and len(status) > len("FAIL: "))
