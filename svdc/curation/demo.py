"""Material for trying the curation pipeline without downloads (the notebook, the CLI tests): a few short labelled
synthetic videos (still or panning textures, hard cuts, burnt-in text), their captions, a tiny random-weight CLIP
model folder in transformers' CLIPModel layout and a matching random aesthetic head. Random weights: the scores
they give exercise the pipeline; they mean nothing."""
from __future__ import annotations

import json
import os

import numpy as np

__all__ = ["synthetic_videos", "tiny_clip_model", "tiny_aesthetic_head"]

TINY_CLIP_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "image_size": 64, "patch_size": 16, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
TINY_CLIP_PROJECTION = 16


def _texture(rng, h: int, w: int, tint) -> np.ndarray:
    """A smooth random colour texture (H, W, 3) float32 in 0..255 (bilinear upsampling of coarse noise)."""
    from PIL import Image

    coarse = (rng.uniform(0, 1, (max(2, h // 12), max(2, w // 12), 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), np.float32)
    return np.clip(img * 0.6 + np.asarray(tint, np.float32) * 0.4, 0, 255)


def _burn_text(frame: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=max(10, frame.shape[0] // 6))
    except TypeError:  # Pillow < 10.1 has one bitmap size
        font = ImageFont.load_default()
    draw.text((frame.shape[1] // 10, frame.shape[0] // 3), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def _write_video(path: str, frames, fps: int, gop: int) -> None:
    import av

    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "crf": "18", "sc_threshold": "0", "bf": "0"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# name -> shots: (motion in px per frame, burnt-in text or None, tint); every shot lasts `shot_frames`.
_VIDEOS = {
    "still_then_pan": [(0.0, None, (200, 60, 60)), (3.0, None, (60, 200, 60))],
    "fast_pan": [(4.0, None, (60, 60, 220))],
    "pan_with_title": [(2.0, "BIG TITLE", (220, 200, 60)), (2.0, None, (200, 60, 200))],
    "still_with_text": [(0.0, "SALE 50%", (60, 200, 200))],
}
_CAPTIONS = {
    "still_then_pan": {"image": "a red still texture", "video": "a still shot, then a green pan"},
    "fast_pan": {"image": "a blue pattern", "video": "the camera pans fast over a blue pattern",
                 "summary": "fast pan over blue"},
    "pan_with_title": {"image": "a yellow background with a big title", "video": "a title over a pan"},
    "still_with_text": {"image": "a sale advert", "summary": "text on a cyan texture"},
}


def synthetic_videos(folder, seed: int = 0, size=(72, 128), fps: int = 12, shot_frames: int = 36) -> dict:
    """Writes the demo videos (H.264, keyframes every fps/2 frames) into `folder` and a captions.jsonl keyed by
    video id. Returns {"videos": [paths], "labels": {name: {"cuts": [frame], "motion_px_per_frame": [...],
    "text": [bool per shot]}}, "captions": path}."""
    from .pipeline import video_id

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    paths, labels, caption_rows = [], {}, []
    for name, shots in _VIDEOS.items():
        frames = []
        for speed, text, tint in shots:
            tex = _texture(rng, h, w + int(speed * shot_frames) + 1, tint)
            for i in range(shot_frames):
                x = int(round(i * speed))
                frame = tex[:, x:x + w].astype(np.uint8)
                frames.append(_burn_text(frame, text) if text else frame)
        path = os.path.join(folder, f"{name}.mp4")
        _write_video(path, frames, fps, max(1, fps // 2))
        paths.append(path)
        labels[name] = {"cuts": [k * shot_frames for k in range(1, len(shots))],
                        "motion_px_per_frame": [s[0] for s in shots], "text": [s[1] is not None for s in shots]}
        caption_rows.append({"video_id": video_id(path), "captions": _CAPTIONS[name]})
    captions = os.path.join(folder, "captions.jsonl")
    with open(captions, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in caption_rows)
    return {"videos": paths, "labels": labels, "captions": captions}


def tiny_clip_model(folder, seed: int = 0) -> str:
    """A random-weight CLIPModel folder (config.json with text_config/vision_config, model.safetensors, a byte-level
    CLIP tokenizer) that svdc.curation.ClipProvider.from_pretrained loads. Returns the folder."""
    from .. import ImageEncoder, TextEncoder
    from ..tiny import random_weights, write_byte_tokenizer
    from ..weights import save_file

    vocab = write_byte_tokenizer(folder)
    text = {"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5, "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": 0}
    shapes = {**ImageEncoder.weight_shapes({**TINY_CLIP_VISION, "projection_dim": TINY_CLIP_PROJECTION}),
              **TextEncoder.weight_shapes({**text, "projection_dim": TINY_CLIP_PROJECTION}, with_projection=True)}
    save_file(random_weights(shapes, seed), os.path.join(folder, "model.safetensors"))
    config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": TINY_CLIP_PROJECTION,
              "logit_scale_init_value": 2.6592, "text_config": text, "vision_config": TINY_CLIP_VISION}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return os.fspath(folder)


def tiny_aesthetic_head(path, input_dim: int = TINY_CLIP_PROJECTION, seed: int = 0) -> str:
    """A random head in the LAION improved-predictor layout (layers.0/2/4/6/7: in -> 64 -> 32 -> 16 -> 8 -> 1)
    saved as .npz. Returns the path."""
    rng = np.random.default_rng(seed)
    widths = [input_dim, 64, 32, 16, 8, 1]
    state = {}
    for k, index in enumerate((0, 2, 4, 6, 7)):
        state[f"layers.{index}.weight"] = rng.standard_normal((widths[k + 1], widths[k])) / np.sqrt(widths[k])
        state[f"layers.{index}.bias"] = 0.1 * rng.standard_normal(widths[k + 1])
    np.savez(path, **state)
    return os.fspath(path)
