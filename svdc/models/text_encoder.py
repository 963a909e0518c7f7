"""svdc.TextEncoder: CLIPTextModel / CLIPTextModelWithProjection semantics (token + position embedding, causal CLIP
encoder, final layer norm, EOS pooling, optional text projection) over svdc._C.TextEncoder, with loading from
transformers folders (a pipeline's text_encoder/) and SD 2.x single files. Token ids come from a tokenizer (the
text-to-video work)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._native import _C
from ..configs.clip import OPENCLIP_VIT_H_TEXT, normalize_text_config
from ._checks import Float32Weights, model_device, native_placement
from ._memory import ReleasableMemory
from ._descriptors import instance_or_class_method

__all__ = ["TextEncoder"]

# Buffers of transformers' CLIPTextModel state dict that are not weights.
IGNORED_KEYS = ("text_model.embeddings.position_ids",)
_PROJECTION_KEY = "text_projection.weight"
_PREFIX = "text_model."


class _TextModelNames(Mapping):
    """A state dict under the names svdc declares ("text_model.*"): transformers 5 saves CLIPTextModel without the
    prefix that transformers 4, the hub's SD text_encoder/ folders and CLIPTextModelWithProjection use."""

    def __init__(self, weights: Mapping):
        self._weights = weights
        self._bare = not any(k.startswith(_PREFIX) for k in weights)

    def _source(self, name: str) -> str:
        return name[len(_PREFIX):] if self._bare and name.startswith(_PREFIX) else name

    def __getitem__(self, name):
        return self._weights[self._source(name)]

    def file_view(self, name):
        """The wrapped mapping's file_view under the source name (svdc.weights.LazyWeights), else None."""
        view = getattr(self._weights, "file_view", None)
        return None if view is None else view(self._source(name))

    def __iter__(self):
        for k in self._weights:
            yield _PREFIX + k if self._bare and k != _PROJECTION_KEY else k

    def __len__(self):
        return len(self._weights)


def _weights(weights: Mapping) -> Float32Weights:
    return Float32Weights(_TextModelNames(weights), IGNORED_KEYS)


class TextEncoder(ReleasableMemory):
    """CLIP text tower. encoder(input_ids (N, T) ints, hidden_layer=-1, final_layer_norm=None) -> dict with
    "hidden_states" (N, T, C): the output of layer `hidden_layer` (-1 the last, -2 the penultimate that SD 2.x
    conditions on), final-layer-normed when final_layer_norm (default: only for -1, i.e. transformers'
    last_hidden_state; transformers' hidden_states[-2] is without it); for hidden_layer=-1 also "pooler_output"
    (N, C) at the EOS token and "text_embeds" (N, projection_dim) with a text projection (else None)."""

    def __init__(self, native, config: dict, device: str = "cpu"):
        self._native = native
        self._config = dict(config)
        self.device = device

    @staticmethod
    def _native_config(config: Mapping, with_projection: bool) -> dict:
        cfg = normalize_text_config(config, with_projection)
        return {k: v for k, v in cfg.items() if k != "eos_token_id"}, cfg

    @classmethod
    def from_config(cls, config: Mapping, weights: Mapping, device: str = "auto", dtype=None) -> "TextEncoder":
        """config: a CLIPTextConfig-style dict (transformers keys, class defaults for the rest); weights: name ->
        array under transformers names. With a "text_projection.weight" it is CLIPTextModelWithProjection. Missing,
        unknown or mis-shaped weights raise svdc.CheckpointError naming the tensor."""
        dev = model_device(device, dtype, "TextEncoder")
        native_cfg, cfg = cls._native_config(config, _PROJECTION_KEY in weights)
        native = _C.TextEncoder(native_cfg, _weights(weights), **native_placement(dev, dtype, "TextEncoder"))
        return cls(native, cfg, dev)

    @classmethod
    def from_pretrained(cls, path, device: str = "auto", dtype=None, config: Mapping | None = None,
                        variant: str | None = None) -> "TextEncoder":
        """path: a text_encoder/ folder (config.json + model.safetensors, as save_pretrained writes it), a pipeline
        folder (its text_encoder/ subfolder), or an SD 2.x Stability single file (cond_stage_model.model.*: the
        OpenCLIP ViT-H/14 text tower with all its layers; SD 2.x conditions on hidden_layer=-2 with
        final_layer_norm=True). `config` overrides config.json / that preset."""
        from . import _loading

        dev = model_device(device, dtype, "TextEncoder")
        source = _loading.resolve(path, "text_encoder", variant=variant)
        try:
            if source.kind == "folder":
                native_cfg, cfg = cls._native_config(config if config is not None else source.config,
                                                     _PROJECTION_KEY in source.weights)
                native = _C.TextEncoder(native_cfg, _weights(source.weights),
                                        **native_placement(dev, dtype, "TextEncoder"))
            else:  # an SD 2.x single file: the OpenCLIP ViT-H/14 text tower (all its layers) with its projection
                from ..naming import text_encoder as naming
                from ..weights import LazyWeights

                f = source.file
                keys = list(f.keys())
                if config is None:
                    config = {**OPENCLIP_VIT_H_TEXT, "num_hidden_layers": naming.num_layers(keys)}
                native_cfg, cfg = cls._native_config(config, True)
                loaders = naming.map_single_file(keys, f.get_float32, where=str(source.path))
                native = _C.TextEncoder(native_cfg, LazyWeights(loaders),
                                        **native_placement(dev, dtype, "TextEncoder"))
        finally:
            source.close()
        return cls(native, cfg, dev)

    # ---- properties ---------------------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """Weight storage dtype, "fp32" | "fp16" | "bf16" (compute is float32 either way)."""
        return self._native.dtype

    @property
    def config(self) -> dict:
        return dict(self._config)

    @property
    def num_parameters(self) -> int:
        return int(self._native.num_parameters)

    @property
    def last_peak_bytes(self) -> int:
        return int(self._native.last_peak_bytes)

    @instance_or_class_method
    def weight_shapes(self_or_cls, config: Mapping | None = None, with_projection: bool = False) -> dict:
        """{transformers name: shape} of the declared weight table."""
        if isinstance(self_or_cls, type):
            if config is None:
                raise TypeError("TextEncoder.weight_shapes(config): config is required when called on the class")
            return _C.TextEncoder.weight_shapes(self_or_cls._native_config(config, with_projection)[0])
        cfg = self_or_cls._config
        return _C.TextEncoder.weight_shapes(self_or_cls._native_config(cfg, cfg["projection_dim"] > 0)[0])

    def __repr__(self):
        c = self._config
        return (f"svdc.TextEncoder(hidden_size={c['hidden_size']}, layers={c['num_hidden_layers']}, "
                f"projection_dim={c['projection_dim']}, device={self.device!r})")

    # ---- inference ----------------------------------------------------------------------------------------------
    def _eos_index(self, ids: np.ndarray) -> np.ndarray:
        """transformers' pooling position: the legacy eos_token_id 2 means the highest id (argmax); otherwise the
        first occurrence of eos_token_id (0 when a row has none)."""
        eos = self._config["eos_token_id"]
        if eos == 2:
            return np.argmax(ids, axis=1).astype(np.int32)
        return np.argmax(ids == eos, axis=1).astype(np.int32)

    def __call__(self, input_ids, hidden_layer: int = -1, final_layer_norm: bool | None = None) -> dict:
        from .. import ShapeError

        c = self._config
        ids = np.asarray(input_ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"input_ids: expected integer token ids, got dtype {ids.dtype}")
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[0] < 1 or not 1 <= ids.shape[1] <= c["max_position_embeddings"]:
            raise ShapeError(f"input_ids: expected shape (N, T) with 1 <= T <= {c['max_position_embeddings']}, "
                             f"got {np.asarray(input_ids).shape}")
        if ids.min() < 0 or ids.max() >= c["vocab_size"]:
            raise ValueError(f"input_ids: ids must lie in 0..{c['vocab_size'] - 1}, got {ids.min()}..{ids.max()}")
        n = c["num_hidden_layers"]
        if isinstance(hidden_layer, bool) or not isinstance(hidden_layer, (int, np.integer)) or \
                not -n <= hidden_layer <= -1:
            raise ValueError(f"hidden_layer: expected -1 (last) .. -{n}, got {hidden_layer!r}")
        skip = -1 - int(hidden_layer)
        norm = skip == 0 if final_layer_norm is None else bool(final_layer_norm)
        ids32 = np.ascontiguousarray(ids, dtype=np.int32)
        hidden, pooled, embeds = self._native.forward(ids32, self._eos_index(ids32), skip, norm)
        if skip:
            return {"hidden_states": hidden, "pooler_output": None, "text_embeds": None}
        return {"hidden_states": hidden, "pooler_output": pooled, "text_embeds": embeds}

    forward = __call__
