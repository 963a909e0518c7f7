"""Device failures on the emulated device: an allocation failure injected at every device allocation of a UNet
forward (and of its construction) gives a MemoryError naming the bytes and the device, leaks nothing and leaves the
model usable; a sticky device error makes the next call fail with a clear message while the process and the CPU
path carry on."""
import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()


@pytest.fixture(autouse=True)
def clean_device():
    ops.emu_fail_allocation(-1)
    ops.emu_set_sticky(None)
    yield
    ops.emu_fail_allocation(-1)
    ops.emu_set_sticky(None)  # test hygiene only: a real device never recovers


def unet_inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, 2, 8, 8, 8)).astype(np.float32), np.float32(0.5),
            rng.standard_normal((1, 1, 32)).astype(np.float32), rng.standard_normal((1, 3)).astype(np.float32))


WEIGHTS = tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0)


def build(device="emu"):
    return svdc.UNet.from_config(tiny.UNET_CONFIG, WEIGHTS, device=device)


def test_allocation_failure_at_every_allocation_of_a_forward():
    args = unet_inputs()
    reference = build("cpu")(*args)
    probe = build()
    before = ops.emu_stats()["allocs"]
    probe(*args)
    n = ops.emu_stats()["allocs"] - before
    assert n >= 1, "a fresh model's first forward allocates its arena on the device"
    del probe
    for k in range(n):
        unet = build()
        held = ops.emu_stats()["live_bytes"]
        ops.emu_fail_allocation(k)
        with pytest.raises(MemoryError, match=r"could not (allocate|reserve) \d+ bytes on emu device 0"):
            unet(*args)
        ops.emu_fail_allocation(-1)
        assert ops.emu_stats()["live_bytes"] == held, f"allocation {k}: device memory leaked by the failed call"
        assert unet._native.arena_reserved_bytes == 0, f"allocation {k}: the arena kept memory from the failed call"
        np.testing.assert_array_equal(unet(*args), reference, err_msg=f"allocation {k}: model unusable after")


def test_allocation_failure_while_uploading_the_weights():
    live = ops.emu_stats()["live_bytes"]
    ops.emu_fail_allocation(0)
    with pytest.raises(MemoryError, match=r"could not allocate \d+ bytes of weights on emu device 0"):
        build()
    assert ops.emu_stats()["live_bytes"] == live


def test_sticky_error_refuses_further_work_and_the_cpu_carries_on():
    args = unet_inputs()
    unet, cpu = build(), build("cpu")
    expected = cpu(*args)
    ops.emu_set_sticky("simulated illegal address in a kernel")
    with pytest.raises(svdc.DeviceUnavailableError,
                       match=r"emu: device 0 is unusable after an earlier error \(simulated illegal address"):
        unet(*args)
    with pytest.raises(svdc.DeviceUnavailableError, match="unusable"):
        ops.add(args[2], args[2], device="emu")
    with pytest.raises(svdc.DeviceUnavailableError, match="unusable"):
        build()  # uploading weights is refused too, with the same reason (not "out of memory")
    np.testing.assert_array_equal(cpu(*args), expected)  # the process and the CPU path are unaffected
