"""The device arena is reserved at its peak before a model call runs: a measuring pass (csrc/core/plan.h) runs the
call with nothing computed, copied or allocated, the arena is reserved at the measured peak in one block, and the
call itself then neither allocates nor frees device memory. The emulated device counts its allocations, and its
kernels take their scratch from host memory, so the plan must equal the call's high-water mark exactly."""
import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()


@pytest.fixture(scope="module")
def emu_components():
    return tiny.tiny_components(device="emu")


def unet_inputs(frames, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, frames, 8, 8, 8)).astype(np.float32), np.float32(0.7),
            rng.standard_normal((1, 1, 32)).astype(np.float32), rng.standard_normal((1, 3)).astype(np.float32))


def call_counting(fn, *args, **kwargs):
    """Runs fn and returns (device allocations, frees, live bytes added) during the call."""
    before = ops.emu_stats()
    fn(*args, **kwargs)
    after = ops.emu_stats()
    return after["allocs"] - before["allocs"], after["frees"] - before["frees"], \
        after["live_bytes"] - before["live_bytes"]


def assert_planned_exactly(native, what):
    assert native.last_planned_bytes > 0, what
    assert native.last_planned_bytes == native.last_peak_bytes, \
        f"{what}: planned {native.last_planned_bytes} bytes, the call's high-water mark was {native.last_peak_bytes}"
    assert native.arena_reserved_bytes == native.last_peak_bytes, what


def test_first_unet_call_reserves_its_peak_once_and_allocates_nothing_else():
    unet = svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0),
                                 device="emu")
    assert unet._native.arena_reserved_bytes == 0
    allocs, frees, added = call_counting(unet, *unet_inputs(3))
    # One allocation for the whole call: the arena block, of exactly the measured size, made before any op ran.
    assert (allocs, frees) == (1, 0)
    assert added == unet._native.arena_reserved_bytes
    assert_planned_exactly(unet._native, "UNet forward")
    assert call_counting(unet, *unet_inputs(3, seed=1))[:2] == (0, 0)


def test_smaller_call_keeps_the_block_and_larger_call_regrows_before_running(emu_components):
    unet = emu_components[0]
    unet(*unet_inputs(3))
    held = unet._native.arena_reserved_bytes
    assert call_counting(unet, *unet_inputs(2))[:2] == (0, 0)
    assert unet._native.arena_reserved_bytes == held
    assert unet._native.last_planned_bytes == unet._native.last_peak_bytes < held
    allocs, frees, _ = call_counting(unet, *unet_inputs(5))
    assert (allocs, frees) == (1, 1)  # the old block returned, the new one taken, both before the call ran
    assert_planned_exactly(unet._native, "UNet forward, 5 frames")


def test_vae_and_image_encoder_plan_exactly(emu_components):
    _, vae, enc = emu_components
    rng = np.random.default_rng(1)
    vae.encode(rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    assert vae._native.last_planned_bytes == vae._native.last_peak_bytes > 0
    vae.decode(rng.standard_normal((4, 4, 8, 8)).astype(np.float32), num_frames=2)
    assert vae._native.last_planned_bytes == vae._native.last_peak_bytes > 0
    enc(rng.standard_normal((2, 3, 224, 224)).astype(np.float32))
    assert_planned_exactly(enc._native, "ImageEncoder")


def test_pipeline_unet_arena_is_one_block_at_its_plan():
    pipe = tiny.tiny_pipeline(device="emu")
    pipe(tiny.test_image(), num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)
    native = pipe.unet._native
    assert native.arena_reserved_bytes == native.last_planned_bytes == native.last_peak_bytes > 0


def test_cpu_models_do_not_plan():
    unet = svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0))
    unet(*unet_inputs(2))
    assert unet._native.last_planned_bytes == 0 and unet._native.last_peak_bytes > 0
