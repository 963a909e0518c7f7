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


def tiny_components(device: str = "auto", seed: int = 0, dtype=None):
    """(unet, vae, image_encoder) with random weights drawn from `seed`, stored in `dtype` (None: the device's
    default)."""
    from . import ImageEncoder, UNet, VAE
    from .runtime import resolve_device

    device = resolve_device(device)  # once, so "auto" warns once rather than per component
    # The weight tables come from the C models' own declarations for these configs.
    unet = UNet.from_config(UNET_CONFIG, random_weights(UNet.weight_shapes(UNET_CONFIG), seed), device=device,
                            dtype=dtype)
    vae = VAE.from_config(VAE_CONFIG, random_weights(VAE.weight_shapes(VAE_CONFIG), seed + 1), device=device,
                          dtype=dtype)
    enc = ImageEncoder.from_config(IMAGE_ENCODER_CONFIG,
                                   random_weights(ImageEncoder.weight_shapes(IMAGE_ENCODER_CONFIG), seed + 2),
                                   device=device, dtype=dtype)
    return unet, vae, enc


def tiny_pipeline(device: str = "auto", seed: int = 0, dtype=None):
    """svdc.ImageToVideo over the tiny random components (defaults: 6 frames of 64x64), weights stored in `dtype`."""
    from .pipelines.image_to_video import ImageToVideo

    unet, vae, enc = tiny_components(device=device, seed=seed, dtype=dtype)
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


# --- a tiny SV3D-like model (svdc.MultiView) --------------------------------------------------------------------
TINY_SV3D_SIZE = 64
TINY_SV3D_STEPS = 4
# Two layers per block, as SD's 2-D decoder has: only then does the temporal decoder's mid block run
# res, attention, res like the 2-D one (with one layer it runs a single res block). The sizes of the tiny SV3D VAE;
# its weights are drawn for this (temporal) table, so they are the same whichever decoder form is loaded.
SV3D_VAE_CONFIG = {**VAE_CONFIG, "layers_per_block": 2}
# The tiny SV3D VAE as SV3D has it: a 2-D decoder without post_quant_conv (configs/vae.py SV3D).
SV3D_VAE_2D_CONFIG = {**SV3D_VAE_CONFIG, "_class_name": "AutoencoderKL",
                      "up_block_types": ["UpDecoderBlock2D"] * len(SV3D_VAE_CONFIG["block_out_channels"]),
                      "use_post_quant_conv": False}


def sv3d_unet_config(kind: str = "sv3d_p") -> dict:
    """The tiny UNet with SV3D's real added ids: sv3d_p [cond_aug, polar, azimuth] embedded at widths
    [256, 512, 512] (projection 1280), sv3d_u [cond_aug] at 256; 21 frames."""
    widths = {"sv3d_p": [256, 512, 512], "sv3d_u": [256]}
    if kind not in widths:
        raise ValueError(f"kind: expected 'sv3d_p' or 'sv3d_u', got {kind!r}")
    return {**UNET_CONFIG, "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": sum(widths[kind]),
            "added_id_widths": widths[kind], "num_frames": 21}


def decoder_2d_weights(weights: dict) -> dict:
    """AutoencoderKL weights (2-D decoder, no post_quant_conv) from AutoencoderKLTemporalDecoder ones: the spatial
    halves of the decoder's res blocks, the temporal parts dropped."""
    return {k.replace(".spatial_res_block.", "."): v for k, v in weights.items()
            if ".temporal_res_block." not in k and "time_mixer" not in k and "time_conv_out" not in k}


def identity_temporal_decoder(weights: dict) -> dict:
    """The VAE weights with every temporal part of the decoder made an exact identity (zero temporal res-block
    convs, time_conv_out = centre tap 1): an AutoencoderKLTemporalDecoder that decodes like the 2-D decoder of
    decoder_2d_weights(weights), for writing SV3D-like weights in the temporal layout (tests)."""
    out = dict(weights)
    for name, w in weights.items():
        if ".temporal_res_block." in name or name == "decoder.time_conv_out.bias":
            is_norm_weight = ".norm" in name and name.endswith(".weight")
            out[name] = np.full(w.shape, 1.0 if is_norm_weight else 0.0, np.float32)
        elif name.endswith("time_mixer.mix_factor"):
            out[name] = np.zeros(w.shape, np.float32)
    w = np.zeros(weights["decoder.time_conv_out.weight"].shape, np.float32)  # (C, C, 3, 1, 1)
    w[np.arange(w.shape[0]), np.arange(w.shape[0]), 1, 0, 0] = 1.0
    out["decoder.time_conv_out.weight"] = w
    return out


def tiny_multiview_components(kind: str = "sv3d_p", device: str = "auto", seed: int = 0, dtype=None):
    """(unet, vae, image_encoder) of a tiny random SV3D-like model: the SV3D-id UNet, a VAE with a 2-D decoder;
    weights stored in `dtype`."""
    from . import ImageEncoder, UNet, VAE
    from .runtime import resolve_device

    device = resolve_device(device)
    cfg = sv3d_unet_config(kind)
    unet = UNet.from_config(cfg, random_weights(UNet.weight_shapes(cfg), seed), device=device, dtype=dtype)
    vae_weights = decoder_2d_weights(random_weights(VAE.weight_shapes(SV3D_VAE_CONFIG), seed + 1))
    vae = VAE.from_config(SV3D_VAE_2D_CONFIG, vae_weights, device=device, dtype=dtype)
    enc = ImageEncoder.from_config(IMAGE_ENCODER_CONFIG,
                                   random_weights(ImageEncoder.weight_shapes(IMAGE_ENCODER_CONFIG), seed + 2),
                                   device=device, dtype=dtype)
    return unet, vae, enc


def tiny_multiview(kind: str = "sv3d_p", device: str = "auto", seed: int = 0, dtype=None):
    """svdc.MultiView over the tiny random SV3D-like components (21 views of 64x64)."""
    from .pipelines.multiview import MultiView

    return MultiView.from_components(*tiny_multiview_components(kind, device, seed, dtype), size=TINY_SV3D_SIZE)


def test_object(size: int = TINY_SV3D_SIZE) -> np.ndarray:
    """A deterministic RGBA test object (size, size, 4) uint8: a shaded ball and a box, off-centre, on transparency."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    ball = np.hypot(x - 0.4, y - 0.45) < 0.22
    box = (np.abs(x - 0.62) < 0.12) & (np.abs(y - 0.62) < 0.18)
    shade = np.clip(1.1 - np.hypot(x - 0.33, y - 0.38) * 2.5, 0.2, 1.0)
    rgba = np.zeros((size, size, 4), np.float32)
    rgba[box] = [0.2, 0.35, 0.85, 1.0]
    rgba[ball, :3] = np.stack([0.9 * shade, 0.45 * shade, 0.1 * shade], -1)[ball]
    rgba[ball, 3] = 1.0
    return np.round(rgba * 255).astype(np.uint8)


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


# --- a tiny random Stable Diffusion 2.x pipeline (text-to-image) -----------------------------------------------
SD_UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": [2, 4],  # SD 2.x: the head count per level
    "use_linear_projection": True,
    "upcast_attention": True,
}

SD_VAE_CONFIG = {
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [32, 32, 32, 32],
    "layers_per_block": 1,
    "latent_channels": 4,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}

# SD 2.x's scheduler settings (scaled_linear betas, leading spacing with offset 1), epsilon prediction.
SD_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "steps_offset": 1, "timestep_spacing": "leading", "interpolation_type": "linear", "trained_betas": None,
}


def sd_text_encoder_config(vocab_size: int) -> dict:
    """A tiny CLIPTextModel config (SD 2.x's gelu, 77 positions) for a vocabulary of `vocab_size` tokens whose
    last two ids are <|startoftext|>, <|endoftext|>."""
    return {"architectures": ["CLIPTextModel"], "vocab_size": vocab_size, "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "max_position_embeddings": 77, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": 0,
            "projection_dim": 32}


def write_byte_tokenizer(folder) -> int:
    """Writes a CLIP tokenizer folder with a byte-level vocabulary and no merges (every word is spelled byte by
    byte), laid out as CLIP's (the printable bytes first, so SD 2.x's pad token "!" is id 0). Returns its size."""
    import json
    import os

    from .tokenizer import _BYTE_SYMBOLS

    symbols = [s for s in _BYTE_SYMBOLS if ord(s) < 256] + [s for s in _BYTE_SYMBOLS if ord(s) >= 256]
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                "pad_token": "!"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(specials, f)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({**specials, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, f)
    return len(vocab)


def save_sd_pipeline(folder, seed: int = 0, prediction_type: str = "epsilon") -> str:
    """Writes a tiny random SD 2.x pipeline as a diffusers folder (model_index.json, unet/, vae/, text_encoder/,
    tokenizer/, scheduler/), loadable by svdc.TextToImage.from_pretrained. Returns the folder."""
    import json
    import os

    from . import TextEncoder, UNet, VAE
    from .weights import save_file

    folder = os.fspath(folder)
    vocab_size = write_byte_tokenizer(os.path.join(folder, "tokenizer"))
    te_config = sd_text_encoder_config(vocab_size)
    te_shapes = TextEncoder.weight_shapes(te_config)
    parts = {  # component: (config, weight table, file stem, library/class)
        "unet": (SD_UNET_CONFIG, UNet.weight_shapes(SD_UNET_CONFIG), "diffusion_pytorch_model",
                 ["diffusers", "UNet2DConditionModel"]),
        "vae": (SD_VAE_CONFIG, VAE.weight_shapes(SD_VAE_CONFIG), "diffusion_pytorch_model",
                ["diffusers", "AutoencoderKL"]),
        "text_encoder": (te_config, te_shapes, "model", ["transformers", "CLIPTextModel"]),
    }
    index = {"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "tokenizer": ["transformers", "CLIPTokenizer"]}
    for i, (name, (config, shapes, stem, cls)) in enumerate(parts.items()):
        sub = os.path.join(folder, name)
        os.makedirs(sub, exist_ok=True)
        save_file(random_weights(shapes, seed + i), os.path.join(sub, f"{stem}.safetensors"))
        with open(os.path.join(sub, "config.json"), "w") as fh:
            json.dump(config, fh, indent=1)
        index[name] = cls
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as fh:
        json.dump({**SD_SCHEDULER_CONFIG, "prediction_type": prediction_type}, fh, indent=1)
    with open(os.path.join(folder, "model_index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
    return folder


def tiny_sd_pipeline(folder, seed: int = 0, dtype=None):
    """svdc.TextToImage over a tiny random SD 2.x pipeline written to `folder` (64x64 images), weights in `dtype`."""
    from .pipelines.text_to_image import TextToImage

    return TextToImage.from_pretrained(save_sd_pipeline(folder, seed), device="cpu", dtype=dtype)
