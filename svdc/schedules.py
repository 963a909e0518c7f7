"""Noise schedules and guidance vectors of SVD sampling (diffusers EulerDiscreteScheduler with SVD's scheduler_config.json): Karras sigmas, c_noise timesteps, the initial
noise scale, the EDM v-prediction coefficients, and the per-frame guidance scales — with diffusers' rounding."""
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


@dataclass(frozen=True)
class EulerSchedule:
    """What the sampler needs for N steps: sigmas (N+1,), timesteps (N,), init_noise_sigma."""

    sigmas: np.ndarray
    timesteps: np.ndarray
    init_noise_sigma: np.float32
    final_scale: np.float32 = np.float32(1.0)  # the sampled latents times this are the result (DDIM: √ᾱ_end)

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)


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


# --- diffusers schedulers for discrete-time models (Stable Diffusion 2.x) --------------------------------------
# Python owns these scalars; the per-step tensor work is the C sampler's (svdc._C.Sampler).

SUPPORTED_SCHEDULERS = ("EulerDiscreteScheduler", "DDIMScheduler")
_SPACINGS = ("leading", "trailing", "linspace")
_PREDICTIONS = ("epsilon", "v_prediction")


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
    unsupported = [f"{key}={cfg[key]!r} (supported: {', '.join(values)})" for key, values in allowed
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


class EulerDiscreteScheduler:
    """diffusers' EulerDiscreteScheduler for discrete-time models (SD 2.x: epsilon or v_prediction, timestep
    spacing leading / trailing / linspace, sigmas interpolated linearly from the training table). Built from a
    scheduler_config.json dict; options it does not implement are refused by name here, not at sampling time.
    SVD's continuous-time Karras variant is `euler_schedule`."""

    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, prediction_type="epsilon", interpolation_type="linear",
                     use_karras_sigmas=False, use_exponential_sigmas=False, use_beta_sigmas=False,
                     timestep_spacing="linspace", timestep_type="discrete", steps_offset=0,
                     rescale_betas_zero_snr=False, final_sigmas_type="zero")

    def __init__(self, config: Mapping | None = None):
        cfg = _discrete_config(
            "EulerDiscreteScheduler", self._DEFAULTS, config,
            (("prediction_type", _PREDICTIONS), ("timestep_spacing", _SPACINGS),
             ("beta_schedule", ("linear", "scaled_linear")), ("interpolation_type", ("linear",)),
             ("timestep_type", ("discrete",)), ("final_sigmas_type", ("zero",))),
            ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr"))
        self.config = cfg
        self.alphas_cumprod, self.train_sigmas = _train_table(cfg)

    @property
    def prediction_type(self) -> str:
        return self.config["prediction_type"]

    def timesteps(self, num_steps: int) -> np.ndarray:
        """(N,) float32 training timesteps visited, highest first, by the configured spacing."""
        _check_steps(num_steps)
        n, spacing = int(self.config["num_train_timesteps"]), self.config["timestep_spacing"]
        if spacing == "linspace":
            t = np.linspace(0, n - 1, num_steps, dtype=np.float32)[::-1]
        elif spacing == "leading":
            ratio = n // num_steps
            t = (np.arange(0, num_steps) * ratio).round()[::-1].astype(np.float32) + np.float32(
                self.config["steps_offset"])
        else:  # trailing
            t = np.arange(n, 0, -n / num_steps).round().astype(np.float32) - np.float32(1.0)
        return np.ascontiguousarray(t, dtype=np.float32)

    def schedule(self, num_steps: int) -> EulerSchedule:
        """sigmas (N+1,) = the training sigmas interpolated at the timesteps, then 0; the UNet gets the timesteps."""
        _check_steps(num_steps)
        if num_steps > int(self.config["num_train_timesteps"]):
            raise ValueError(f"num_inference_steps: expected at most num_train_timesteps = "
                             f"{self.config['num_train_timesteps']}, got {num_steps}")
        t = self.timesteps(num_steps)
        table = self.train_sigmas
        sigmas = np.interp(t, np.arange(len(table)), table)  # float64 from float32 inputs, as diffusers
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        return EulerSchedule(sigmas=sigmas, timesteps=t,
                             init_noise_sigma=init_noise_sigma(sigmas, self.config["timestep_spacing"]))


class DDIMScheduler:
    """diffusers' DDIMScheduler with eta = 0 (its pipelines' default), epsilon or v_prediction. Deterministic DDIM
    is Euler in the variable x/√ᾱ_t with σ_t = √((1 − ᾱ_t)/ᾱ_t) (Song et al. 2021, eq. 14; Karras et al. 2022,
    table 1), so it runs on the same C sampler: the model input c_in·x̃ is x itself, the sampler starts from
    noise·√(σ_0² + 1) and the result is scaled back by √ᾱ of the last step's target (1 with set_alpha_to_one).
    Valid when every step lands on the next step's timestep (leading spacing; trailing when the step count divides
    num_train_timesteps); other step counts are refused."""

    _DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                     trained_betas=None, clip_sample=True, set_alpha_to_one=True, steps_offset=0,
                     prediction_type="epsilon", thresholding=False, timestep_spacing="leading",
                     rescale_betas_zero_snr=False)

    def __init__(self, config: Mapping | None = None):
        cfg = _discrete_config(
            "DDIMScheduler", self._DEFAULTS, config,
            (("prediction_type", _PREDICTIONS), ("timestep_spacing", ("leading", "trailing")),
             ("beta_schedule", ("linear", "scaled_linear"))),
            ("clip_sample", "thresholding", "rescale_betas_zero_snr"))
        self.config = cfg
        self.alphas_cumprod, self.train_sigmas = _train_table(cfg)
        self.final_alpha_cumprod = np.float32(1.0) if cfg["set_alpha_to_one"] else self.alphas_cumprod[0]

    @property
    def prediction_type(self) -> str:
        return self.config["prediction_type"]

    def timesteps(self, num_steps: int) -> np.ndarray:
        """(N,) int64 timesteps, highest first (diffusers' DDIMScheduler.set_timesteps)."""
        _check_steps(num_steps)
        n = int(self.config["num_train_timesteps"])
        if num_steps > n:
            raise ValueError(f"num_inference_steps: expected at most num_train_timesteps = {n}, got {num_steps}")
        if self.config["timestep_spacing"] == "leading":
            t = (np.arange(0, num_steps) * (n // num_steps)).round()[::-1].astype(np.int64)
            return t + int(self.config["steps_offset"])
        return np.round(np.arange(n, 0, -n / num_steps)).astype(np.int64) - 1  # trailing

    def schedule(self, num_steps: int) -> EulerSchedule:
        t = self.timesteps(num_steps)
        prev = t - int(self.config["num_train_timesteps"]) // num_steps  # DDIM's step target
        if np.any(prev[:-1] != t[1:]):
            raise ValueError(f"num_inference_steps: DDIMScheduler with timestep_spacing="
                             f"{self.config['timestep_spacing']!r} and {num_steps} steps steps to t={prev[:-1].tolist()} "
                             f"but evaluates t={t[1:].tolist()}; svdc's sampler needs them equal (use leading "
                             f"spacing or a step count dividing num_train_timesteps)")
        if np.any(t < 0) or np.any(t >= len(self.train_sigmas)):
            raise ValueError(f"scheduler config: steps_offset gives timesteps {t.tolist()} outside the table")
        ac_end = self.alphas_cumprod[prev[-1]] if prev[-1] >= 0 else self.final_alpha_cumprod
        sigma_end = np.sqrt((np.float32(1.0) - ac_end) / ac_end)
        sigmas = np.concatenate([self.train_sigmas[t], [sigma_end]]).astype(np.float32)
        s0 = sigmas[0]
        return EulerSchedule(sigmas=sigmas, timesteps=t.astype(np.float32),
                             init_noise_sigma=np.float32(np.sqrt(s0 * s0 + np.float32(1.0))),
                             final_scale=np.float32(np.sqrt(ac_end)))


_SCHEDULER_CLASSES = {"EulerDiscreteScheduler": EulerDiscreteScheduler, "DDIMScheduler": DDIMScheduler}


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
