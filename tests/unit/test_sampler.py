"""svdc._C.Sampler executing svdc.schedules' Euler plans against diffusers' EulerDiscreteScheduler (SVD config)
driven the way StableVideoDiffusionPipeline drives it: model input ([x;x]·c_in ⊕ [0; cond]), per-frame CFG, Euler
steps to σ = 0, churn with noise from the same seed, and refusal of bad input."""
import numpy as np
import pytest

import svdc
from svdc import _C, schedules

# SVD's scheduler/scheduler_config.json (diffusers EulerDiscreteScheduler)
SVD_SCHEDULER_CONFIG = dict(
    beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085, interpolation_type="linear",
    num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002, steps_offset=1,
    timestep_spacing="leading", timestep_type="continuous", trained_betas=None, use_karras_sigmas=True,
)


def _scheduler(torch, steps):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(**SVD_SCHEDULER_CONFIG)
    sched.set_timesteps(steps)
    return sched


def _run_both(torch, b, f, h, w, steps, cfg, churn=None, seed=0):
    rng = np.random.default_rng(seed)
    c = 4
    x0 = rng.standard_normal((b, f, c, h, w)).astype(np.float32)
    cond = rng.standard_normal((b, c, h, w)).astype(np.float32)
    vs = [rng.standard_normal((2 * b if cfg else b, f, c, h, w)).astype(np.float32) for _ in range(steps)]
    gmin, gmax = 1.0, 3.0
    guidance = schedules.linear_guidance(gmin, gmax, f)

    # reference: the pipeline's loop around scheduler.step
    ref = _scheduler(torch, steps)
    gen = torch.Generator().manual_seed(seed)
    lat = torch.from_numpy(x0) * ref.init_noise_sigma
    cond_t = torch.from_numpy(cond).unsqueeze(1).repeat(1, f, 1, 1, 1)
    image_latents = torch.cat([torch.zeros_like(cond_t), cond_t]) if cfg else cond_t
    g = torch.linspace(gmin, gmax, f).unsqueeze(0).repeat(b, 1)[..., None, None, None]
    ref_inputs, ref_lats = [], [lat.numpy().copy()]
    for i, t in enumerate(ref.timesteps):
        u = torch.cat([lat] * 2) if cfg else lat
        u = ref.scale_model_input(u, t)
        ref_inputs.append(torch.cat([u, image_latents], dim=2).numpy())
        v = torch.from_numpy(vs[i])
        if cfg:
            vu, vc = v.chunk(2)
            v = vu + g * (vc - vu)
        lat = ref.step(v, t, lat, generator=gen, **(churn or {})).prev_sample
        ref_lats.append(lat.numpy().copy())

    # svdc
    plan = schedules.euler_schedule(steps).plan("v_prediction", **(churn or {}))
    s = _C.Sampler(b, f, c, h, w)
    s.set_latents(x0, float(plan.init_noise_sigma))
    s.set_cond(cond)
    sg = svdc.Generator(seed)
    inputs, lats = [], [s.latents]
    for i, step in enumerate(plan.steps):
        inputs.append(s.model_input(step.c_in, cfg))
        noise = sg.randn((b, f, c, h, w)) if step.draws_noise else None
        s.step(vs[i], cfg, guidance if cfg else None, noise, **step.coefficients())
        lats.append(s.latents)
    return ref_inputs, ref_lats, inputs, lats


def _close(a, ref, rel, what):
    err = np.max(np.abs(a.astype(np.float64) - ref)) / np.max(np.abs(ref))
    assert a.shape == ref.shape and err <= rel, f"{what}: relative error {err:.2e} > {rel:.0e}"


def _close_ulps(a, ref, magnitude, ulps, what):
    """|svdc − diffusers| within `ulps` float32 ulps of `magnitude`, the size of the step's input latents: the Euler
    update x + (x − D)/σ·(σ' − σ) cancels (x ≈ 700·N(0,1) at step 0 to a result of order 1 for one step), so
    rounding differences of 1 ulp of x show up in the result — in diffusers' own result just the same."""
    bound = ulps * 2.0**-23 * magnitude
    err = float(np.max(np.abs(a.astype(np.float64) - ref)))
    assert a.shape == ref.shape and err <= bound, f"{what}: max error {err:.3e} > {ulps} ulps of {magnitude:.3g}"


@pytest.mark.parametrize("b,f,cfg,steps", [(1, 3, True, 4), (2, 5, True, 3), (1, 1, True, 2), (1, 4, False, 4),
                                           (1, 2, True, 1), (1, 3, True, 25)])
def test_sampler_matches_diffusers(torch_cpu, b, f, cfg, steps):
    ref_inputs, ref_lats, inputs, lats = _run_both(torch_cpu, b, f, 5, 6, steps, cfg)
    np.testing.assert_array_equal(lats[0], ref_lats[0])  # x0 · init_noise_sigma
    # c_in: svdc multiplies by 1/√(σ²+1), diffusers divides: 1-2 ulp
    _close(inputs[0], ref_inputs[0], 3e-7, "model input 0")
    for i in range(steps):
        # x_i carries the rounding of step i - 1; at small σ the Euler step passes it on almost unchanged
        prev = float(np.max(np.abs(ref_lats[max(i - 1, 0)])))
        mag = max(prev, float(np.max(np.abs(ref_lats[i]))))
        _close_ulps(inputs[i], ref_inputs[i], prev, 16, f"model input {i}")
        _close_ulps(lats[i + 1], ref_lats[i + 1], mag, 16, f"latents after step {i}")


def test_sampler_churn_matches_diffusers(torch_cpu):
    churn = dict(s_churn=1.5, s_tmin=0.05, s_tmax=300.0, s_noise=1.003)
    ref_inputs, ref_lats, inputs, lats = _run_both(torch_cpu, 1, 3, 4, 4, 6, True, churn=churn, seed=3)
    for i in range(6):
        mag = float(np.max(np.abs(ref_lats[max(i - 1, 0)])))
        mag = max(mag, float(np.max(np.abs(ref_lats[i]))))
        _close_ulps(lats[i + 1], ref_lats[i + 1], mag, 16, f"latents after churn step {i}")


def test_churn_window():
    """Churn noise exactly where diffusers applies it: γ = min(s_churn/N, √2 − 1) for σ in [s_tmin, s_tmax]."""
    sched = schedules.euler_schedule(10)
    steps = sched.plan("v_prediction", s_churn=2.0, s_tmin=1.0, s_tmax=100.0).steps
    for sig, step in zip(sched.sigmas[:-1], steps):
        gamma = min(2.0 / 10, 2**0.5 - 1) if 1.0 <= sig <= 100.0 else 0.0
        want = float(sig) * ((1 + gamma) ** 2 - 1) ** 0.5
        assert abs(step.noise_in - want) <= 1e-6 * float(sig) and step.draws_noise == (gamma > 0)
        assert abs(step.a - 1 / (float(sig) * (1 + gamma))) <= 1e-6 * step.a  # 1/σ̂
    assert any(s.noise_in == 0 for s in steps) and any(s.noise_in > 0 for s in steps)


def test_last_step_lands_on_denoised():
    """σ' = 0: x_next = D = c_skip·x + c_out·v."""
    sched = schedules.euler_schedule(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 4, 3, 3)).astype(np.float32)
    v = rng.standard_normal((1, 2, 4, 3, 3)).astype(np.float32)
    s = _C.Sampler(1, 2, 4, 3, 3)
    s.set_latents(x)
    s.step(v, False, **sched.plan().steps[1].coefficients())
    sig = np.float32(sched.sigmas[1])
    want = schedules.c_skip(sig) * x + schedules.c_out(sig) * v
    np.testing.assert_allclose(s.latents, want, rtol=1e-5, atol=1e-6)


def test_linear_update_with_the_previous_denoised():
    """x' = a·x + b·D + c·D_prev with D_prev the D of the previous linear step, then + noise_out·ε."""
    rng = np.random.default_rng(2)
    x, f1, f2, eps = (rng.standard_normal((2, 1, 4, 3, 3)).astype(np.float32) for _ in range(4))
    s = _C.Sampler(2, 1, 4, 3, 3, 0)
    s.set_latents(x)
    k1 = dict(c_skip=0.5, c_out=-0.25, update="linear", a=0.75, b=0.5)
    s.step(f1, False, **k1)
    d1 = np.float32(0.5) * x + np.float32(-0.25) * f1
    x1 = np.float32(0.75) * x + np.float32(0.5) * d1
    np.testing.assert_allclose(s.latents, x1, rtol=1e-6, atol=1e-6)
    s.step(f2, False, None, eps, c_skip=1.0, c_out=-2.0, update="linear", a=0.5, b=1.5, c=-0.5, noise_out=0.125)
    d2 = x1 + np.float32(-2.0) * f2
    want = np.float32(0.5) * x1 + np.float32(1.5) * d2 - np.float32(0.5) * d1 + np.float32(0.125) * eps
    np.testing.assert_allclose(s.latents, want, rtol=1e-5, atol=1e-5)


def test_bad_inputs():
    k = schedules.euler_schedule(3).plan().steps[0].coefficients()
    s = _C.Sampler(1, 2, 4, 3, 3)
    good = np.zeros((2, 2, 4, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match="model output"):
        s.step(np.zeros((1, 2, 4, 3, 3), np.float32), True, **k)
    with pytest.raises(ValueError, match="c_in"):
        s.model_input(float("nan"), True)
    bad = good.copy()
    bad[0, 0, 0, 0, 0] = np.nan
    before = s.latents
    with pytest.raises(ValueError, match="UNet output"):
        s.step(bad, True, **k)
    np.testing.assert_array_equal(s.latents, before)  # refused before touching the state
    with pytest.raises(ValueError, match="c_out"):
        s.step(good, True, **{**k, "c_out": float("inf")})
    with pytest.raises(TypeError, match="c_skip"):
        s.step(good, True, **{n: v for n, v in k.items() if n != "c_skip"})
    with pytest.raises(ValueError, match="update"):
        s.step(good, True, **{**k, "update": "heun"})
    with pytest.raises(ValueError, match="previous linear step"):
        s.step(good, True, **{**k, "update": "linear", "c": 0.5})
    with pytest.raises(ValueError, match="one draw per step"):
        s.step(good, True, None, np.zeros((1, 2, 4, 3, 3), np.float32), **{**k, "noise_in": 1.0, "noise_out": 1.0})
    np.testing.assert_array_equal(s.latents, before)
    with pytest.raises(svdc.ShapeError, match="guidance"):
        s.step(good, True, np.ones(3, np.float32), **k)
    with pytest.raises(svdc.ShapeError, match="cond"):
        s.set_cond(np.zeros((1, 4, 3, 4), np.float32))
    with pytest.raises(svdc.ShapeError, match="float32"):
        s.set_latents(np.zeros((1, 2, 4, 3, 3), np.float64))
    with pytest.raises(ValueError, match="shape"):
        _C.Sampler(0, 2, 4, 3, 3)
    with pytest.raises(ValueError, match="noise"):
        s.step(good, True, **{**k, "noise_in": 0.5})
    with pytest.raises(ValueError, match="device|emu|cuda"):
        _C.Sampler(1, 2, 4, 3, 3, device="tpu")


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize("cfg", [True, False])
def test_prediction_types_without_concat_conditioning(torch_cpu, prediction, cfg):
    """epsilon / sample prediction with cond_channels = 0 (the model input is c_in·x alone, as an SD UNet takes it)
    against diffusers' EulerDiscreteScheduler with that prediction_type (same Karras sigmas), with churn."""
    from diffusers import EulerDiscreteScheduler

    b, f, c, h, w, steps = 1, 2, 4, 3, 5, 5
    churn = dict(s_churn=1.0, s_tmin=0.1, s_tmax=200.0, s_noise=1.0)
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((b, f, c, h, w)).astype(np.float32)
    outs = [rng.standard_normal((2 * b if cfg else b, f, c, h, w)).astype(np.float32) for _ in range(steps)]
    guidance = schedules.linear_guidance(1.0, 2.0, f)

    ref = EulerDiscreteScheduler(**dict(SVD_SCHEDULER_CONFIG, prediction_type=prediction))
    ref.set_timesteps(steps)
    ref.set_begin_index(0)  # non-v configs get discrete timesteps, which can repeat: index by step, not by value
    gen = torch_cpu.Generator().manual_seed(4)
    lat = torch_cpu.from_numpy(x0) * ref.init_noise_sigma
    g = torch_cpu.from_numpy(guidance)[None, :, None, None, None]
    ref_inputs, ref_lats = [], []
    for i, t in enumerate(ref.timesteps):
        ref_inputs.append(ref.scale_model_input(torch_cpu.cat([lat] * 2) if cfg else lat, t).numpy())
        o = torch_cpu.from_numpy(outs[i])
        if cfg:
            ou, oc = o.chunk(2)
            o = ou + g * (oc - ou)
        lat = ref.step(o, t, lat, generator=gen, **churn).prev_sample
        ref_lats.append(lat.numpy().copy())

    plan = schedules.euler_schedule(steps).plan(prediction, **churn)
    s = _C.Sampler(b, f, c, h, w, 0)
    s.set_latents(x0, float(plan.init_noise_sigma))
    sg = svdc.Generator(4)
    prev = float(np.max(np.abs(x0 * plan.init_noise_sigma)))
    for i, step in enumerate(plan.steps):
        inp = s.model_input(step.c_in, cfg)
        assert inp.shape == ((2 * b if cfg else b), f, c, h, w)
        # as above: the rounding of the previous latents is passed on (16 float32 ulps of their size)
        _close_ulps(inp, ref_inputs[i], prev, 16, f"model input {i}")
        noise = sg.randn((b, f, c, h, w)) if step.draws_noise else None
        s.step(outs[i], cfg, guidance if cfg else None, noise, **step.coefficients())
        mag = max(prev, float(np.max(np.abs(ref_lats[i]))))
        _close_ulps(s.latents, ref_lats[i], mag, 16, f"latents after step {i}")
        prev = float(np.max(np.abs(ref_lats[i])))


def test_prediction_type_and_cond_channels_refused():
    sigmas = schedules.euler_schedule(2).sigmas
    with pytest.raises(ValueError, match="prediction_type"):
        schedules.euler_steps(sigmas, "x0")
    with pytest.raises(ValueError, match="cond_channels"):
        _C.Sampler(1, 2, 4, 3, 3, 3)
