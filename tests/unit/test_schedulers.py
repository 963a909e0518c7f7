"""svdc.schedules' diffusers-named schedulers against diffusers (sigmas, timesteps, init_noise_sigma for every
spacing and prediction type), and unsupported configs refused by name."""
import numpy as np
import pytest

from svdc import schedules
from svdc.tiny import SD_SCHEDULER_CONFIG

SD = {k: v for k, v in SD_SCHEDULER_CONFIG.items() if not k.startswith("_")}


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("beta_schedule", ["scaled_linear", "linear"])
def test_euler_schedule_matches_diffusers(spacing, prediction, beta_schedule):
    diffusers = pytest.importorskip("diffusers")
    cfg = dict(SD, timestep_spacing=spacing, prediction_type=prediction, beta_schedule=beta_schedule)
    ours = schedules.EulerDiscreteScheduler(cfg)
    assert ours.prediction_type == prediction
    for steps in (1, 2, 4, 25, 50):
        ref = diffusers.EulerDiscreteScheduler(**cfg)
        ref.set_timesteps(steps)
        s = ours.schedule(steps)
        np.testing.assert_array_equal(s.timesteps, ref.timesteps.numpy())
        # torch's vectorised pow(0.5) for the training sigmas is within one float32 ulp of sqrt
        ulps = np.abs(s.sigmas.view(np.int32).astype(np.int64) - ref.sigmas.numpy().view(np.int32))
        assert ulps.max() <= 1, (steps, ulps.max())
        assert s.sigmas[-1] == 0
        np.testing.assert_allclose(s.init_noise_sigma, float(ref.init_noise_sigma), rtol=2e-7)


def test_turbo_trailing_steps():
    """SD-Turbo's recipe: trailing spacing, 1 step -> t = 999; 4 steps -> 999, 749, 499, 249."""
    sched = schedules.EulerDiscreteScheduler(dict(SD, timestep_spacing="trailing"))
    np.testing.assert_array_equal(sched.timesteps(1), [999])
    np.testing.assert_array_equal(sched.timesteps(4), [999, 749, 499, 249])


@pytest.mark.parametrize("overrides, match", [
    (dict(_class_name="LMSDiscreteScheduler"), "LMSDiscreteScheduler"),
    (dict(_class_name="PNDMScheduler"), "PNDMScheduler"),
    (dict(_class_name="DDIMScheduler", clip_sample=True), "clip_sample=True"),
    (dict(_class_name="DDIMScheduler", clip_sample=False, timestep_spacing="linspace"), "timestep_spacing"),
    (dict(_class_name="DDIMScheduler", clip_sample=False, thresholding=True), "thresholding=True"),
    (dict(prediction_type="sample"), "prediction_type='sample'"),
    (dict(timestep_spacing="karras"), "timestep_spacing='karras'"),
    (dict(use_karras_sigmas=True), "use_karras_sigmas"),
    (dict(interpolation_type="log_linear"), "interpolation_type"),
    (dict(beta_schedule="squaredcos_cap_v2"), "beta_schedule"),
    (dict(rescale_betas_zero_snr=True), "rescale_betas_zero_snr"),
    (dict(final_sigmas_type="sigma_min"), "final_sigmas_type"),
])
def test_unsupported_configs_refused_by_name(overrides, match):
    with pytest.raises(ValueError, match=match):
        schedules.scheduler_from_config({**SD_SCHEDULER_CONFIG, **overrides})


def test_bad_step_counts():
    sched = schedules.EulerDiscreteScheduler(SD)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_inference_steps"):
            sched.schedule(bad)
    with pytest.raises(ValueError, match="num_inference_steps"):
        sched.schedule(1001)


@pytest.mark.parametrize("spacing, steps", [("leading", 1), ("leading", 4), ("leading", 30), ("trailing", 4),
                                            ("trailing", 25)])
@pytest.mark.parametrize("set_alpha_to_one", [False, True])
def test_ddim_schedule_is_diffusers_ddim_in_sigma_form(spacing, steps, set_alpha_to_one):
    """DDIM's timesteps, σ(t) = √((1 − ᾱ_t)/ᾱ_t) at them and at its last target, and the final √ᾱ."""
    diffusers = pytest.importorskip("diffusers")
    cfg = dict(SD, clip_sample=False, set_alpha_to_one=set_alpha_to_one, timestep_spacing=spacing)
    cfg.pop("interpolation_type")
    ref = diffusers.DDIMScheduler(**cfg)
    ref.set_timesteps(steps)
    s = schedules.scheduler_from_config({"_class_name": "DDIMScheduler", **cfg})
    sched = s.schedule(steps)
    np.testing.assert_array_equal(sched.timesteps, ref.timesteps.numpy().astype(np.float32))
    ac = ref.alphas_cumprod.numpy()
    t = ref.timesteps.numpy()
    np.testing.assert_allclose(sched.sigmas[:-1], np.sqrt((1 - ac[t]) / ac[t]), rtol=1e-6)
    end = float(ref.final_alpha_cumprod)
    np.testing.assert_allclose(sched.final_scale, np.sqrt(end), rtol=1e-6)
    np.testing.assert_allclose(sched.sigmas[-1], np.sqrt((1 - end) / end), rtol=1e-6, atol=1e-7)


def test_ddim_step_counts_the_sampler_cannot_express_are_refused():
    s = schedules.DDIMScheduler(dict(SD, clip_sample=False, timestep_spacing="trailing"))
    with pytest.raises(ValueError, match="3 steps"):
        s.schedule(3)  # trailing t = 999, 666, 332 but DDIM steps 999 -> 666 -> 333
