"""A tiny random-weight SVD pipeline (UNet, temporal VAE, CLIP image encoder with the real architectures at toy
sizes), built with NumPy alone, so a fresh machine can run the whole image-to-video path without multi-GB weights.
Its videos are noise: the weights are random, not trained."""
from __future__ import annotations

import numpy as np

TINY_HEIGHT = 64
TINY_WIDTH = 64
TINY_FRAMES = 6
TINY_STEPS = 8

UNET_CONFIG = {
    "sample_size": 8,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
    "block_out_channels": [32, 64],
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 24,
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [2, 4],
    "num_frames": TINY_FRAMES,
}

VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "block_out_channels": [32, 32, 32, 32],
    "layers_per_block": 1,
    "latent_channels": 4,
    "sample_size": 64,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

IMAGE_ENCODER_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "projection_dim": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_channels": 3,
    "image_size": 224,  # the SVD pipeline always resizes to 224x224 for CLIP
    "patch_size": 32,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}

SCHEDULER_CONFIG = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "sigma_max": 700.0, "sigma_min": 0.002,
    "steps_offset": 1, "timestep_spacing": "leading", "timestep_type": "continuous", "trained_betas": None,
    "use_karras_sigmas": True,
}

RANDOM_WEIGHTS_NOTICE = ("svdc tiny model: the weights are RANDOM (not trained); the video shows the pipeline "
                         "working end to end, not a meaningful animation.")


def _is_norm(name: str) -> bool:
    parts = name.split(".")
    return any(p.startswith(("norm", "ln", "layer_norm", "layernorm", "pre_layrnorm", "post_layernorm",
                             "group_norm", "conv_norm_out")) or p.endswith(("norm", "_norm", "layernorm"))
               for p in parts[:-1])


def random_weights(shapes: dict, seed: int) -> dict:
    """Deterministic float32 weights for a {name: shape} table: fan-in scaled normals for matrices and kernels,
    norm scales near 1, small biases and embeddings, mix factors spread around 0."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name.endswith("mix_factor"):
            w = rng.normal(0.0, 0.5, shape)
        elif _is_norm(name) and name.endswith("weight"):
            w = 1.0 + 0.05 * rng.standard_normal(shape)
        elif len(shape) >= 2 and name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            w = rng.standard_normal(shape) / np.sqrt(fan_in)
        else:  # biases, class/position embeddings
            w = 0.02 * rng.standard_normal(shape)
        out[name] = np.ascontiguousarray(w, dtype=np.float32)
    return out


def tiny_components(device: str = "auto", seed: int = 0):
    """(unet, vae, image_encoder) with random weights drawn from `seed`."""
    from . import ImageEncoder, UNet, VAE
    from .runtime import resolve_device

    device = resolve_device(device)  # once, so "auto" warns once rather than per component
    # The weight tables come from the C models' own declarations for these configs.
    unet = UNet.from_config(UNET_CONFIG, random_weights(UNet.weight_shapes(UNET_CONFIG), seed), device=device)
    vae = VAE.from_config(VAE_CONFIG, random_weights(VAE.weight_shapes(VAE_CONFIG), seed + 1), device=device)
    enc = ImageEncoder.from_config(IMAGE_ENCODER_CONFIG,
                                   random_weights(ImageEncoder.weight_shapes(IMAGE_ENCODER_CONFIG), seed + 2),
                                   device=device)
    return unet, vae, enc


def tiny_pipeline(device: str = "auto", seed: int = 0):
    """svdc.ImageToVideo over the tiny random components (defaults: 6 frames of 64x64)."""
    from .pipelines.image_to_video import ImageToVideo

    unet, vae, enc = tiny_components(device=device, seed=seed)
    return ImageToVideo.from_components(unet, vae, enc, scheduler_config=SCHEDULER_CONFIG, num_frames=TINY_FRAMES)


def test_image(height: int = TINY_HEIGHT, width: int = TINY_WIDTH) -> np.ndarray:
    """A deterministic colourful test picture (H, W, 3) uint8: gradients and a disc."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / max(width - 1, 1)
    g = y / max(height - 1, 1)
    d = np.hypot(x - width * 0.6, y - height * 0.45) < min(height, width) * 0.25
    b = np.where(d, 1.0, 0.25 + 0.5 * (1 - r) * g)
    img = np.stack([r, g, b], axis=-1)
    img[d] = [0.95, 0.8, 0.2]
    return np.round(img * 255).astype(np.uint8)


def save_pipeline(folder, seed: int = 0, variant: str | None = None) -> str:
    """Writes the tiny random pipeline as a diffusers pipeline folder (model_index.json, unet/, vae/,
    image_encoder/, scheduler/ with configs and safetensors weights), so from_pretrained paths can be tried without
    downloads. variant="fp16" stores the weights as float16 under diffusers' variant file names. Returns the folder."""
    import json
    import os

    from . import ImageEncoder, UNet, VAE
    from .weights import save_file

    if variant not in (None, "fp16"):
        raise ValueError(f"variant: expected None or 'fp16', got {variant!r}")
    folder = os.fspath(folder)
    store = np.float16 if variant == "fp16" else np.float32
    suffix = f".{variant}" if variant else ""
    parts = {  # component: (config, weight table, file stem, diffusers/transformers class)
        "unet": (UNET_CONFIG, UNet.weight_shapes(UNET_CONFIG), "diffusion_pytorch_model",
                 ["diffusers", "UNetSpatioTemporalConditionModel"]),
        "vae": (VAE_CONFIG, VAE.weight_shapes(VAE_CONFIG), "diffusion_pytorch_model",
                ["diffusers", "AutoencoderKLTemporalDecoder"]),
        "image_encoder": (IMAGE_ENCODER_CONFIG, ImageEncoder.weight_shapes(IMAGE_ENCODER_CONFIG), "model",
                          ["transformers", "CLIPVisionModelWithProjection"]),
    }
    index = {"_class_name": "StableVideoDiffusionPipeline", "scheduler": ["diffusers", "EulerDiscreteScheduler"]}
    for i, (name, (config, shapes, stem, cls)) in enumerate(parts.items()):
        sub = os.path.join(folder, name)
        os.makedirs(sub, exist_ok=True)
        weights = {k: v.astype(store) for k, v in random_weights(shapes, seed + i).items()}
        save_file(weights, os.path.join(sub, f"{stem}{suffix}.safetensors"))
        extra = {"architectures": [cls[1]]} if cls[0] == "transformers" else {"_class_name": cls[1]}
        with open(os.path.join(sub, "config.json"), "w") as fh:
            json.dump({**extra, **config}, fh, indent=1)
        index[name] = cls
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as fh:
        json.dump({"_class_name": "EulerDiscreteScheduler", **SCHEDULER_CONFIG}, fh, indent=1)
    with open(os.path.join(folder, "model_index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    return folder
