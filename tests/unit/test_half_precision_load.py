"""Loading into 16-bit weight storage: the dtype argument's forms and refusals, an fp16 overflow named by weight,
16-bit inputs stored without a second rounding, the diffusers-compatible torch_dtype, and the C binding's own check."""
import numpy as np
import pytest

import svdc
from svdc import runtime, tiny
from svdc._native import _C


@pytest.fixture(scope="module")
def vae_weights():
    return tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1)


@pytest.mark.parametrize("value,name", [("fp16", "fp16"), ("float16", "fp16"), ("half", "fp16"), ("BF16", "bf16"),
                                        ("bfloat16", "bf16"), (np.float16, "fp16"), (np.dtype("float32"), "fp32"),
                                        ("auto", None), (None, None)])
def test_dtype_forms(value, name):
    assert runtime.dtype_name(value) == name


def test_torch_dtypes_are_read_by_name():
    class FakeTorchDtype:  # what str(torch.bfloat16) gives, without importing torch
        def __str__(self):
            return "torch.bfloat16"

    assert runtime.dtype_name(FakeTorchDtype()) == "bf16"


def test_storage_and_block_size(vae_weights):
    fp32 = svdc.VAE.from_config(tiny.VAE_CONFIG, vae_weights, device="cpu")
    for dtype in ("fp16", "bf16"):
        vae = svdc.VAE.from_config(tiny.VAE_CONFIG, vae_weights, device="cpu", dtype=dtype)
        assert vae.dtype == dtype and fp32.dtype == "fp32"
        assert vae._native.weight_bytes <= 0.55 * fp32._native.weight_bytes


def test_float16_inputs_are_stored_without_a_second_rounding(vae_weights):
    """fp16 arrays (e.g. an fp16 variant file) widen exactly to fp32 and round back to themselves: the fp16 model
    of fp16-rounded weights equals the fp32 model of the same rounded weights."""
    halves = {k: v.astype(np.float16) for k, v in vae_weights.items()}
    z = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    a = svdc.VAE.from_config(tiny.VAE_CONFIG, halves, device="cpu", dtype="fp16").decode(z, num_frames=2)
    b = svdc.VAE.from_config(tiny.VAE_CONFIG, halves, device="cpu", dtype="fp32").decode(z, num_frames=2)
    np.testing.assert_array_equal(a, b)


def test_an_fp16_overflow_names_the_weight(vae_weights):
    bad = dict(vae_weights)
    name = "decoder.conv_in.weight"
    bad[name] = bad[name].copy()
    bad[name].flat[3] = 1e5
    with pytest.raises(svdc.CheckpointError, match=rf"weight {name}: element 3 = 100000 is beyond float16's range.*bf16"):
        svdc.VAE.from_config(tiny.VAE_CONFIG, bad, device="cpu", dtype="fp16")
    assert svdc.VAE.from_config(tiny.VAE_CONFIG, bad, device="cpu", dtype="bf16").dtype == "bf16"  # bf16 holds it


def test_unknown_dtype_names_the_argument_and_the_accepted_values():
    with pytest.raises(ValueError, match=r"^dtype: expected None, 'fp32', 'fp16' or 'bf16' .* got 'fp8'$"):
        svdc.ImageEncoder.from_config(tiny.IMAGE_ENCODER_CONFIG, {}, device="cpu", dtype="fp8")
    # the C binding takes only the canonical names (the Python layer maps the aliases) and says so
    with pytest.raises(ValueError, match=r"dtype: expected 'fp32', 'fp16' or 'bf16', got 'half'"):
        _C.ImageEncoder({}, {}, device="cpu", dtype="half")


def test_compat_torch_dtype_stores_fp16(tmp_path):
    folder = tiny.save_pipeline(tmp_path / "tiny")
    pipe = svdc.StableVideoDiffusionPipeline.from_pretrained(folder, torch_dtype="float16")
    assert pipe.dtype == "fp16" and pipe.unet.dtype == pipe.vae.dtype == "fp16"
