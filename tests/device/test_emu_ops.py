"""Every op of the core's op list on the emulated device ("emu") against the CPU backend, from one case table
(the pattern of ggml's test-backend-ops). fp32 storage must be bit-identical (the same kernels run behind device
semantics); fp16/bf16 storage must equal the CPU result on the same rounded inputs, rounded once (the emulated
device computes in float32 and rounds only when it stores, as the CUDA kernels do). Also the registry's device
strings and the op list's completeness."""
import numpy as np
import pytest

import svdc
from svdc._native import _C
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()
rng = np.random.default_rng(7)


def r(*shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def rounded(a, dtype):
    """a as stored in `dtype` and read back as float32."""
    if dtype == "fp32":
        return a
    return ops.convert(ops.convert(a, "f16" if dtype == "fp16" else "bf16"), "f32")


def float32_stats(target, inputs, stats_index, output_f32=False):
    """The target with the group norm statistics (input `stats_index`, or the output) staged in float32 whatever
    the activation dtype: those ops take float32 statistics on every backend."""
    dtype = target.get("dtype")
    if dtype is None or isinstance(dtype, tuple):
        return target
    dtypes = [dtype] * (inputs + 1)
    if stats_index is not None:
        dtypes[stats_index] = "fp32"
    if output_f32:
        dtypes[-1] = "fp32"
    return dict(target, dtype=tuple(dtypes))


def group_norm_moments_case(a, **t):
    m = ops.group_norm_moments(a[0], 3, 2, **float32_stats(t, 1, None, output_f32=True))
    dtype = t.get("dtype")  # the float32 moments rounded as the case table's expectation is
    return m if dtype in (None, "fp32") else rounded(m, dtype)


# (mean_hi, mean_lo, rstd) per (video, group), exact in fp16 and bf16 so every dtype reads the same statistics
GN_STATS = np.array([[[0.25, 0.0, 1.5], [-0.5, 0.0, 0.75], [1.0, 0.0, 2.0]],
                     [[0.0, 0.0, 1.0], [0.125, 0.0, 0.5], [-1.0, 0.0, 1.25]]], np.float32)

# op name -> (inputs, call(inputs, **target)). Odd sizes on purpose (not multiples of any tile).
CASES = {
    "linear": ([r(3, 5, 7), r(6, 7), r(6)], lambda a, **t: ops.linear(a[0], a[1], a[2], **t)),
    "conv2d": ([r(2, 3, 7, 6), r(5, 3, 3, 3), r(5)],
               lambda a, **t: ops.conv2d(a[0], a[1], a[2], stride=(2, 1), padding=(1, 0, 1, 1), **t)),
    "conv_temporal": ([r(6, 3, 2, 5), r(4, 3, 3), r(4)], lambda a, **t: ops.conv_temporal(a[0], 3, a[1], a[2], **t)),
    "group_norm": ([r(4, 6, 3, 5), r(6), r(6), r(4, 6)],
                   lambda a, **t: ops.group_norm(a[0], 3, 2, a[1], a[2], eps=1e-5, silu=True, bias=a[3], **t)),
    "layer_norm": ([r(3, 4, 9), r(9), r(9)], lambda a, **t: ops.layer_norm(a[0], a[1], a[2], eps=1e-5, **t)),
    "attention": ([r(2, 5, 12), r(2, 7, 12), r(2, 7, 12)], lambda a, **t: ops.attention(a[0], a[1], a[2], 3, 0.4, **t)),
    "gelu": ([r(3, 11)], lambda a, **t: ops.gelu(a[0], **t)),
    "silu": ([r(3, 11)], lambda a, **t: ops.silu(a[0], **t)),
    "geglu": ([r(3, 10)], lambda a, **t: ops.geglu(a[0], **t)),
    "axpby": ([r(4, 5), r(4, 5)], lambda a, **t: ops.axpby(0.3, a[0], -1.7, a[1], **t)),
    "mul": ([r(4, 5), r(4, 5)], lambda a, **t: ops.mul(a[0], a[1], **t)),
    "add_channel_bias": ([r(2, 3, 4, 5), r(2, 3)], lambda a, **t: ops.add_channel_bias(a[0], a[1], **t)),
    "add_token_bias": ([r(2, 5, 3), r(2, 3)], lambda a, **t: ops.add_token_bias(a[0], a[1], **t)),
    "upsample_nearest2x": ([r(2, 3, 3, 5)], lambda a, **t: ops.upsample_nearest2x(a[0], **t)),
    "concat_channels": ([r(2, 3, 4, 5), r(2, 2, 4, 5)], lambda a, **t: ops.concat_channels(a[0], a[1], **t)),
    "permute_0213": ([r(2, 3, 5, 4)], lambda a, **t: ops.permute_0213(a[0], **t)),
    "permute_0213_axpby": ([r(2, 3, 5, 4), r(2, 5, 3, 4)],
                           lambda a, **t: ops.permute_0213_axpby(0.3, a[0], -1.7, a[1], **t)),
    "timestep_embedding": ([np.array([0.0, 3.5, 999.0], np.float32)],
                           lambda a, **t: ops.timestep_embedding(a[0], 9, **t)),
    "convert": ([r(3, 7)], None),  # its own test below: dtypes are the op's arguments
    "copy": ([r(3, 7)], lambda a, **t: ops.copy(a[0], **t)),
    "fill": ([r(3, 7)], lambda a, **t: ops.fill(a[0], -2.25, **t)),
    "check_finite": ([r(3, 7)], None),  # its own test below: it returns nothing
    "group_norm_moments": ([r(4, 6, 3, 5)], group_norm_moments_case),
    "group_norm_apply": ([r(4, 6, 3, 5), GN_STATS, r(6), r(6)],
                         lambda a, **t: ops.group_norm_apply(a[0], 3, a[1], 2, a[2], a[3], silu=True,
                                                             **float32_stats(t, 4, 1))),
}


def test_every_op_of_the_list_has_a_case():
    missing = [name for name in ops.OP_LIST if name not in CASES]
    assert not missing, (f"ops in csrc/core/op_list.h without a case in tests/device/test_emu_ops.py: {missing}; "
                         "add one (inputs and the _ops call) so every backend is checked against the CPU")
    assert set(CASES) == set(ops.OP_LIST), f"cases for ops not in the list: {set(CASES) - set(ops.OP_LIST)}"


def test_registry_lists_the_builtin_backends():
    names = [b["name"] for b in _C.backends()]
    assert names[:2] == ["cpu", "emu"]
    emu = _C.backends()[1]
    assert emu["devices"] == 1 and emu["chunk_budget"] == 0


@pytest.mark.parametrize("name", [n for n, (_, call) in CASES.items() if call is not None])
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_op_on_emu_equals_cpu(name, dtype):
    inputs, call = CASES[name]
    if name == "timestep_embedding" and dtype != "fp32":
        inputs = [inputs[0][:2]]  # 999 is not exact in fp16/bf16 storage; keep the case about the op
    expected = rounded(call([rounded(a, dtype) for a in inputs]), dtype)
    before = ops.emu_stats()
    actual = call(inputs, device="emu", dtype=None if dtype == "fp32" else dtype)
    after = ops.emu_stats()
    assert actual.shape == expected.shape
    assert np.array_equal(actual, expected, equal_nan=True), \
        f"{name} {dtype}: max |emu - cpu| = {np.max(np.abs(actual - expected)):.3g}"
    assert after["op_calls"] > before["op_calls"], "the call did not run on the emulated device"
    assert after["live_count"] == before["live_count"], "the staged call leaked device memory"


@pytest.mark.parametrize("src,dst", [("f32", "f16"), ("f32", "bf16"), ("f16", "f32"), ("bf16", "f32"),
                                     ("f16", "bf16"), ("bf16", "f16")])
def test_convert_on_emu_equals_cpu(src, dst):
    x = r(4, 9, scale=100.0)
    x = x if src == "f32" else ops.convert(x, src)
    assert np.array_equal(ops.convert(x, dst, device="emu").view(np.uint8), ops.convert(x, dst).view(np.uint8))


def test_check_finite_on_emu():
    x = r(3, 7)
    ops.check_finite(x, device="emu", dtype="bf16")
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="latents contains NaN"):
        ops.check_finite(x, what="latents", device="emu")


@pytest.mark.parametrize("text,match", [("emu:1", "1 emu device"), ("cuda:x", "ordinal"), ("cpu:1", "no ordinal"),
                                        ("tpu", "expected 'cpu'")])
def test_device_strings_are_parsed_by_the_registry(text, match):
    x = r(2, 3)
    with pytest.raises((ValueError, svdc.DeviceUnavailableError), match=match):
        ops.add(x, x, device=text)


def test_in_place_on_emu():
    x = r(3, 8)
    expected = ops.silu(x.copy())
    y = x.copy()
    ops.silu(y, out=y, device="emu")
    assert np.array_equal(y, expected)
