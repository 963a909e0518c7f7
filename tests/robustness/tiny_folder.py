"""Writes svdc's tiny random-weight pipeline as a diffusers pipeline folder (no torch), for loading probes."""
from __future__ import annotations

import json
import os

from svdc import tiny, weights

_CLASSES = {"unet": ("diffusers", "UNetSpatioTemporalConditionModel", "diffusion_pytorch_model"),
            "vae": ("diffusers", "AutoencoderKLTemporalDecoder", "diffusion_pytorch_model"),
            "image_encoder": ("transformers", "CLIPVisionModelWithProjection", "model")}


def write_tiny_pipeline(folder, scheduler: dict | None = None) -> str:
    """folder/model_index.json + unet/ vae/ image_encoder/ (config.json + safetensors) [+ scheduler/]."""
    import svdc

    folder = os.fspath(folder)
    configs = {"unet": tiny.UNET_CONFIG, "vae": tiny.VAE_CONFIG, "image_encoder": tiny.IMAGE_ENCODER_CONFIG}
    classes = {"unet": svdc.UNet, "vae": svdc.VAE, "image_encoder": svdc.ImageEncoder}
    index = {"_class_name": "StableVideoDiffusionPipeline"}
    for seed, (name, cfg) in enumerate(configs.items()):
        lib, cls, stem = _CLASSES[name]
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        config = dict(cfg, _class_name=cls) if lib == "diffusers" else dict(cfg, architectures=[cls])
        with open(os.path.join(folder, name, "config.json"), "w") as f:
            json.dump(config, f)
        w = tiny.random_weights(classes[name].weight_shapes(cfg), seed)
        weights.save_file(w, os.path.join(folder, name, f"{stem}.safetensors"))
        index[name] = [lib, cls]
    if scheduler is not None:
        os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
        with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
            f.write(scheduler if isinstance(scheduler, str) else json.dumps(scheduler))
        index["scheduler"] = ["diffusers", "EulerDiscreteScheduler"]
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(index, f)
    return folder
