"""The device=/dtype= arguments of the _ops test surface on the CPU: an explicit dtype stages the call through the
backend's arena (copies in, convert, op, convert back, copy out) and must give the direct result; the CPU refuses
fp16/bf16; bad arguments and impossible allocations raise clear errors. (tests/cuda runs the same surface on a GPU.)"""
import numpy as np
import pytest

import svdc
from svdc import runtime
from svdc._native import testing_ops as load_testing_ops

_ops = load_testing_ops()


def test_staged_cpu_call_equals_the_direct_one():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((5, 7), (3, 7), (3,)))
    np.testing.assert_array_equal(_ops.linear(x, w, b, device="cpu", dtype="fp32"), _ops.linear(x, w, b))
    np.testing.assert_array_equal(_ops.linear(x, w, device="cpu", dtype=("fp32",) * 4), _ops.linear(x, w))
    a = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    ref = _ops.group_norm(a, 2, silu=True)
    out = _ops.group_norm(a, 2, silu=True, out=a, dtype="fp32")  # in place through the staging
    assert out is a
    np.testing.assert_array_equal(a, ref)


def test_cpu_refuses_half_precision():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"linear: x has dtype float16, expected float32"):
        _ops.linear(x, x, dtype="fp16")
    with pytest.raises(svdc.ShapeError, match=r"add: a has dtype bfloat16, expected float32"):
        _ops.add(x, x, device="cpu", dtype="bf16")


def test_bad_device_and_dtype_arguments():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"device: expected 'cpu', 'emu\[:N\]' or 'cuda\[:N\]', got 'gpu'"):
        _ops.add(x, x, device="gpu")
    with pytest.raises(TypeError, match=r"device: expected"):
        _ops.add(x, x, device=0)
    with pytest.raises(ValueError, match=r"dtype: expected 'fp32', 'fp16' or 'bf16', got 'fp8'"):
        _ops.add(x, x, dtype="fp8")
    with pytest.raises(ValueError, match=r"dtype: expected 3 entries \(one per input, then the output\), got 2"):
        _ops.add(x, x, dtype=("fp32", "fp32"))
    with pytest.raises(ValueError, match=r"convert: dtype= does not apply"):
        _ops.convert(x, "f16", dtype="fp16")


def test_cuda_without_a_gpu_is_refused():
    count, reason = runtime._cuda_status()  # registers the CUDA backend when svdc._C_cuda imports
    if count:
        pytest.skip("a GPU is present: tests/cuda covers it")
    with pytest.raises(svdc.DeviceUnavailableError, match=r"cuda"):
        _ops.add(np.ones(3, np.float32), np.ones(3, np.float32), device="cuda")


def test_impossible_allocation_raises_memory_error():
    with pytest.raises(MemoryError, match=r"could not allocate \d+ bytes on cpu device -1"):
        _ops.arena_alloc(1 << 55)
    _ops.arena_alloc(1 << 20)
