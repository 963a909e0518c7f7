"""svdc._C.Sampler against diffusers' EulerDiscreteScheduler (SVD config) driven the way
StableVideoDiffusionPipeline drives it: model input ([x;x]·c_in ⊕ [0; cond]), per-frame CFG, Euler steps to σ = 0,
churn with noise from the same seed, and refusal of bad input."""
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
    sched = schedules.euler_schedule(steps)
    kw = {}
    if churn:
        kw = dict(s_churn=churn.get("s_churn", 0.0), s_tmin=churn.get("s_tmin", 0.0),
                  s_tmax=churn.get("s_tmax", float("inf")), s_noise=churn.get("s_noise", 1.0))
    s = _C.Sampler(b, f, c, h, w, sched.sigmas, **kw)
    s.set_latents(x0, float(sched.init_noise_sigma))
    s.set_cond(cond)
    sg = svdc.Generator(seed)
    inputs, lats = [], [s.latents]
    for i in range(steps):
        inputs.append(s.model_input(i, cfg))
        noise = sg.randn((b, f, c, h, w)) if s.gamma(i) > 0 else None
        s.step(i, vs[i], cfg, guidance if cfg else None, noise)
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


def test_gamma_window():
    sched = schedules.euler_schedule(10)
    s = _C.Sampler(1, 1, 4, 2, 2, sched.sigmas, s_churn=2.0, s_tmin=1.0, s_tmax=100.0)
    gammas = [s.gamma(i) for i in range(10)]
    for sig, g in zip(sched.sigmas[:-1], gammas):
        want = min(2.0 / 10, 2**0.5 - 1) if 1.0 <= sig <= 100.0 else 0.0
        assert abs(g - want) < 1e-7
    assert any(g == 0 for g in gammas) and any(g > 0 for g in gammas)


def test_last_step_lands_on_denoised():
    """σ' = 0: x_next = D = c_skip·x + c_out·v."""
    sched = schedules.euler_schedule(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 4, 3, 3)).astype(np.float32)
    v = rng.standard_normal((1, 2, 4, 3, 3)).astype(np.float32)
    s = _C.Sampler(1, 2, 4, 3, 3, sched.sigmas)
    s.set_latents(x)
    s.step(1, v, False)
    sig = np.float32(sched.sigmas[1])
    want = schedules.c_skip(sig) * x + schedules.c_out(sig) * v
    np.testing.assert_allclose(s.latents, want, rtol=1e-5, atol=1e-6)


def test_bad_inputs():
    sched = schedules.euler_schedule(3)
    s = _C.Sampler(1, 2, 4, 3, 3, sched.sigmas)
    good = np.zeros((2, 2, 4, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match="v"):
        s.step(0, np.zeros((1, 2, 4, 3, 3), np.float32), True)
    with pytest.raises(ValueError, match="step"):
        s.step(3, good, True)
    with pytest.raises(ValueError, match="step"):
        s.model_input(-1, True)
    bad = good.copy()
    bad[0, 0, 0, 0, 0] = np.nan
    before = s.latents
    with pytest.raises(ValueError, match="UNet output"):
        s.step(0, bad, True)
    np.testing.assert_array_equal(s.latents, before)  # refused before touching the state
    with pytest.raises(svdc.ShapeError, match="guidance"):
        s.step(0, good, True, np.ones(3, np.float32))
    with pytest.raises(svdc.ShapeError, match="cond"):
        s.set_cond(np.zeros((1, 4, 3, 4), np.float32))
    with pytest.raises(svdc.ShapeError, match="float32"):
        s.set_latents(np.zeros((1, 2, 4, 3, 3), np.float64))
    with pytest.raises(ValueError, match="sigmas"):
        _C.Sampler(1, 2, 4, 3, 3, np.array([1.0, -1.0, 0.0], np.float32))
    with pytest.raises(ValueError, match="sigmas"):
        _C.Sampler(1, 2, 4, 3, 3, np.array([1.0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        _C.Sampler(0, 2, 4, 3, 3, sched.sigmas)
    churny = _C.Sampler(1, 2, 4, 3, 3, sched.sigmas, s_churn=1.0, s_tmax=1e9)
    with pytest.raises(ValueError, match="noise"):
        churny.step(0, good, True)


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

    sched = schedules.euler_schedule(steps)
    s = _C.Sampler(b, f, c, h, w, sched.sigmas, prediction_type=prediction, cond_channels=0, **churn)
    s.set_latents(x0, float(sched.init_noise_sigma))
    sg = svdc.Generator(4)
    prev = float(np.max(np.abs(x0 * sched.init_noise_sigma)))
    for i in range(steps):
        inp = s.model_input(i, cfg)
        assert inp.shape == ((2 * b if cfg else b), f, c, h, w)
        # as above: the rounding of the previous latents is passed on (16 float32 ulps of their size)
        _close_ulps(inp, ref_inputs[i], prev, 16, f"model input {i}")
        noise = sg.randn((b, f, c, h, w)) if s.gamma(i) > 0 else None
        s.step(i, outs[i], cfg, guidance if cfg else None, noise)
        mag = max(prev, float(np.max(np.abs(ref_lats[i]))))
        _close_ulps(s.latents, ref_lats[i], mag, 16, f"latents after step {i}")
        prev = float(np.max(np.abs(ref_lats[i])))


def test_prediction_type_and_cond_channels_refused():
    sigmas = schedules.euler_schedule(2).sigmas
    with pytest.raises(ValueError, match="prediction_type"):
        _C.Sampler(1, 2, 4, 3, 3, sigmas, prediction_type="x0")
    with pytest.raises(ValueError, match="cond_channels"):
        _C.Sampler(1, 2, 4, 3, 3, sigmas, cond_channels=3)
