"""The sampler's latents live on the model's device across steps (the emulated device "emu" standing in for a GPU):
the state is allocated once, each step moves only the model input to the host and the model output back, and the
latents come to the host only at the end or when a callback asks for them. The image-to-video pipeline on emu,
sampler included, equals the CPU run exactly."""
import numpy as np
import pytest

from svdc import schedules, tiny
from svdc._native import testing_ops as load_testing_ops
from svdc.pipelines import base

ops = load_testing_ops()
SHAPE = (1, 3, 4, 5, 6)  # (B, F, C, h, w)


def _loop(callback=None, steps=4, device="emu"):
    """base.denoise on a sampler on `device` with a stand-in model; -> (final latents, emu counters over the
    loop)."""
    plan = schedules.euler_schedule(steps).plan()
    rng = np.random.default_rng(0)
    outputs = [rng.standard_normal((2,) + SHAPE[1:]).astype(np.float32) for _ in range(steps)]
    sampler = base.new_sampler(SHAPE, device)
    assert sampler.device == ("emu:0" if device == "emu" else "cpu")
    sampler.set_latents(rng.standard_normal(SHAPE).astype(np.float32), float(plan.init_noise_sigma))
    sampler.set_cond(rng.standard_normal((1, 4, 5, 6)).astype(np.float32))
    before = ops.emu_stats()
    final = base.denoise(sampler, plan, lambda i, u: outputs[i], cfg=True,
                         guidance=schedules.linear_guidance(1.0, 3.0, SHAPE[1]), generator=None,
                         callback=callback, progress=False)
    after = ops.emu_stats()
    return final, {k: after[k] - before[k] for k in after}


def test_no_per_step_host_copy_of_the_latents():
    steps = 4
    latent_bytes = 4 * int(np.prod(SHAPE))
    input_bytes = 4 * 2 * SHAPE[1] * 2 * SHAPE[2] * SHAPE[3] * SHAPE[4]  # CFG rows, latents ⊕ cond channels
    final, stats = _loop(steps=steps)
    # per step: the model input to the host (the UNet takes host arrays), nothing else; the latents once at the end
    assert stats["bytes_to_host"] == steps * input_bytes + latent_bytes, stats
    # the state is allocated once at construction and the staging arena keeps its chunks: the device allocations
    # of a run do not grow with its length
    longer = _loop(steps=2 * steps)[1]
    assert longer["allocs"] == stats["allocs"] and longer["frees"] == stats["frees"] == 0, (stats, longer)
    seen = []
    _, with_callback = _loop(callback=lambda i, n, lat: seen.append(i), steps=steps)
    assert seen == list(range(steps))
    assert with_callback["bytes_to_host"] == stats["bytes_to_host"] + steps * latent_bytes, with_callback


def test_emu_loop_equals_the_cpu_loop():
    np.testing.assert_array_equal(_loop(device="emu")[0], _loop(device="cpu")[0])


def test_image_to_video_samples_on_the_unets_device(monkeypatch):
    devices = []
    real = base.new_sampler

    def recording(shape, device="cpu", cond_channels=None):
        devices.append(device)
        return real(shape, device, cond_channels)

    monkeypatch.setattr(base, "new_sampler", recording)
    kw = dict(num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)
    emu = tiny.tiny_pipeline(device="emu")(tiny.test_image(), **kw)
    cpu = tiny.tiny_pipeline(device="cpu")(tiny.test_image(), **kw)
    assert devices == ["emu:0", "cpu"]
    assert np.array_equal(emu.frames, cpu.frames), \
        f"{np.count_nonzero(emu.frames != cpu.frames)} of {cpu.frames.size} uint8 values differ"


def test_a_sampler_on_an_unknown_device_is_refused():
    with pytest.raises(ValueError, match="tpu"):
        base.new_sampler(SHAPE, "tpu")
