"""Every scalar of sampling, computed once here (the C sampler only applies them to tensors): SVD's Karras/EDM
sigmas and c_noise timesteps, sgm's EDM discretisation (SV3D), the initial noise scale, the EDM preconditioning,
per-frame guidance vectors, and the diffusers-named schedulers (EulerDiscrete, EulerAncestralDiscrete, DDIM,
DPMSolverMultistep) as plans of per-step coefficients — with diffusers' rounding."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

# SVD's scheduler_config.json (EulerDiscreteScheduler): the values that matter at inference.
SVD_SIGMA_MIN = 0.002
SVD_SIGMA_MAX = 700.0
KARRAS_RHO = 7.0


def karras_sigmas(num_steps: int, sigma_min: float = SVD_SIGMA_MIN, sigma_max: float = SVD_SIGMA_MAX,
                  rho: float = KARRAS_RHO) -> np.ndarray:
    """(num_steps + 1,) float32: σ_i = (σmax^(1/ρ) + i/(N−1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ in float64 as diffusers'
    _convert_to_karras (np.linspace ramp), cast to float32, then a final 0."""
    _check_steps(num_steps)
    if not (0 < sigma_min < sigma_max):
        raise ValueError(f"sigma_min/sigma_max: expected 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = np.linspace(0, 1, num_steps)  # float64; a single step gives [0] -> σ_max
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return np.concatenate([sigmas, [0.0]]).astype(np.float32)


def timesteps_from_sigmas(sigmas: np.ndarray) -> np.ndarray:
    """(N,) float32 c_noise = 0.25·ln σ_i for every σ but the final 0 (diffusers: 0.25 * sigma.log() in fp32)."""
    s = np.asarray(sigmas, dtype=np.float32)[:-1]
    return (np.float32(0.25) * np.log(s)).astype(np.float32)


def init_noise_sigma(sigmas: np.ndarray, timestep_spacing: str = "leading") -> np.float32:
    """The initial noise scale: √(max σ² + 1) in float32 for "leading" spacing (SVD), max σ for linspace/trailing."""
    m = np.float32(np.max(np.asarray(sigmas, dtype=np.float32)))
    if timestep_spacing in ("linspace", "trailing"):
        return m
    return np.float32(np.sqrt(m * m + np.float32(1.0)))


def c_in(sigma) -> np.float32:
    """1/√(σ²+1); diffusers divides by √(σ²+1) (scale_model_input)."""
    s = np.float32(sigma)
    return np.float32(np.float32(1.0) / np.sqrt(s * s + np.float32(1.0)))


def c_skip(sigma) -> np.float32:
    """1/(σ²+1)."""
    s = np.float32(sigma)
    return np.float32(np.float32(1.0) / (s * s + np.float32(1.0)))


def c_out(sigma) -> np.float32:
    """−σ/√(σ²+1) (v-prediction, σ_data = 1)."""
    s = np.float32(sigma)
    return np.float32(-s / np.sqrt(s * s + np.float32(1.0)))


def _check_steps(num_steps) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_inference_steps: expected an int >= 1, got {num_steps!r}")


def _check_guidance(min_scale: float, max_scale: float, num_frames: int) -> None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames: expected an int >= 1, got {num_frames!r}")
    for name, v in (("min_guidance_scale", min_scale), ("max_guidance_scale", max_scale)):
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}: expected a finite number, got {v!r}")
    if float(min_scale) > float(max_scale):
        raise ValueError(f"min_guidance_scale ({min_scale}) must be <= max_guidance_scale ({max_scale})")


def linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace(start, end, steps) for float32 on the CPU: step = (end − start)/(steps − 1) in float32, the
    first half start + step·i and the second half end − step·(steps − 1 − i), each a fused multiply-add (torch's
    build contracts them), evaluated exactly in float64 and rounded once to float32."""
    start32, end32 = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([start32], dtype=np.float32)
    step = np.float64(np.float32((end32 - start32) / np.float32(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    half = steps // 2
    lo = np.float64(start32) + step * i[:half]  # step * i is exact in float64 (24-bit x small int)
    hi = np.float64(end32) - step * (steps - 1 - i[half:])
    return np.concatenate([lo, hi]).astype(np.float32)


def linear_guidance(min_scale: float, max_scale: float, num_frames: int) -> np.ndarray:
    """(F,) float32 per-frame guidance linspace(min, max, F): the diffusers and sgm SVD schedule."""
    _check_guidance(min_scale, max_scale, num_frames)
    return linspace_f32(min_scale, max_scale, num_frames)


def triangle_guidance(min_scale: float, max_scale: float, num_frames: int, period: float = 1.0) -> np.ndarray:
    """(F,) float32 SV3D schedule (sgm TrianglePredictionGuider): min + (max − min)·2·|v − floor(v + 0.5)| with
    v = f/(F−1)/period: min at both ends, max in the middle."""
    _check_guidance(min_scale, max_scale, num_frames)
    v = linspace_f32(0.0, 1.0, num_frames) / np.float32(period)
    tri = np.float32(2.0) * np.abs(v - np.floor(v + np.float32(0.5)))
    return (np.float32(min_scale) + np.float32(max_scale - min_scale) * tri).astype(np.float32)


# --- what the C sampler executes ---------------------------------------------------------------------------------
# Every scalar of a sampling step is computed here, once; csrc/models/sampler.c only applies them to tensors.
_F32 = np.float32


@dataclass(frozen=True)
class Step:
    """The scalars of one sampler step (csrc/models/sampler.h): the model input c_in·x; churn x̂ = x + noise_in·ε;
    the denoised D = c_skip·x̂ + c_out·F̂ (F̂ the guided model output); the update "euler" (x' = x̂ + b·(a·x̂ − a·D),
    a = 1/σ̂, b = σ' − σ̂) or "linear" (x' = a·x̂ + b·D + c·D_prev); ancestral noise x' += noise_out·ε.
    draws_noise: the scheduler draws ε from the generator at this step (diffusers' EulerAncestral draws even when
    its scale is 0, so the generator advances as there)."""

    c_in: float
    c_skip: float
    c_out: float
    update: str
    a: float
    b: float
    c: float = 0.0
    noise_in: float = 0.0
    noise_out: float = 0.0
    draws_noise: bool = False

    def coefficients(self) -> dict:
        """The keyword arguments of svdc._C.Sampler.step (exact float32 values)."""
        return dict(c_skip=self.c_skip, c_out=self.c_out, update=self.update, a=self.a, b=self.b, c=self.c,
                    noise_in=self.noise_in, noise_out=self.noise_out)


def _step(c_in, c_skip, c_out, update, a, b, c=0.0, noise_in=0.0, noise_out=0.0, draws_noise=False) -> Step:
    """A Step whose scalars are rounded once to float32 (the C sampler's precision)."""
    f = lambda v: float(_F32(v))  # noqa: E731
    return Step(f(c_in), f(c_skip), f(c_out), update, f(a), f(b), f(c), f(noise_in), f(noise_out),
                bool(draws_noise or noise_in or noise_out))


@dataclass(frozen=True)
class SamplingPlan:
    """A whole run: timesteps (N,) float32 (the UNet's timestep input per step), init_noise_sigma (x_0 = noise ×
    it) and the N steps' scalars."""

    timesteps: np.ndarray
    init_noise_sigma: np.float32
    steps: tuple

    @property
    def num_steps(self) -> int:
        return len(self.steps)


def _denoise_coefs(prediction_type: str, sigma, sigma_hat) -> tuple:
    """(c_skip, c_out) of the Euler schedulers' D in float32: v (σ_data = 1, evaluated at σ as diffusers),
    epsilon (at σ̂ as diffusers), sample."""
    if prediction_type == "v_prediction":
        return c_skip(sigma), c_out(sigma)
    if prediction_type == "epsilon":
        return _F32(1.0), -_F32(sigma_hat)
    if prediction_type == "sample":
        return _F32(0.0), _F32(1.0)
    raise ValueError(f"prediction_type: expected 'v_prediction', 'epsilon' or 'sample', got {prediction_type!r}")


def euler_steps(sigmas: np.ndarray, prediction_type: str = "v_prediction", s_churn: float = 0.0,
                s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0) -> tuple:
    """The steps of diffusers' EulerDiscreteScheduler.step over `sigmas` (N+1,), in float32: churn γ =
    min(s_churn/N, √2−1) inside [s_tmin, s_tmax], σ̂ = σ(γ+1), x̂ = x + s_noise·√(σ̂²−σ²)·ε, D by the prediction
    type, x' = x̂ + (x̂ − D)/σ̂·(σ' − σ̂)."""
    sig = np.asarray(sigmas, dtype=np.float32)
    n = len(sig) - 1
    cap = _F32(2.0 ** 0.5 - 1.0)
    steps = []
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        gamma = _F32(0.0)
        if s_churn > 0 and _F32(s_tmin) <= s <= _F32(s_tmax):
            gamma = min(_F32(s_churn) / _F32(n), cap)
        s_hat = s * (gamma + _F32(1.0))
        noise_in = _F32(s_noise) * np.sqrt(s_hat * s_hat - s * s) if gamma > 0 else 0.0
        skip, out = _denoise_coefs(prediction_type, s, s_hat)
        steps.append(_step(c_in(s), skip, out, "euler", _F32(1.0) / s_hat, s_next - s_hat, noise_in=noise_in))
    return tuple(steps)


@dataclass(frozen=True)
class EulerSchedule:
    """Euler sampling over sigmas (N+1,) with timesteps (N,) and init_noise_sigma (SVD, SV3D, SD's Euler)."""

    sigmas: np.ndarray
    timesteps: np.ndarray
    init_noise_sigma: np.float32

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def plan(self, prediction_type: str = "v_prediction", **churn) -> SamplingPlan:
        """The sampler's plan (euler_steps; churn: s_churn, s_tmin, s_tmax, s_noise)."""
        return SamplingPlan(self.timesteps, self.init_noise_sigma, euler_steps(self.sigmas, prediction_type, **churn))


def euler_schedule(num_steps: int, config: Mapping | None = None) -> EulerSchedule:
    """The EulerDiscreteScheduler(use_karras_sigmas, continuous v-prediction) schedule for `config` (a diffusers
    scheduler_config; None = SVD's). Other scheduler kinds are refused rather than silently sampled wrongly."""
    cfg = dict(config or {})
    if cfg:
        unsupported = []
        if cfg.get("prediction_type", "v_prediction") != "v_prediction":
            unsupported.append(f"prediction_type={cfg.get('prediction_type')!r}")
        if not cfg.get("use_karras_sigmas", True):
            unsupported.append("use_karras_sigmas=False")
        if cfg.get("timestep_type", "continuous") != "continuous":
            unsupported.append(f"timestep_type={cfg.get('timestep_type')!r}")
        if cfg.get("final_sigmas_type", "zero") != "zero":
            unsupported.append(f"final_sigmas_type={cfg.get('final_sigmas_type')!r}")
        if unsupported:
            raise ValueError("scheduler config: svdc samples SVD's EulerDiscreteScheduler (v_prediction, Karras, "
                             "continuous timesteps, final sigma 0); unsupported: " + ", ".join(unsupported))
    sigma_min = float(cfg.get("sigma_min") if cfg.get("sigma_min") is not None else SVD_SIGMA_MIN)
    sigma_max = float(cfg.get("sigma_max") if cfg.get("sigma_max") is not None else SVD_SIGMA_MAX)
    sigmas = karras_sigmas(num_steps, sigma_min, sigma_max)
    return EulerSchedule(sigmas=sigmas, timesteps=timesteps_from_sigmas(sigmas),
                         init_noise_sigma=init_noise_sigma(sigmas, cfg.get("timestep_spacing", "leading")))


def sgm_edm_schedule(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> EulerSchedule:
    """sgm's EDMDiscretization evaluated in float32 as torch does (for σ_max 700: σ_0 = 700.00012, not 700), a
    final 0, c_noise = ¼·ln σ and the initial noise scale √(1 + σ_0²) (SV3D)."""
    _check_steps(num_steps)
    ramp = linspace_f32(0.0, 1.0, num_steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (np.float32(hi) + ramp * np.float32(lo - hi)) ** np.float32(rho)
    sigmas = np.concatenate([sig, [0.0]]).astype(np.float32)
    return EulerSchedule(sigmas=sigmas, timesteps=timesteps_from_sigmas(sigmas),
                         init_noise_sigma=init_noise_sigma(sigmas))


# --- diffusers schedulers for discrete-time models (Stable Diffusion 2.x) --------------------------------------
# Each has .prediction_type and .plan(num_inference_steps) -> SamplingPlan, refuses unsupported options by name at
# construction, and follows the diffusers class of the same name (scalars in float32 where diffusers uses torch
# float32; DDIM and DPM-Solver coefficients in float64, rounded once).

_SPACINGS = ("leading", "trailing", "linspace")
_PREDICTIONS = ("epsilon", "v_prediction")
_BETA_SCHEDULES = ("linear", "scaled_linear")


def _betas(cfg: Mapping) -> np.ndarray:
    """(T,) float32 betas as diffusers builds them in torch float32 (linear / scaled_linear / trained_betas)."""
    n = int(cfg["num_train_timesteps"])
    if cfg.get("trained_betas") is not None:
        betas = np.asarray(cfg["trained_betas"], dtype=np.float32)
        if betas.shape != (n,):
            raise ValueError(f"scheduler config: trained_betas: expected {n} values, got shape {betas.shape}")
        return betas
    start, end = float(cfg["beta_start"]), float(cfg["beta_end"])
    if cfg["beta_schedule"] == "linear":
        return linspace_f32(start, end, n)
    return linspace_f32(start ** 0.5, end ** 0.5, n) ** 2  # scaled_linear: squared in float32


def _discrete_config(name: str, defaults: dict, config: Mapping | None, allowed: tuple, flags: tuple) -> dict:
    """A discrete-time scheduler's config (defaults, then the user's non-private keys) with every option svdc does
    not implement refused by name in one ValueError: `allowed` pairs a key with its supported values, `flags` are
    booleans that must be off."""
    cfg = dict(defaults)
    cfg.update({k: v for k, v in dict(config or {}).items() if not k.startswith("_") and v is not None or
                k == "trained_betas"})
    unsupported = [f"{key}={cfg[key]!r} (supported: {', '.join(map(repr, values))})" for key, values in allowed
                   if cfg[key] not in values]
    unsupported += [f"{key}=True" for key in flags if cfg[key]]
    n = cfg["num_train_timesteps"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        unsupported.append(f"num_train_timesteps={n!r} (expected an int >= 2)")
    if unsupported:
        raise ValueError(f"scheduler config: {name} options svdc does not implement: " + "; ".join(unsupported))
    return cfg


def _train_table(cfg: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(alphas_cumprod, train_sigmas), both (T,) float32. torch's CPU cumprod accumulates float32 inputs in double,
    then rounds once; σ_t = √((1 − ᾱ_t)/ᾱ_t), ascending in t."""
    ac = np.cumprod((np.float32(1.0) - _betas(cfg)).astype(np.float64)).astype(np.float32)
    return ac, np.sqrt((np.float32(1.0) - ac) / ac).astype(np.float32)


def _check_step_count(num_steps, num_train_timesteps: int) -> int:
    _check_steps(num_steps)
    if num_steps > num_train_timesteps:
        raise ValueError(f"num_inference_steps: expected at most num_train_timesteps = {num_train_timesteps}, "
                         f"got {num_steps}")
    return int(num_steps)


def _spaced_timesteps(spacing: str, n_train: int, num_steps: int, steps_offset: int) -> np.ndarray:
    """(N,) float64 timesteps, highest first, as diffusers' Euler/DDIM set_timesteps space them (linspace is not
    rounded here: Euler keeps the fractions, DDIM rounds)."""
    if spacing == "linspace":
        return np.linspace(0, n_train - 1, num_steps)[::-1].copy()
    if spacing == "leading":
        return (np.arange(0, num_steps) * (n_train // num_steps)).round()[::-1] + steps_offset
    return np.arange(n_train, 0, -n_train / num_steps).round() - 1  # trailing


class _DiscreteScheduler:
    """What the diffusers schedulers for discrete-time models share: the config check, the training table."""

    _NAME = ""
    _DEFAULTS: dict = {}
    _ALLOWED: tuple = ()
    _FLAGS: tuple = ()

    def __init__(self, config: Mapping | None = None):
        self.config = _discrete_config(self._NAME, self._DEFAULTS, config, self._ALLOWED, self._FLAGS)
        self.alphas_cumprod, self.train_sigmas = _train_table(self.config)

    @classmethod
    def from_config(cls, config) -> "_DiscreteScheduler":
        """diffusers' Scheduler.from_config: a config mapping (or anything with a .config, e.g. another
        scheduler) whose keys this class knows; the others (another class's options) are dropped."""
        cfg = dict(getattr(config, "config", config) or {})
        return cls({k: v for k, v in cfg.items() if k in cls._DEFAULTS})

    @property
    def prediction_type(self) -> str:
        return self.config["prediction_type"]

    def __repr__(self) -> str:
        return f"svdc.schedules.{self._NAME}(prediction_type={self.prediction_type!r}, " \
               f"timestep_spacing={self.config['timestep_spacing']!r})"


class EulerDiscreteScheduler(_DiscreteScheduler):
    """diffusers' EulerDiscreteScheduler for discrete-time models (SD 2.x, SD-Turbo: epsilon or v_prediction,
    timestep spacing leading / trailing / linspace, sigmas interpolated linearly from the training table). SVD's
    continuous-time Karras variant is `euler_schedule`."""

    _NAME = "EulerDiscreteScheduler"
    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, prediction_type="epsilon", interpolation_type="linear",
                     use_karras_sigmas=False, use_exponential_sigmas=False, use_beta_sigmas=False,
                     timestep_spacing="linspace", timestep_type="discrete", steps_offset=0,
                     rescale_betas_zero_snr=False, final_sigmas_type="zero")
    _ALLOWED = (("prediction_type", _PREDICTIONS), ("timestep_spacing", _SPACINGS),
                ("beta_schedule", _BETA_SCHEDULES), ("interpolation_type", ("linear",)),
                ("timestep_type", ("discrete",)), ("final_sigmas_type", ("zero",)))
    _FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr")

    def timesteps(self, num_steps: int) -> np.ndarray:
        """(N,) float32 training timesteps visited, highest first, by the configured spacing."""
        n = int(self.config["num_train_timesteps"])
        num_steps = _check_step_count(num_steps, n)
        t = _spaced_timesteps(self.config["timestep_spacing"], n, num_steps, int(self.config["steps_offset"]))
        return np.ascontiguousarray(t, dtype=np.float32)

    def schedule(self, num_steps: int) -> EulerSchedule:
        """sigmas (N+1,) = the training sigmas interpolated at the timesteps, then 0; the UNet gets the timesteps."""
        t = self.timesteps(num_steps)
        sigmas = np.interp(t, np.arange(len(self.train_sigmas)), self.train_sigmas)  # float64, as diffusers
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        return EulerSchedule(sigmas=sigmas, timesteps=t,
                             init_noise_sigma=init_noise_sigma(sigmas, self.config["timestep_spacing"]))

    def plan(self, num_steps: int) -> SamplingPlan:
        return self.schedule(num_steps).plan(self.prediction_type)


class EulerAncestralDiscreteScheduler(EulerDiscreteScheduler):
    """diffusers' EulerAncestralDiscreteScheduler: Euler's timesteps and sigmas; each step goes to σ_down and adds
    σ_up·ε with ε drawn from the generator after the model call (σ_up = √(σ'²(σ² − σ'²)/σ²), σ_down =
    √(σ'² − σ_up²), float32)."""

    _NAME = "EulerAncestralDiscreteScheduler"
    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, prediction_type="epsilon", timestep_spacing="linspace", steps_offset=0,
                     rescale_betas_zero_snr=False)
    _ALLOWED = (("prediction_type", _PREDICTIONS), ("timestep_spacing", _SPACINGS),
                ("beta_schedule", _BETA_SCHEDULES))
    _FLAGS = ("rescale_betas_zero_snr",)

    def plan(self, num_steps: int) -> SamplingPlan:
        sched = self.schedule(num_steps)
        steps = []
        for s, s_to in zip(sched.sigmas[:-1], sched.sigmas[1:]):
            up = np.sqrt(s_to * s_to * (s * s - s_to * s_to) / (s * s))
            down = np.sqrt(s_to * s_to - up * up)
            skip, out = _denoise_coefs(self.prediction_type, s, s)
            steps.append(_step(c_in(s), skip, out, "euler", _F32(1.0) / s, down - s, noise_out=up,
                               draws_noise=True))
        return SamplingPlan(sched.timesteps, sched.init_noise_sigma, tuple(steps))


def _vp_denoise_coefs(prediction_type: str, alpha: float, sigma: float) -> tuple:
    """(c_skip, c_out) of x_0 from x = α·x_0 + σ·ε (variance preserving): epsilon x_0 = (x − σ·F)/α,
    v x_0 = α·x − σ·F."""
    if prediction_type == "epsilon":
        return 1.0 / alpha, -sigma / alpha
    return alpha, -sigma


class DDIMScheduler(_DiscreteScheduler):
    """diffusers' DDIMScheduler with eta = 0 (its pipelines' default), epsilon or v_prediction, every spacing:
    from timestep t to prev = t − T/N (ᾱ_prev = final_alpha_cumprod below 0: 1 with set_alpha_to_one, else ᾱ_0),
    x' = √ᾱ_prev·x_0 + √(1 − ᾱ_prev)·ε̂ with ε̂ = (x − √ᾱ_t·x_0)/√(1 − ᾱ_t), i.e. x' = a·x + b·x_0."""

    _NAME = "DDIMScheduler"
    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, clip_sample=True, set_alpha_to_one=True, steps_offset=0,
                     prediction_type="epsilon", thresholding=False, timestep_spacing="leading",
                     rescale_betas_zero_snr=False)
    _ALLOWED = (("prediction_type", _PREDICTIONS), ("timestep_spacing", _SPACINGS),
                ("beta_schedule", _BETA_SCHEDULES))
    _FLAGS = ("clip_sample", "thresholding", "rescale_betas_zero_snr")

    def __init__(self, config: Mapping | None = None):
        super().__init__(config)
        self.final_alpha_cumprod = np.float32(1.0) if self.config["set_alpha_to_one"] else self.alphas_cumprod[0]

    def timesteps(self, num_steps: int) -> np.ndarray:
        """(N,) int64 timesteps, highest first (diffusers' DDIMScheduler.set_timesteps)."""
        n = int(self.config["num_train_timesteps"])
        num_steps = _check_step_count(num_steps, n)
        t = _spaced_timesteps(self.config["timestep_spacing"], n, num_steps, int(self.config["steps_offset"]))
        t = t.round().astype(np.int64)
        if np.any(t < 0) or np.any(t >= n):
            raise ValueError(f"scheduler config: steps_offset={self.config['steps_offset']} gives timesteps "
                             f"{t.tolist()} outside [0, {n})")
        return t

    def plan(self, num_steps: int) -> SamplingPlan:
        t = self.timesteps(num_steps)
        prev = t - int(self.config["num_train_timesteps"]) // len(t)
        steps = []
        for ti, pi in zip(t, prev):
            ac = self.alphas_cumprod[ti]
            ac_prev = self.alphas_cumprod[pi] if pi >= 0 else self.final_alpha_cumprod
            beta, beta_prev = _F32(1.0) - ac, _F32(1.0) - _F32(ac_prev)  # torch float32, as diffusers
            sa, sb = math.sqrt(ac), math.sqrt(beta)
            sa_prev, sb_prev = math.sqrt(ac_prev), math.sqrt(beta_prev)
            skip, out = _vp_denoise_coefs(self.prediction_type, sa, sb)
            steps.append(_step(1.0, skip, out, "linear", sb_prev / sb, sa_prev - sb_prev * sa / sb))
        return SamplingPlan(t.astype(np.float32), np.float32(1.0), tuple(steps))


class DPMSolverMultistepScheduler(_DiscreteScheduler):
    """diffusers' DPMSolverMultistepScheduler, algorithm_type "dpmsolver++" (data prediction), solver_order 1 or 2
    (DPM++ 2M), solver_type midpoint or heun, with lower_order_final / euler_at_final / final_sigmas_type ("zero"
    or "sigma_min") deciding the order of the last step as diffusers does. x lives in the variance-preserving
    space (x = α·x_0 + σ·ε, α = 1/√(s²+1), σ = s·α for the sigma s); λ = ln α − ln σ, h = λ_t − λ_s:
    first order x' = (σ_t/σ_s)·x − α_t(e^−h − 1)·D; second order adds D_prev through r = h_prev/h."""

    _NAME = "DPMSolverMultistepScheduler"
    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, solver_order=2, prediction_type="epsilon", thresholding=False,
                     algorithm_type="dpmsolver++", solver_type="midpoint", lower_order_final=True,
                     euler_at_final=False, use_karras_sigmas=False, use_exponential_sigmas=False,
                     use_beta_sigmas=False, use_lu_lambdas=False, use_flow_sigmas=False, final_sigmas_type="zero",
                     lambda_min_clipped=-float("inf"), variance_type=None, timestep_spacing="linspace",
                     steps_offset=0, rescale_betas_zero_snr=False, use_dynamic_shifting=False)
    _ALLOWED = (("prediction_type", _PREDICTIONS), ("timestep_spacing", _SPACINGS),
                ("beta_schedule", _BETA_SCHEDULES), ("algorithm_type", ("dpmsolver++",)),
                ("solver_order", (1, 2)), ("solver_type", ("midpoint", "heun")),
                ("final_sigmas_type", ("zero", "sigma_min")), ("lambda_min_clipped", (-float("inf"),)),
                ("variance_type", (None,)))
    _FLAGS = ("thresholding", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas",
              "use_flow_sigmas", "rescale_betas_zero_snr", "use_dynamic_shifting")

    def timesteps(self, num_steps: int) -> np.ndarray:
        """(N,) int64 timesteps, highest first (diffusers' set_timesteps: N + 1 points with the last dropped for
        linspace and leading)."""
        n = int(self.config["num_train_timesteps"])
        num_steps = _check_step_count(num_steps, n)
        spacing = self.config["timestep_spacing"]
        if spacing == "linspace":
            t = np.linspace(0, n - 1, num_steps + 1).round()[::-1][:-1]
        elif spacing == "leading":
            t = (np.arange(0, num_steps + 1) * (n // (num_steps + 1))).round()[::-1][:-1]
            t = t + int(self.config["steps_offset"])
        else:
            t = np.arange(n, 0, -n / num_steps).round() - 1
        t = t.astype(np.int64)
        if np.any(t < 0) or np.any(t >= n):
            raise ValueError(f"scheduler config: steps_offset={self.config['steps_offset']} gives timesteps "
                             f"{t.tolist()} outside [0, {n})")
        return t

    def sigmas(self, num_steps: int) -> np.ndarray:
        """(N+1,) float32: the training sigmas interpolated at the timesteps, then 0 or the smallest (sigma_min)."""
        t = self.timesteps(num_steps)
        sig = np.interp(t, np.arange(len(self.train_sigmas)), self.train_sigmas)
        last = self.train_sigmas[0] if self.config["final_sigmas_type"] == "sigma_min" else 0.0
        return np.concatenate([sig, [last]]).astype(np.float32)

    def _order(self, i: int, n: int) -> int:
        """diffusers' choice: first order for the first step and (lower_order_final) the last."""
        last = i == n - 1 and (self.config["euler_at_final"] or (self.config["lower_order_final"] and n < 15) or
                               self.config["final_sigmas_type"] == "zero")
        return 1 if self.config["solver_order"] == 1 or i == 0 or last else 2

    def plan(self, num_steps: int) -> SamplingPlan:
        sig = self.sigmas(num_steps).astype(np.float64)
        alpha = 1.0 / np.sqrt(sig * sig + 1.0)  # (N+1,) α_t of each sigma; σ_t = s·α_t
        vp_sigma = sig * alpha
        with np.errstate(divide="ignore"):
            lam = np.log(alpha) - np.log(vp_sigma)  # +inf at a final sigma of 0
        n = len(sig) - 1
        steps = []
        for i in range(n):
            skip, out = _vp_denoise_coefs(self.prediction_type, alpha[i], vp_sigma[i])
            if sig[i + 1] == 0:  # λ_t = ∞: x' = D
                steps.append(_step(1.0, skip, out, "linear", 0.0, 1.0))
                continue
            h = lam[i + 1] - lam[i]
            a = vp_sigma[i + 1] / vp_sigma[i]
            phi = alpha[i + 1] * math.expm1(-h)  # α_t(e^−h − 1)
            if self._order(i, n) == 1:
                steps.append(_step(1.0, skip, out, "linear", a, -phi))
                continue
            r = (lam[i] - lam[i - 1]) / h
            if self.config["solver_type"] == "midpoint":  # D1 = (D − D_prev)/r weighted −½φ
                k1 = -0.5 * phi / r
            else:  # heun: D1 weighted α_t((e^−h − 1)/h + 1)
                k1 = alpha[i + 1] * (math.expm1(-h) / h + 1.0) / r
            steps.append(_step(1.0, skip, out, "linear", a, -phi + k1, -k1))
        return SamplingPlan(self.timesteps(num_steps).astype(np.float32), np.float32(1.0), tuple(steps))


_SCHEDULER_CLASSES = {cls._NAME: cls for cls in (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
                                                  DDIMScheduler, DPMSolverMultistepScheduler)}
SUPPORTED_SCHEDULERS = tuple(_SCHEDULER_CLASSES)


def scheduler_from_config(config: Mapping | None, where: str = "scheduler config"):
    """The scheduler a diffusers scheduler_config.json names (by `_class_name`; none = EulerDiscreteScheduler).
    Schedulers svdc does not implement are refused by name."""
    cfg = dict(config or {})
    name = cfg.get("_class_name") or "EulerDiscreteScheduler"
    if name not in SUPPORTED_SCHEDULERS:
        raise ValueError(f"{where}: _class_name={name!r} is not supported; svdc implements "
                         f"{', '.join(SUPPORTED_SCHEDULERS)}")
    try:
        return _SCHEDULER_CLASSES[name](cfg)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
