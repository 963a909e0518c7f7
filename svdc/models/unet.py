"""svdc.UNet: the SVD / SVD-XT / SV3D spatio-temporal denoiser (diffusers UNetSpatioTemporalConditionModel semantics)
and the SD 2.x image denoiser (UNet2DConditionModel semantics), chosen by the config, over svdc._C.UNet; input checks
and (B, F) folding here, all maths in C."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._native import _C
from ..configs import unet as unet_configs
from ..naming import unet as unet_naming
from ._checks import Float32Weights, as_float32, check_finite, model_device, native_placement
from ._memory import ReleasableMemory
from ._descriptors import instance_or_class_method

_SGM_ADM_KEY = unet_naming.SGM_PREFIX + "label_emb.0.0.weight"
_SGM_SPATIAL_KEY = unet_naming.SGM_PREFIX + "input_blocks.1.1.proj_in.weight"  # any SD UNet with attention at level 0


class UNet(ReleasableMemory):
    """UNetSpatioTemporalConditionModel or UNet2DConditionModel (by the config) on the CPU.

    spatio-temporal: unet(sample (B,F,C_in,h,w), timestep (scalar or (B,)), encoder_hidden_states (B,L,D),
                          added_time_ids (B,n) per video or (B,F,n) per frame) -> (B,F,C_out,h,w) float32;
    2-D (SD 2.x):    unet(sample (B,C_in,h,w), timestep (scalar or (B,)), encoder_hidden_states (B,L,D))
                     -> (B,C_out,h,w) float32.
    """

    def __init__(self, native, config: dict[str, Any], device: str = "cpu"):
        self._native = native
        self._config = config
        self._nativecfg = unet_configs.to_native(config)
        self.device = device

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any], weights: Mapping, device="auto", dtype=None) -> "UNet":
        """config: a diffusers config.json dict (unknown keys ignored, missing keys at the class defaults; svdc adds
        'resnet_eps' ('diffusers' | 'sgm') and 'added_id_widths'); weights: Mapping diffusers name -> ndarray."""
        dev = model_device(device, dtype, "UNet")
        cfg = unet_configs.from_diffusers(config)
        native = _C.UNet(unet_configs.to_native(cfg), Float32Weights(weights),
                         **native_placement(dev, dtype, "UNet"))
        return cls(native, cfg, dev)

    @classmethod
    def from_pretrained(cls, path, device="auto", dtype=None, config: dict[str, Any] | None = None) -> "UNet":
        """path: a diffusers unet/ folder, a pipeline folder, or a Stability single file (svd*.safetensors,
        sv3d_*.safetensors). Single files get the sgm preset picked by label_emb.0.0.weight's input width, with the
        sgm res-block epsilon (1e-5); an SD 2.x single file (no label_emb) gets the "sd2" preset. `config` (a diffusers
        config dict) overrides config.json / the preset; for an SVD single file its resnet_eps defaults to "sgm"."""
        dev = model_device(device, dtype, "UNet")
        from .. import CheckpointError
        from . import _loading

        with _loading.resolve(path, "unet") as src:
            if src.kind == "folder":
                cfg = unet_configs.from_diffusers(config if config is not None else src.config)
                weights = src.weights
            else:
                cfg, weights = cls._single_file(src, CheckpointError, config)
            try:
                native_cfg = unet_configs.to_native(cfg)
            except ValueError as e:
                raise CheckpointError(f"{src.path}: unsupported UNet config: {e}") from e
            native = _C.UNet(native_cfg, weights, **native_placement(dev, dtype, "UNet"))
        return cls(native, cfg, dev)

    @staticmethod
    def _single_file(src, CheckpointError, config=None):
        from ..weights import LazyWeights

        sf = src.file
        if _SGM_ADM_KEY not in sf and _SGM_SPATIAL_KEY not in sf:
            raise CheckpointError(f"{src.path}: no tensor {_SGM_ADM_KEY!r} nor {_SGM_SPATIAL_KEY!r}: not a Stability "
                                  "SVD/SV3D/SD checkpoint with a UNet")
        try:
            if config is not None:
                extra = {} if unet_configs.is_2d(config) else {"resnet_eps": "sgm"}
                cfg = unet_configs.from_diffusers({**extra, **config})
            elif _SGM_ADM_KEY not in sf:
                cfg = unet_configs.preset("sd2")
            else:
                cfg = unet_configs.preset(unet_configs.preset_for_adm_width(int(sf.shape_of(_SGM_ADM_KEY)[1])))
            names = unet_naming.single_file_names(sf.keys(), cfg)
        except ValueError as e:
            raise CheckpointError(f"{src.path}: {e}") from e
        return cfg, LazyWeights.from_names(sf, names)

    # ---- properties --------------------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """Weight storage dtype, "fp32" | "fp16" | "bf16" (compute is float32 either way)."""
        return self._native.dtype

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def in_channels(self) -> int:
        return self._nativecfg["in_channels"]

    @property
    def out_channels(self) -> int:
        return self._nativecfg["out_channels"]

    @property
    def is_2d(self) -> bool:
        """True for UNet2DConditionModel semantics (images), False for the spatio-temporal UNet (videos)."""
        return self._nativecfg["kind"] == unet_configs.KIND_2D

    @property
    def num_added_ids(self) -> int:
        return len(self._nativecfg["id_widths"])

    @property
    def last_peak_bytes(self) -> int:
        """Arena high-water mark of the last call (all activations, the skip stack included)."""
        return self._native.last_peak_bytes

    @property
    def num_parameters(self) -> int:
        return self._native.num_parameters

    @instance_or_class_method
    def weight_shapes(self_or_cls, config: dict[str, Any] | None = None) -> dict:
        """{diffusers name: shape} of the declared weight table: UNet.weight_shapes(config) for a diffusers config
        dict (no weights needed), unet.weight_shapes() for this model's."""
        if isinstance(self_or_cls, type):
            if config is None:
                raise TypeError("UNet.weight_shapes(config): config is required when called on the class")
            return _C.UNet.weight_shapes(unet_configs.to_native(unet_configs.from_diffusers(config)))
        return _C.UNet.weight_shapes(self_or_cls._nativecfg)

    def __repr__(self):
        c = self._nativecfg
        return (f"svdc.UNet(block_out_channels={c['block_out_channels']}, in={c['in_channels']}, "
                f"out={c['out_channels']}, ids={c['id_widths']}, params={self.num_parameters:,}, device={self.device!r})")

    # ---- call --------------------------------------------------------------------------------------------------
    def _inputs(self, sample, timestep, encoder_hidden_states, added_time_ids):
        from .. import ShapeError

        c = self._nativecfg
        x = as_float32(sample, "sample", integers=True)
        if self.is_2d:
            if added_time_ids is not None:
                raise ValueError("added_time_ids: this UNet (UNet2DConditionModel) has no added conditioning; "
                                 "pass None")
            if x.ndim != 4:
                raise ShapeError(f"sample: expected shape (B, {c['in_channels']}, h, w), got {x.shape}")
            x = x[:, None]  # (B, C, h, w) -> (B, 1, C, h, w): an image is a one-frame video
        elif x.ndim != 5:
            raise ShapeError(f"sample: expected shape (B, F, {c['in_channels']}, h, w), got {x.shape}")
        b, f, ch, h, w = x.shape
        if ch != c["in_channels"]:
            raise ShapeError(f"sample: expected {c['in_channels']} channels (shape (B, F, {c['in_channels']}, h, w)), "
                             f"got {ch} (shape {x.shape})")
        if min(b, f, h, w) < 1:
            raise ShapeError(f"sample: every dimension must be >= 1, got shape {x.shape}")
        check_finite(x, "sample")

        t = as_float32(timestep, "timestep", integers=True)
        if t.ndim == 0 or t.shape == (1,):
            t = np.full((b,), t.reshape(()), dtype=np.float32)
        elif t.shape != (b,):
            raise ShapeError(f"timestep: expected a scalar or shape ({b},) (one per video), got shape {t.shape}")
        check_finite(t, "timestep")

        e = as_float32(encoder_hidden_states, "encoder_hidden_states", integers=True)
        d = c["cross_attention_dim"]
        if e.ndim != 3 or e.shape[0] != b or e.shape[1] < 1 or e.shape[2] != d:
            raise ShapeError(f"encoder_hidden_states: expected shape ({b}, L, {d}) with L >= 1, got {e.shape}")
        check_finite(e, "encoder_hidden_states")

        n = len(c["id_widths"])
        if self.is_2d:
            return x.reshape(b * f, ch, h, w), f, t, e, np.zeros((b, 0), np.float32)
        ids = as_float32(added_time_ids, "added_time_ids", integers=True)
        if ids.ndim == 2 and ids.shape == (b, n):
            ids = np.repeat(ids, f, axis=0)  # per video -> per frame: (B, n) -> (B*F, n), frames minor
        elif ids.ndim == 3 and ids.shape == (b, f, n):
            ids = np.ascontiguousarray(ids.reshape(b * f, n))
        else:
            raise ShapeError(f"added_time_ids: expected shape ({b}, {n}) per video or ({b}, {f}, {n}) per frame, "
                             f"got {ids.shape}")
        check_finite(ids, "added_time_ids")
        return x.reshape(b * f, ch, h, w), f, t, e, ids

    def __call__(self, sample, timestep, encoder_hidden_states, added_time_ids=None) -> np.ndarray:
        x, f, t, e, ids = self._inputs(sample, timestep, encoder_hidden_states, added_time_ids)
        y = self._native.forward(x, f, t, e, ids)
        return y if self.is_2d else y.reshape(x.shape[0] // f, f, *y.shape[1:])

    def embedding(self, timestep, added_time_ids, num_frames: int, batch: int | None = None) -> np.ndarray:
        """The per-frame conditioning vector emb (B*F, 4*C0) that every res block receives (time embedding +
        added-id embedding), for inspection and tests."""
        from .._validate import check_int

        num_frames = check_int("num_frames", num_frames, 1)
        ids = as_float32(added_time_ids, "added_time_ids", integers=True)
        b = batch if batch is not None else ids.shape[0]
        dummy = np.zeros((b, num_frames, self.in_channels, 1, 1), np.float32)
        ctx = np.zeros((b, 1, self._nativecfg["cross_attention_dim"]), np.float32)
        _, f, t, _, ids = self._inputs(dummy, timestep, ctx, ids)
        return self._native.embedding(t, ids, f)
