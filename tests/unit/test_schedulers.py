"""svdc.schedules' diffusers-named schedulers against diffusers: sigmas, timesteps and init_noise_sigma for every
spacing and prediction type, and whole sampling runs — each plan executed by svdc._C.Sampler on fixed model outputs
against the diffusers scheduler's own set_timesteps / scale_model_input / step loop with the same torch.Generator
(EulerDiscrete, EulerAncestralDiscrete with its per-step noise, DDIM, DPM-Solver++ 2M); unsupported configs refused
by name."""
import numpy as np
import pytest

import svdc
from svdc import _C, schedules
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


DDIM = dict(clip_sample=False, set_alpha_to_one=False)
DPM = dict()  # diffusers' defaults: solver_order 2, dpmsolver++, midpoint, lower_order_final, final sigma 0
RUNS = [
    # (class, config overrides, step counts)
    ("EulerDiscreteScheduler", {}, (1, 4, 7)),
    ("EulerAncestralDiscreteScheduler", {}, (1, 4, 7)),
    ("DDIMScheduler", DDIM, (1, 3, 4, 7)),
    ("DDIMScheduler", dict(DDIM, set_alpha_to_one=True), (3, 6)),
    ("DPMSolverMultistepScheduler", DPM, (1, 2, 5, 16)),
    ("DPMSolverMultistepScheduler", dict(final_sigmas_type="sigma_min"), (2, 5, 16)),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun", lower_order_final=False), (4, 16)),
    ("DPMSolverMultistepScheduler", dict(euler_at_final=True, final_sigmas_type="sigma_min"), (16,)),
    ("DPMSolverMultistepScheduler", dict(solver_order=1), (3,)),
]


def _reference_run(torch, diffusers, name, cfg, steps, outputs, shape, seed):
    """diffusers' loop: latents = randn·init_noise_sigma, scale_model_input, step(generator) per timestep."""
    ref = getattr(diffusers, name)(**cfg)
    ref.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    lat = torch.randn(shape, generator=gen) * ref.init_noise_sigma
    inputs, lats = [], []
    for i, t in enumerate(ref.timesteps):
        inputs.append(ref.scale_model_input(lat, t).numpy().copy())
        lat = ref.step(torch.from_numpy(outputs[i]), t, lat, generator=gen).prev_sample
        lats.append(lat.numpy().copy())
    return ref.timesteps.numpy(), inputs, lats


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("name, overrides, step_counts", RUNS,
                         ids=[f"{r[0]}-{'-'.join(f'{k}={v}' for k, v in r[1].items()) or 'default'}" for r in RUNS])
def test_sampling_run_matches_diffusers(torch_cpu, name, overrides, step_counts, spacing, prediction):
    diffusers = pytest.importorskip("diffusers")
    torch = torch_cpu
    cfg = dict(SD, **overrides, timestep_spacing=spacing, prediction_type=prediction)
    if name != "EulerDiscreteScheduler":
        cfg.pop("interpolation_type")
    ours = schedules.scheduler_from_config({"_class_name": name, **cfg})
    shape = (2, 4, 5, 6)
    for steps in step_counts:
        seed = 100 + steps
        rng = np.random.default_rng(seed)
        outputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]
        timesteps, ref_inputs, ref_lats = _reference_run(torch, diffusers, name, cfg, steps, outputs, shape, seed)
        plan = ours.plan(steps)
        np.testing.assert_array_equal(plan.timesteps, timesteps.astype(np.float32))
        gen = svdc.Generator(seed)
        s = _C.Sampler(2, 1, 4, 5, 6, 0)
        s.set_latents(gen.randn((2, 1, 4, 5, 6)), float(plan.init_noise_sigma))
        for i, step in enumerate(plan.steps):
            what = f"{name} {spacing} {prediction} {steps} steps, step {i}"
            mag = max(1.0, float(np.max(np.abs(ref_inputs[i]))), float(np.max(np.abs(ref_lats[i]))))
            err = float(np.max(np.abs(s.model_input(step.c_in, False)[:, 0] - ref_inputs[i])))
            assert err <= 2e-6 * mag, f"{what}: model input off by {err:.3g}"
            noise = gen.randn(s.shape) if step.draws_noise else None
            s.step(outputs[i][:, None], False, None, noise, **step.coefficients())
            # the reference's own float32 rounding of x (up to ~15 in size at the first step) carries through
            prev = max(mag, float(np.max(np.abs(ref_lats[i - 1]))) if i else mag)
            err = float(np.max(np.abs(s.latents[:, 0] - ref_lats[i])))
            assert err <= 1e-5 * prev, f"{what}: latents off by {err:.3g} (size {prev:.3g})"


def test_dpm_solver_orders_follow_diffusers_lower_order_final():
    """DPM++ 2M: the first step is first order (no D_prev), the middle ones second order (c != 0), the last one
    first order when the final sigma is 0 or fewer than 15 steps are taken with lower_order_final."""
    for overrides, steps, last_first_order in ((DPM, 20, True), (dict(final_sigmas_type="sigma_min"), 20, False),
                                               (dict(final_sigmas_type="sigma_min"), 10, True)):
        plan = schedules.DPMSolverMultistepScheduler(dict(SD, **overrides)).plan(steps)
        cs = [step.c for step in plan.steps]
        assert cs[0] == 0 and all(c != 0 for c in cs[1:-1])
        assert (cs[-1] == 0) == last_first_order, (overrides, steps, cs[-1])


def test_ddim_uneven_trailing_and_linspace_step_to_t_minus_T_over_N():
    """DDIM always steps from t to t − T//N, whatever the spacing visits next (trailing 3 steps: 999 -> 666 but the
    next evaluation is at 665)."""
    s = schedules.DDIMScheduler(dict(SD, clip_sample=False, timestep_spacing="trailing"))
    np.testing.assert_array_equal(s.timesteps(3), [999, 666, 332])
    s = schedules.DDIMScheduler(dict(SD, clip_sample=False, timestep_spacing="linspace"))
    np.testing.assert_array_equal(s.timesteps(4), [999, 666, 333, 0])
    assert s.plan(4).init_noise_sigma == 1.0 and all(step.c_in == 1.0 for step in s.plan(4).steps)


@pytest.mark.parametrize("overrides, match", [
    (dict(_class_name="LMSDiscreteScheduler"), "LMSDiscreteScheduler"),
    (dict(_class_name="PNDMScheduler"), "PNDMScheduler"),
    (dict(_class_name="DDIMScheduler", clip_sample=True), "clip_sample=True"),
    (dict(_class_name="DDIMScheduler", clip_sample=False, thresholding=True), "thresholding=True"),
    (dict(_class_name="EulerAncestralDiscreteScheduler", prediction_type="sample"), "prediction_type='sample'"),
    (dict(_class_name="DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++"), "algorithm_type"),
    (dict(_class_name="DPMSolverMultistepScheduler", solver_order=3), "solver_order=3"),
    (dict(_class_name="DPMSolverMultistepScheduler", use_karras_sigmas=True), "use_karras_sigmas"),
    (dict(_class_name="DPMSolverMultistepScheduler", use_lu_lambdas=True), "use_lu_lambdas"),
    (dict(_class_name="DPMSolverMultistepScheduler", thresholding=True), "thresholding"),
    (dict(_class_name="DPMSolverMultistepScheduler", lambda_min_clipped=-5.1), "lambda_min_clipped"),
    (dict(_class_name="DPMSolverMultistepScheduler", variance_type="learned_range"), "variance_type"),
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
    for name in ("DDIMScheduler", "DPMSolverMultistepScheduler", "EulerAncestralDiscreteScheduler"):
        with pytest.raises(ValueError, match="num_inference_steps"):
            schedules.scheduler_from_config({**SD_SCHEDULER_CONFIG, "_class_name": name, "clip_sample": False}).plan(0)
