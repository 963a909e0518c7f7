"""Aesthetic score heads: a chain of linear layers over an (L2-normalised) CLIP image embedding, evaluated with
NumPy, loaded from a user's weight file (.npz or .safetensors). The public LAION heads fit it: V1 is one
Linear(768, 1) (state dict `weight`, `bias`); the improved predictor V2 is Linear 768 -> 1024 -> 128 -> 64 -> 16 -> 1
with dropouts between and no activations (state dict `layers.{0,2,4,6,7}.weight|bias`). Both take OpenAI CLIP
ViT-L/14 embeddings (width 768), normalised to unit length. Convert a .pth once where torch is installed:
`np.savez("head.npz", **{k: v.numpy() for k, v in torch.load("head.pth").items()})`."""
from __future__ import annotations

import os
import re

import numpy as np

from .embeddings import l2_normalize

__all__ = ["AestheticHead"]

_ACTIVATIONS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0.0)}


def _layer_order(prefix: str) -> tuple:
    """Sort key of a layer prefix such as "layers.6" (numbers compare as numbers)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.]", prefix) if p)


class AestheticHead:
    """score = L_n(act(... act(L_1(x)))), x the image embedding scaled to unit length when `normalize`.
    layers: [(weight (out, in), bias (out,))] in order; the last layer has one output."""

    def __init__(self, layers, activation: str = "none", normalize: bool = True, name: str = "aesthetic"):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if not layers:
            raise ValueError("layers: expected at least one (weight, bias) pair, got none")
        checked = []
        for i, (w, b) in enumerate(layers):
            w = np.asarray(w, np.float64)
            b = np.asarray(b, np.float64)
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {i}: expected weight (out, in) and bias (out,), got {w.shape} and {b.shape}")
            if checked and checked[-1][0].shape[0] != w.shape[1]:
                raise ValueError(f"layer {i}: expected input width {checked[-1][0].shape[0]} (the previous layer's "
                                 f"output), got {w.shape[1]}")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {i}: weights are not all finite")
            checked.append((w, b))
        if checked[-1][0].shape[0] != 1:
            raise ValueError(f"layers: expected the last layer to have 1 output, got {checked[-1][0].shape[0]}")
        self.layers = checked
        self.activation = activation
        self.normalize = normalize
        self.name = name

    @property
    def input_dim(self) -> int:
        return int(self.layers[0][0].shape[1])

    @classmethod
    def from_file(cls, path, activation: str = "none", normalize: bool = True) -> "AestheticHead":
        """A state dict in .npz or .safetensors: every `<prefix>weight` with its `<prefix>bias` is one linear layer,
        in the numeric order of the prefixes (`layers.0.`, `layers.2.`, ... or a bare `weight`/`bias`)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no aesthetic head file at {path!r}")
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                state = {k: f[k] for k in f.files}
        elif path.endswith(".safetensors"):
            from ..weights import load_file

            state = load_file(path)
        else:
            raise ValueError(f"path: expected a .npz or .safetensors file (pickled .pth is never loaded; see "
                             f"svdc.curation.aesthetics for a one-line conversion), got {path!r}")
        prefixes = sorted((k[: -len("weight")] for k in state if k.endswith("weight")), key=_layer_order)
        missing = [p + "bias" for p in prefixes if p + "bias" not in state]
        if not prefixes or missing:
            raise ValueError(f"{path}: expected linear layers as <prefix>weight + <prefix>bias, got keys "
                             f"{sorted(state)}")
        name = os.path.splitext(os.path.basename(path))[0]
        return cls([(state[p + "weight"], state[p + "bias"]) for p in prefixes], activation, normalize, name)

    def __call__(self, embeddings) -> np.ndarray:
        """embeddings (N, input_dim) -> scores (N,) float64."""
        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"embeddings: the aesthetic head {self.name!r} expects width {self.input_dim} (e.g. 768 "
                             f"for the LAION heads on OpenAI CLIP ViT-L/14), got shape {x.shape}; use an embedding "
                             f"provider of the CLIP model the head was trained on")
        if self.normalize:
            x = l2_normalize(x, "embeddings")
        act = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < len(self.layers) - 1:
                x = act(x)
        return x[:, 0]
