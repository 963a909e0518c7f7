"""Locates a component's checkpoint for from_pretrained: a diffusers component folder, a pipeline folder
(model_index.json -> <component>/), a Stability single .safetensors file, or a hub id "org/name" already in the
local Hugging Face cache (svdc/hub.py). Only safetensors is read; pickle never."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .. import hub
from ..weights import CheckpointError, LazyWeights, SafetensorsFile

__all__ = ["COMPONENTS", "Source", "resolve", "read_json"]

COMPONENTS = ("unet", "vae", "image_encoder", "text_encoder")

# Weight file stems: diffusers models write diffusion_pytorch_model.*, transformers models write model.*.
_STEMS = {
    "unet": ("diffusion_pytorch_model", "model"),
    "vae": ("diffusion_pytorch_model", "model"),
    "image_encoder": ("model", "diffusion_pytorch_model"),
    "text_encoder": ("model", "diffusion_pytorch_model"),
}
# Formats we refuse by name: loading them means unpickling, which can run arbitrary code.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Class names that certainly belong to another component: a clear error instead of a confusing missing-weight list.
_CLASSES = {
    "unet": {"UNetSpatioTemporalConditionModel", "UNet2DConditionModel", "UNet3DConditionModel"},
    "vae": {"AutoencoderKLTemporalDecoder", "AutoencoderKL"},
    "image_encoder": {"CLIPVisionModelWithProjection", "CLIPVisionModel"},
    "text_encoder": {"CLIPTextModel", "CLIPTextModelWithProjection"},
}


@dataclass
class Source:
    """Where a component's weights come from.

    kind "folder": config = the parsed config.json, weights = LazyWeights of float32 tensors under the names the
    diffusers/transformers class uses. kind "single_file": file = the open SafetensorsFile (raw Stability names;
    the component's naming module maps them), config and weights None. `files` holds every open SafetensorsFile
    (shards included) so they stay open as long as the Source; close() releases them (views already made stay valid).
    """

    kind: str
    path: str
    config: dict | None = None
    weights: LazyWeights | None = None
    file: SafetensorsFile | None = None
    files: tuple = field(default=(), repr=False)

    def close(self):
        for f in self.files:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_json(path: str, what: str) -> dict:
    """A JSON object from `path` (strict UTF-8); anything else is a CheckpointError naming the file."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
        data = json.loads(text)
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: cannot read {what}: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: {what} must be a JSON object, got {type(data).__name__}")
    return data


def _refuse_pickle(path: str):
    raise CheckpointError(
        f"{path}: only safetensors checkpoints are supported (pickle-based .bin/.pt/.ckpt files are never loaded, "
        f"because unpickling can run arbitrary code); convert it to .safetensors first")


def resolve(path: str | os.PathLike, component: str, variant: str | None = None) -> Source:
    """Finds `component` ("unet" | "vae" | "image_encoder" | "text_encoder") under `path`.

    path: a component folder (config.json + [diffusion_pytorch_model|model][.<variant>].safetensors or a sharded
    *.safetensors[.<variant>].index.json), a pipeline folder (model_index.json; its `<component>/` subfolder is used),
    a single .safetensors file, or a hub id in the local cache. variant=None prefers the fp32 files and falls back to a variant (fp16 first) when
    only that exists; variant="fp16" requires the fp16 files.
    """
    if component not in COMPONENTS:
        raise ValueError(f"resolve: component must be one of {COMPONENTS}, got {component!r}")
    if variant is not None and (not isinstance(variant, str) or not variant or "/" in variant or "." in variant):
        raise ValueError(f"variant: expected a plain name such as 'fp16', got {variant!r}")
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}") from None
    if hub.is_hub_id(p):  # "org/name" that is no local path: its snapshot in the local cache, no network
        p = hub.resolve_snapshot(p, local_files_only=True, variant=variant, components=(component,))
    if not os.path.exists(p):
        raise CheckpointError(f"{p}: no such file or folder (expected a diffusers folder, a .safetensors file or a "
                              f"cached hub id 'org/name' for the {component})")
    if os.path.isfile(p):
        if p.lower().endswith(_PICKLE_SUFFIXES):
            _refuse_pickle(p)
        base = os.path.basename(p)
        if base in ("config.json", "model_index.json"):  # the folder was meant
            return resolve(os.path.dirname(os.path.abspath(p)), component, variant)
        if base.lower().endswith(".json"):
            raise CheckpointError(f"{p}: a JSON file is not a checkpoint; pass the folder that holds it, or a "
                                  f".safetensors file")
        f = SafetensorsFile(p)
        return Source(kind="single_file", path=p, file=f, files=(f,))
    if not os.path.isdir(p):
        raise CheckpointError(f"{p}: not a regular file or folder")

    if os.path.isfile(os.path.join(p, "model_index.json")):
        index = read_json(os.path.join(p, "model_index.json"), "model_index.json")
        entry = index.get(component)
        sub = os.path.join(p, component)
        listed = isinstance(entry, list) and len(entry) == 2 and entry[0] is not None and entry[1] is not None
        if not os.path.isdir(sub) or (component in index and not listed):
            have = sorted(k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0])
            raise CheckpointError(f"{p}: this pipeline folder has no {component} (model_index.json lists "
                                  f"{', '.join(have) or 'no components'}; expected a {component}/ subfolder)")
        return _component_folder(sub, component, variant)
    return _component_folder(p, component, variant)


def _component_folder(folder: str, component: str, variant: str | None) -> Source:
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{folder}: expected a diffusers {component} folder with config.json, a pipeline "
                              f"folder with model_index.json, or a .safetensors file")
    config = read_json(config_path, "config.json")
    _check_class(config, config_path, component)

    files, weights = _find_weights(folder, component, variant)
    return Source(kind="folder", path=folder, config=config, weights=weights, files=files)


def _check_class(config: dict, config_path: str, component: str):
    names = [config.get("_class_name")] + list(config.get("architectures") or [])
    for name in names:
        for other, classes in _CLASSES.items():
            if other != component and name in classes and name not in _CLASSES[component]:
                raise CheckpointError(f"{config_path}: this folder holds a {name} ({other}), expected a {component}")


def _find_weights(folder: str, component: str, variant: str | None):
    """(open files, LazyWeights) for the first weight layout found, in order: for each stem, the single file,
    then the sharded index; fp32 before variants unless a variant is asked for."""
    variants = [variant] if variant is not None else [None] + _variants_present(folder, component)
    for v in variants:
        for stem in _STEMS[component]:
            single = os.path.join(folder, f"{stem}.{v}.safetensors" if v else f"{stem}.safetensors")
            if os.path.isfile(single):
                f = SafetensorsFile(single)
                return (f,), LazyWeights.from_file(f)
            index = os.path.join(folder, f"{stem}.safetensors.index.{v}.json" if v else f"{stem}.safetensors.index.json")
            if os.path.isfile(index):
                return _sharded(folder, index)
    present = sorted(os.listdir(folder))
    if any(n.lower().endswith(_PICKLE_SUFFIXES) for n in present):
        _refuse_pickle(folder)
    want = " or ".join(f"{s}{'.' + variant if variant else ''}.safetensors" for s in _STEMS[component])
    raise CheckpointError(f"{folder}: no {component} weights found (expected {want} or a sharded "
                          f"*.safetensors.index.json; the folder has: {', '.join(present) or 'nothing'})")


def _variants_present(folder: str, component: str) -> list[str]:
    """Variants with weight files in the folder, fp16 first, then the rest sorted."""
    found = set()
    for name in os.listdir(folder):
        for stem in _STEMS[component]:
            for head, tail in ((stem + ".", ".safetensors"), (stem + ".safetensors.index.", ".json")):
                if name.startswith(head) and name.endswith(tail):
                    mid = name[len(head):len(name) - len(tail)]
                    if mid and "." not in mid and mid not in ("safetensors", "index"):
                        found.add(mid)
    return sorted(found, key=lambda v: (v != "fp16", v))


def _sharded(folder: str, index_path: str):
    index = read_json(index_path, "sharded checkpoint index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_path}: weight_map must be a non-empty object of tensor name -> shard file")
    shards: dict[str, SafetensorsFile] = {}
    loaders, shapes, files = {}, {}, {}
    try:
        for name, shard in weight_map.items():
            if (not isinstance(shard, str) or not shard or os.path.isabs(shard) or shard != os.path.basename(shard)
                    or shard in (".", "..")):
                raise CheckpointError(f"{index_path}: tensor {name!r}: shard must be a file name in the same "
                                      f"folder, got {shard!r}")
            if shard.lower().endswith(_PICKLE_SUFFIXES):
                _refuse_pickle(os.path.join(folder, shard))
            if shard not in shards:
                shard_path = os.path.join(folder, shard)
                if not os.path.isfile(shard_path):
                    raise CheckpointError(f"{index_path}: tensor {name!r}: shard file {shard_path} does not exist")
                shards[shard] = SafetensorsFile(shard_path)
            f = shards[shard]
            if name not in f:
                raise CheckpointError(f"{f.path}: tensor {name!r} listed in {os.path.basename(index_path)} is missing")
            loaders[name] = (lambda f=f, n=name: f.get_float32(n))
            shapes[name] = f.shape_of(name)
            files[name] = (f, name)
    except BaseException:
        for f in shards.values():
            f.close()
        raise
    return tuple(shards.values()), LazyWeights(loaders, shapes, files)
