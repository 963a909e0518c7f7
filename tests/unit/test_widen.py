"""The CPU's float16/bfloat16 -> float32 widening (kernels/cpu/widen.c, the whole cost of 16-bit weight storage on the
CPU) is exact for every one of the 65536 bit patterns of each format: subnormals, signed zeros, Inf, NaN payloads."""
import numpy as np

from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()

ALL = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def test_float16_widening_is_exact_for_every_value():
    out = ops.convert(ALL.view(np.float16), "f32").view(np.uint32)
    expected = ALL.view(np.float16).astype(np.float32).view(np.uint32).copy()
    magnitude = ALL.astype(np.uint32) & 0x7FFF
    nan = magnitude > 0x7C00  # NumPy may quiet NaNs; svdc keeps the payload: sign | 0x7f800000 | m << 13
    expected[nan] = ((ALL[nan].astype(np.uint32) & 0x8000) << 16) | 0x7F800000 | ((magnitude[nan] & 0x3FF) << 13)
    assert np.count_nonzero(out != expected) == 0


def test_bfloat16_widening_is_exact_for_every_value():
    out = ops.convert(ALL, "f32").view(np.uint32)  # uint16 arrays hold bfloat16 bits
    assert np.array_equal(out, ALL.astype(np.uint32) << 16)


def test_widening_inside_a_large_parallel_run_equals_the_small_one():
    x = np.tile(ALL, 5).view(np.float16)  # > 2^16 elements: the OpenMP path
    np.testing.assert_array_equal(ops.convert(x, "f32").view(np.uint32)[: 1 << 16],
                                  ops.convert(ALL.view(np.float16), "f32").view(np.uint32))
