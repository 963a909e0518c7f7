"""svdc.schedules equals diffusers' EulerDiscreteScheduler configured like SVD (sigmas, timesteps, init_noise_sigma,
scale_model_input) and the pipeline's own guidance construction (torch.linspace)."""
import numpy as np
import pytest

from svdc import schedules

# SVD's scheduler/scheduler_config.json (diffusers EulerDiscreteScheduler)
SVD_SCHEDULER_CONFIG = dict(
    beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085, interpolation_type="linear",
    num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002, steps_offset=1,
    timestep_spacing="leading", timestep_type="continuous", trained_betas=None, use_karras_sigmas=True,
)


def _diffusers_scheduler(steps):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(**SVD_SCHEDULER_CONFIG)
    sched.set_timesteps(steps)
    return sched


@pytest.mark.parametrize("steps", [1, 2, 5, 25, 30, 50])
def test_schedule_matches_diffusers(torch_cpu, steps):
    ref = _diffusers_scheduler(steps)
    s = schedules.euler_schedule(steps, SVD_SCHEDULER_CONFIG)
    np.testing.assert_allclose(s.sigmas, ref.sigmas.numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(s.timesteps, ref.timesteps.numpy(), rtol=1e-6, atol=1e-6)
    assert s.sigmas.dtype == np.float32 and s.timesteps.dtype == np.float32
    assert s.sigmas[-1] == 0.0 and s.num_steps == steps
    assert abs(float(s.init_noise_sigma) - float(ref.init_noise_sigma)) <= 1e-6 * float(ref.init_noise_sigma)
    # the default (config None) is SVD's
    np.testing.assert_array_equal(schedules.euler_schedule(steps).sigmas, s.sigmas)


@pytest.mark.parametrize("steps", [2, 25])
def test_preconditioning_matches_scheduler(torch_cpu, steps):
    torch = torch_cpu
    ref = _diffusers_scheduler(steps)
    x = torch.randn(2, 3, 4, 5, 6)
    for i, t in enumerate(ref.timesteps):
        ref._step_index = None
        scaled = ref.scale_model_input(x, t).numpy()
        sigma = schedules.euler_schedule(steps).sigmas[i]
        np.testing.assert_allclose(x.numpy() * schedules.c_in(sigma), scaled, rtol=3e-7, atol=0)  # svdc multiplies by c_in, diffusers divides
        sig = ref.sigmas[i]
        np.testing.assert_allclose(schedules.c_skip(sigma), float(1 / (sig**2 + 1)), rtol=1e-6)
        np.testing.assert_allclose(schedules.c_out(sigma), float(-sig / (sig**2 + 1) ** 0.5), rtol=1e-6)


def test_svd_25_step_values_from_the_spec():
    s = schedules.euler_schedule(25)
    assert s.sigmas[0] == np.float32(700.0)
    assert s.sigmas[-2] == np.float32(0.002)
    np.testing.assert_allclose(s.timesteps[[0, -1]], [1.63777, -1.55365], atol=1e-5)
    np.testing.assert_allclose(float(s.init_noise_sigma), 700.000714, rtol=1e-7)


@pytest.mark.parametrize("lo,hi,frames", [(1.0, 3.0, 14), (1.0, 3.0, 25), (1.5, 3.0, 25), (1.0, 2.5, 14),
                                          (1.0, 3.0, 1), (1.0, 3.0, 2), (2.0, 2.0, 7), (0.3, 7.1, 21),
                                          (1.0, 3.0, 100)])
def test_linear_guidance_is_the_pipeline_linspace(torch_cpu, lo, hi, frames):
    ref = torch_cpu.linspace(lo, hi, frames).numpy()  # StableVideoDiffusionPipeline.__call__
    out = schedules.linear_guidance(lo, hi, frames)
    assert out.dtype == np.float32 and out.shape == (frames,)
    np.testing.assert_array_equal(out, ref)


def test_triangle_guidance_sv3d():
    g = schedules.triangle_guidance(1.0, 2.5, 21)
    assert g.shape == (21,) and g.dtype == np.float32
    assert g[0] == np.float32(1.0) and g[-1] == np.float32(1.0)
    assert abs(g[10] - 2.5) < 1e-6
    np.testing.assert_allclose(g, g[::-1], atol=1e-6)  # symmetric
    np.testing.assert_allclose(g[1], 1.15, atol=1e-6)
    assert np.all(np.diff(g[:11]) > 0)


def test_triangle_guidance_matches_sgm_formula(torch_cpu):
    torch = torch_cpu
    frames, lo, hi = 21, 1.0, 2.5
    v = torch.linspace(0, 1, frames)
    ref = lo + (hi - lo) * 2 * (v - torch.floor(v + 0.5)).abs()
    np.testing.assert_allclose(schedules.triangle_guidance(lo, hi, frames), ref.numpy(), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_inference_steps"):
        schedules.euler_schedule(0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        schedules.karras_sigmas(2.5)
    with pytest.raises(ValueError, match="min_guidance_scale"):
        schedules.linear_guidance(3.0, 1.0, 14)
    with pytest.raises(ValueError, match="num_frames"):
        schedules.linear_guidance(1.0, 3.0, 0)
    with pytest.raises(ValueError, match="prediction_type"):
        schedules.euler_schedule(5, dict(SVD_SCHEDULER_CONFIG, prediction_type="epsilon"))
