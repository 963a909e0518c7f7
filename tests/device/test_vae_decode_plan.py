"""The streamed temporal VAE decoder (csrc/models/vae_decoder_stream.c): its planned arena peak for N frames,
from a measuring pass that computes nothing (VAE._native.decode(..., plan_only=True)), against the arena's measured
high-water mark after the real call. On the emulated device the kernels take their scratch from host memory, so
the plan must EQUAL the high-water mark; on the CPU the kernels also take scratch (Winograd tiles, im2col) from
the arena, which the CPU table does not plan, so there the plan BOUNDS it from below. Also: the least-memory
setting (conv1's outputs recomputed, not kept) gives the same frames with a smaller plan."""
import numpy as np
import pytest

import svdc
from svdc import tiny


def tiny_vae(device):
    return svdc.VAE.from_config(tiny.VAE_CONFIG, tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1),
                                device=device)


def latents(rows, seed=0, size=(6, 5)):
    return np.random.default_rng(seed).standard_normal((rows, 4) + size).astype(np.float32)


@pytest.fixture(scope="module")
def emu_vae():
    return tiny_vae("emu")


@pytest.fixture(scope="module")
def cpu_vae():
    return tiny_vae("cpu")


@pytest.mark.parametrize("frames,videos", [(1, 1), (2, 1), (3, 2), (5, 1), (8, 1)])
def test_plan_equals_high_water_mark_on_emu(emu_vae, frames, videos):
    z = latents(frames * videos, seed=frames)
    native = emu_vae._native
    planned = emu_vae.planned_decode_bytes(z[:frames], frames)  # VAE.decode makes one native call per video
    emu_vae.decode(z, num_frames=frames)
    assert planned > 0
    assert planned == native.last_planned_bytes == native.last_peak_bytes, \
        f"{frames} frames: planned {planned} bytes, the call's high-water mark was {native.last_peak_bytes}"


@pytest.mark.parametrize("frames", [1, 3, 6])
def test_plan_bounds_high_water_mark_on_cpu(cpu_vae, frames):
    z = latents(frames, seed=frames)
    planned = cpu_vae.planned_decode_bytes(z, frames)
    cpu_vae.decode(z, num_frames=frames)
    peak = cpu_vae.last_peak_bytes
    # the difference is kernel scratch only: a few tiles per thread, whatever the number of frames
    assert 0 < planned <= peak <= planned + (64 << 20), (planned, peak)


def aligned(nbytes):
    return -(-nbytes // 256) * 256  # the arena's alignment (csrc/core/arena.c)


def test_plan_is_per_video(emu_vae):
    """One video at a time in one buffer: a second video adds only its staged latents and frames."""
    one, two = (emu_vae._native.decode(latents(3 * v), 3, plan_only=True) for v in (1, 2))
    frame_bytes = 3 * (6 * 8) * (5 * 8) * 4  # (3, 48, 40) float32
    staged = [aligned(latents(3 * v).nbytes) + aligned(3 * v * frame_bytes) for v in (1, 2)]
    assert two - one == staged[1] - staged[0]
    assert emu_vae._native.decode(latents(4), 4, plan_only=True) > one  # more frames, a larger resident


def test_least_memory_setting_recomputes_to_the_same_frames(cpu_vae, monkeypatch):
    z = latents(4, seed=9)
    kept = cpu_vae.decode(z, num_frames=4)
    kept_plan = cpu_vae._native.decode(z, 4, plan_only=True)
    monkeypatch.setenv("SVDC_VAE_DECODE_KEEP_BYTES", "0")
    least_plan = cpu_vae._native.decode(z, 4, plan_only=True)
    least = cpu_vae.decode(z, num_frames=4)
    assert least_plan < kept_plan
    np.testing.assert_array_equal(least, kept)  # the same ops on the same values


def test_planned_decode_bytes_checks_its_input(cpu_vae):
    with pytest.raises(ValueError, match="num_frames"):
        cpu_vae.planned_decode_bytes(latents(2))
    with pytest.raises(svdc.ShapeError, match="not a multiple of num_frames"):
        cpu_vae.planned_decode_bytes(latents(3), 2)
