"""svdc.VAE: AutoencoderKLTemporalDecoder semantics (encode to the posterior mean, temporal decode with diffusers'
chunking) or AutoencoderKL semantics (2-D decoder: SD 2.x with post_quant_conv, SV3D without), by the config, over
the C model svdc._C.VAE; loading from diffusers folders and Stability single files."""
from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .._native import _C
from ..configs import vae as vae_configs
from ._checks import Float32Weights, as_float32, check_finite, model_device, native_placement
from ._memory import ReleasableMemory
from ._descriptors import instance_or_class_method

__all__ = ["VAE"]

ShapeError = _C.ShapeError


def _as_input(array, name: str, channels: int, multiple: int) -> np.ndarray:
    """A float32 C-contiguous (N, channels, H, W) array with H, W multiples of `multiple` and finite values."""
    array = as_float32(array, name)
    if array.ndim != 4:
        raise ShapeError(f"{name}: expected shape (N, {channels}, H, W), got {array.shape}")
    n, c, h, w = array.shape
    if n < 1 or c != channels:
        raise ShapeError(f"{name}: expected shape (N >= 1, {channels}, H, W), got {array.shape}")
    if h < 1 or w < 1 or h % multiple or w % multiple:
        raise ShapeError(f"{name}: H and W must be positive multiples of {multiple}, got shape {array.shape}")
    return check_finite(array, name)


def _native_config(cfg: dict) -> dict:
    """The keys svdc._C.VAE reads, from a normalised diffusers config."""
    native = {k: cfg[k] for k in ("in_channels", "out_channels", "block_out_channels", "layers_per_block",
                                  "latent_channels")}
    kl = vae_configs.is_kl(cfg)
    native["norm_num_groups"] = cfg["norm_num_groups"] if kl else vae_configs.NORM_NUM_GROUPS
    native["decoder_kind"] = 0 if kl else 1  # csrc/models/blocks/common.h: SVDC_BLOCK_2D / _SPATIO_TEMPORAL
    native["use_post_quant_conv"] = 1 if kl and cfg["use_post_quant_conv"] else 0
    return native


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


class VAE(ReleasableMemory):
    """AutoencoderKLTemporalDecoder or AutoencoderKL (by the config) on the CPU.

    encode(images (N, 3, H, W) in [-1, 1]) -> posterior mean (N, latent, H/f, W/f), unscaled.
    decode(latents (N, latent, h, w) already divided by scaling_factor, num_frames, chunk_size=None) -> (N, 3, H, W);
    num_frames is ignored by AutoencoderKL (every row alone) and may be omitted there.
    """

    def __init__(self, native, config: dict, device: str = "cpu"):
        self._native = native
        self.config = config
        self.device = device
        self.scaling_factor = float(config["scaling_factor"])
        self.down_factor = int(native.down_factor)
        self._peak = 0

    @property
    def dtype(self) -> str:
        """Weight storage dtype, "fp32" | "fp16" | "bf16" (compute is float32 either way)."""
        return self._native.dtype

    @property
    def is_temporal(self) -> bool:
        """True for AutoencoderKLTemporalDecoder (frames decoded together), False for AutoencoderKL."""
        return not vae_configs.is_kl(self.config)

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_config(cls, config: dict, weights: Mapping, device="auto", dtype=None) -> "VAE":
        """config: a diffusers config.json dict (unknown keys ignored); weights: name -> float32 array under
        diffusers names. Missing, unknown and mis-shaped weights raise svdc.CheckpointError naming the tensor."""
        dev = model_device(device, dtype, "VAE")
        cfg = vae_configs.normalize(config)
        native = _C.VAE(_native_config(cfg), Float32Weights(weights), **native_placement(dev, dtype, "VAE"))
        return cls(native, cfg, dev)

    @classmethod
    def from_pretrained(cls, path, device="auto", dtype=None, config: dict | None = None) -> "VAE":
        """path: a diffusers vae/ folder, a diffusers pipeline folder, or a Stability single .safetensors file: SVD/SV3D
        (decoder from first_stage_model.decoder.*, encoder from the conditioner's VAE) or SD 2.x (the AutoencoderKL
        under first_stage_model., picked when the file has no conditioner). A single file's decoder kind is the
        file's: SVD's is temporal; SV3D's is 2-D (loaded as an AutoencoderKL without post_quant_conv). `config`
        overrides the sizes of the preset used for single files (default: the SVD, SV3D or SD 2.x VAE)."""
        model_device(device, dtype, "VAE")
        from ..naming import vae as naming
        from ._loading import resolve

        src = resolve(path, "vae")
        try:
            if src.kind == "folder":
                name = (src.config or {}).get("_class_name")
                if config is None and name not in (None, "AutoencoderKLTemporalDecoder", "AutoencoderKL"):
                    raise _C.CheckpointError(f"{src.path}: config.json describes a {name}; svdc.VAE loads an "
                                             f"AutoencoderKLTemporalDecoder (SVD) or an AutoencoderKL (SD 2.x)")
                return cls.from_config(src.config if config is None else config, src.weights, device, dtype)
            # SVD/SV3D files carry a conditioner (the encoder is its VAE's); SD 2.x files keep the whole VAE in
            # first_stage_model.
            keys = list(src.file.keys())
            sgm_video = any(k.startswith("conditioner.") for k in keys)
            decoder_2d = sgm_video and not naming.has_temporal_decoder(keys)
            if config is None:
                config = vae_configs.preset("sv3d" if decoder_2d else "svd" if sgm_video else "sd2")
            elif decoder_2d:
                config = vae_configs.with_2d_decoder(config)
            cfg = vae_configs.normalize(config)
            levels = len(cfg["block_out_channels"])
            if vae_configs.is_kl(cfg) and not sgm_video:
                weights = naming.map_kl_single_file(src.file, levels)
            else:
                weights = naming.map_single_file(src.file, levels)
            return cls.from_config(cfg, weights, device, dtype)
        finally:
            src.close()

    # ------------------------------------------------------------------------------------------------ compute
    @property
    def num_parameters(self) -> int:
        return int(self._native.num_parameters)

    @property
    def last_peak_bytes(self) -> int:
        """Arena high-water mark of the last encode/decode (the largest chunk for a chunked decode), bytes."""
        return self._peak

    def encode(self, images) -> np.ndarray:
        """images (N, in_channels, H, W), H and W multiples of down_factor -> posterior mean
        (N, latent_channels, H/f, W/f), not multiplied by scaling_factor."""
        x = _as_input(images, "images", self.config["in_channels"], self.down_factor)
        if x.shape[0] == 1:
            out = self._native.encode(x)
            self._peak = int(self._native.last_peak_bytes)
            return out
        # Every layer of the encoder acts on each image alone: one C call per image bounds the memory and the time
        # between Python's chances to handle Ctrl-C, with the same result as one batched call.
        out = np.empty((x.shape[0], self.config["latent_channels"], x.shape[2] // self.down_factor,
                        x.shape[3] // self.down_factor), dtype=np.float32)
        peak = 0
        for i in range(x.shape[0]):
            out[i:i + 1] = self._native.encode(x[i:i + 1])
            peak = max(peak, int(self._native.last_peak_bytes))
        self._peak = peak
        return out

    def decode(self, latents, num_frames: int | None = None, chunk_size: int | None = None) -> np.ndarray:
        """latents (N, latent_channels, h, w), already divided by scaling_factor; N a multiple of num_frames, each
        run of num_frames rows one video -> frames (N, out_channels, h*f, w*f).

        chunk_size None decodes every video whole, all its frames in one window (the temporal decoder streams in
        bounded memory: about one full-resolution feature map per frame, docs/performance.md; see
        planned_decode_bytes). An integer reproduces diffusers' pipeline `decode_latents`:
        consecutive chunks of chunk_size rows of the flattened batch, each decoded as its own clip (so with several
        videos and a chunk size that does not divide num_frames, chunks straddle videos, as diffusers' do)."""
        if not self.is_temporal:
            num_frames = 1  # AutoencoderKL decodes every row alone
        elif num_frames is None:
            raise ValueError("num_frames: required by the temporal decoder (AutoencoderKLTemporalDecoder)")
        num_frames = _positive_int(num_frames, "num_frames")
        z = _as_input(latents, "latents", self.config["latent_channels"], 1)
        n = z.shape[0]
        if n % num_frames:
            raise ShapeError(f"latents: N = {n} rows is not a multiple of num_frames = {num_frames}")
        if chunk_size is None and (n == num_frames or not self.is_temporal):
            out = self._native.decode(z, num_frames)
            self._peak = int(self._native.last_peak_bytes)
            return out
        if chunk_size is None:  # one C call per video (each decoded whole): bounded calls, the same result
            chunk_size = num_frames
        chunk_size = _positive_int(chunk_size, "chunk_size")
        f = self.down_factor
        out = np.empty((n, self.config["out_channels"], z.shape[2] * f, z.shape[3] * f), dtype=np.float32)
        peak = 0
        for start in range(0, n, chunk_size):
            part = z[start:start + chunk_size]
            out[start:start + part.shape[0]] = self._native.decode(part, part.shape[0] if self.is_temporal else 1)
            peak = max(peak, int(self._native.last_peak_bytes))
        self._peak = peak
        return out

    def planned_decode_bytes(self, latents, num_frames: int | None = None) -> int:
        """The activation memory (bytes) decode(latents, num_frames) will take in one call, from a measuring pass
        that computes nothing; the weights, the latents and the output come on top. CPU kernels also take a few
        tiles of scratch per thread that the plan leaves out."""
        if not self.is_temporal:
            num_frames = 1
        elif num_frames is None:
            raise ValueError("num_frames: required by the temporal decoder (AutoencoderKLTemporalDecoder)")
        num_frames = _positive_int(num_frames, "num_frames")
        z = _as_input(latents, "latents", self.config["latent_channels"], 1)
        if z.shape[0] % num_frames:
            raise ShapeError(f"latents: N = {z.shape[0]} rows is not a multiple of num_frames = {num_frames}")
        return int(self._native.decode(z, num_frames, plan_only=True))

    @instance_or_class_method
    def weight_shapes(self_or_cls, config: dict | None = None) -> dict:
        """{diffusers name: shape} of the declared weight table: VAE.weight_shapes(config) for a diffusers config
        dict (no weights needed), vae.weight_shapes() for this model's."""
        if isinstance(self_or_cls, type):
            if config is None:
                raise TypeError("VAE.weight_shapes(config): config is required when called on the class")
            return _C.VAE.weight_shapes(_native_config(vae_configs.normalize(config)))
        return _C.VAE.weight_shapes(_native_config(self_or_cls.config))

    def __repr__(self):
        c = self.config
        return (f"svdc.VAE(block_out_channels={c['block_out_channels']}, layers_per_block={c['layers_per_block']}, "
                f"latent_channels={c['latent_channels']}, device={self.device!r})")

