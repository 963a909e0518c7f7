"""The ops that take weights accept float16/bfloat16 weights with float32 activations on the CPU and on the emulated
device (csrc/core/ops.c, widen_weights): the result equals the float32 op on the widened weights bit for bit, and on a
device each 16-bit weight operand costs exactly one convert call. 16-bit activations stay refused on the CPU."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()
rng = np.random.default_rng(0)


def rounded(a, dtype):
    """`a` rounded to `dtype` and widened back: the float32 values a 16-bit weight holds."""
    if dtype == "fp16":
        return a.astype(np.float16).astype(np.float32)
    bits = a.astype(np.float32).view(np.uint32)
    return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


X4 = rng.standard_normal((6, 8, 5, 5)).astype(np.float32)
X3 = rng.standard_normal((3, 7, 8)).astype(np.float32)
W_CONV = rng.standard_normal((5, 8, 3, 3)).astype(np.float32)
W_TEMP = rng.standard_normal((5, 8, 3)).astype(np.float32)
W_LIN = rng.standard_normal((5, 8)).astype(np.float32)
B5 = rng.standard_normal(5).astype(np.float32)
G8 = rng.standard_normal(8).astype(np.float32)

# name -> (call(x..., weights..., dtype=...), number of weight operands)
CASES = {
    "linear": (lambda dt, dev, w=W_LIN, b=B5: ops.linear(X3, w, b, device=dev, dtype=dt), ("fp32", "W", "W", "fp32")),
    "conv2d": (lambda dt, dev, w=W_CONV, b=B5: ops.conv2d(X4, w, b, (1, 1), (1, 1, 1, 1), device=dev, dtype=dt),
               ("fp32", "W", "W", "fp32")),
    "conv_temporal": (lambda dt, dev, w=W_TEMP, b=B5: ops.conv_temporal(X4, 3, w, b, device=dev, dtype=dt),
                      ("fp32", "W", "W", "fp32")),
    "group_norm": (lambda dt, dev, w=G8, b=G8: ops.group_norm(X4, 2, 3, w, b, device=dev, dtype=dt),
                   ("fp32", "W", "W", "fp32")),
    "layer_norm": (lambda dt, dev, w=G8, b=G8: ops.layer_norm(X3, w, b, device=dev, dtype=dt),
                   ("fp32", "W", "W", "fp32")),
}


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("wdtype", ["fp16", "bf16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_sixteen_bit_weights_equal_the_float32_op_on_the_widened_weights(name, wdtype, device):
    call, pattern = CASES[name]
    dtypes = tuple(wdtype if d == "W" else d for d in pattern)
    defaults = call.__defaults__
    expected = call(None, "cpu", *(rounded(w, wdtype) for w in defaults))
    np.testing.assert_array_equal(call(dtypes, device), expected)


def test_add_takes_a_sixteen_bit_b_only():
    a = X3[0]
    b = rng.standard_normal(a.shape).astype(np.float32)
    np.testing.assert_array_equal(ops.add(a, b, dtype=("fp32", "bf16", "fp32")), a + rounded(b, "bf16"))
    with pytest.raises(svdc.ShapeError, match=r"add: a has dtype float16, expected float32"):
        ops.add(a, b, dtype=("fp16", "fp32", "fp32"))


def test_each_sixteen_bit_weight_costs_one_convert_on_a_device():
    def op_calls(dtypes):
        ops.emu_reset_counters()
        ops.linear(X3, W_LIN, B5, device="emu", dtype=dtypes)
        return ops.emu_stats()["op_calls"]

    # The op surface's staging converts each 16-bit input once on upload (float32 host array -> 16-bit device
    # tensor: one convert call); the op then widens each 16-bit weight once: two calls per 16-bit weight in all.
    base = op_calls(("fp32",) * 4)
    assert op_calls(("fp32", "bf16", "fp32", "fp32")) == base + 2
    assert op_calls(("fp32", "fp16", "fp16", "fp32")) == base + 4


def test_sixteen_bit_activations_stay_refused_on_the_cpu():
    with pytest.raises(svdc.ShapeError, match=r"linear: x has dtype float16, expected float32"):
        ops.linear(X3, W_LIN, B5, dtype=("fp16", "fp16", "fp16", "fp32"))
    with pytest.raises(svdc.ShapeError, match=r"linear: y has dtype float16, expected float32"):
        ops.linear(X3, W_LIN, B5, dtype=("fp32", "fp16", "fp16", "fp16"))
