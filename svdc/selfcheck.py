"""The "which models run on which device" table of svdc.info(): each model type, built from the tiny random configs
(svdc/tiny.py; the text encoder from sd_text_encoder_config), runs one small call on each device and is compared with
the same call on the CPU. Never raises: every cell is "PASS" or "FAIL: <reason>"."""
from __future__ import annotations

import numpy as np

# Float32 device results must equal the CPU's up to summation order (tests/device: 1e-6 of max|ref|); a looser
# bound here would hide a broken backend, a tighter one would fail a correct one that chunks differently.
_REL = 1e-5


def _calls():
    """model name -> (build(device), call(model)) on tiny inputs."""
    from . import ImageEncoder, TextEncoder, UNet, VAE, tiny

    rng = np.random.default_rng(0)
    sample = rng.standard_normal((1, 2, 8, 8, 8)).astype(np.float32)
    context = rng.standard_normal((1, 1, 32)).astype(np.float32)
    ids = rng.standard_normal((1, 3)).astype(np.float32)
    latents = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    pixels = rng.uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    text_config = tiny.sd_text_encoder_config(vocab_size=64)
    text_shapes = TextEncoder.weight_shapes(text_config, with_projection=True)
    token_ids = rng.integers(0, 64, (2, 7))  # (N, T)

    def build(cls, config, seed, shapes=None):
        weights = tiny.random_weights(shapes or cls.weight_shapes(config), seed)
        return lambda device: cls.from_config(config, weights, device=device)

    def encode_text(encoder):
        out = encoder(token_ids)  # with a projection: every output of the tower, flattened into one array
        return np.concatenate([out["hidden_states"].ravel(), out["pooler_output"].ravel(), out["text_embeds"].ravel()])

    return {
        "UNet": (build(UNet, tiny.UNET_CONFIG, 0), lambda m: m(sample, np.float32(0.5), context, ids)),
        "VAE": (build(VAE, tiny.VAE_CONFIG, 1), lambda m: m.decode(latents, num_frames=2)),
        "ImageEncoder": (build(ImageEncoder, tiny.IMAGE_ENCODER_CONFIG, 2), lambda m: m(pixels)),
        "TextEncoder": (build(TextEncoder, text_config, 3, text_shapes), encode_text),
    }


def _one(build, call, device, reference):
    try:
        out = np.asarray(call(build(device)), dtype=np.float64)
    except Exception as exc:  # report, never raise, from info()
        return f"FAIL: {type(exc).__name__}: {exc}"
    if reference is None:
        return "PASS" if np.isfinite(out).all() else "FAIL: non-finite output"
    scale = float(np.max(np.abs(reference))) or 1.0
    err = float(np.max(np.abs(out - reference)))
    return "PASS" if err <= _REL * scale else f"FAIL: max|{device} - cpu| = {err:.3g} (max|cpu| = {scale:.3g})"


def model_table(devices: list[str]) -> dict:
    """{device: {model: "PASS" | "FAIL: reason"}} for the given device strings ("cpu" first, as the reference)."""
    table = {}
    references = {}
    for name, (build, call) in _calls().items():
        try:
            references[name] = np.asarray(call(build("cpu")), dtype=np.float64)
            table.setdefault("cpu", {})[name] = "PASS" if np.isfinite(references[name]).all() else \
                "FAIL: non-finite output"
        except Exception as exc:  # report, never raise, from info()
            references[name] = None
            table.setdefault("cpu", {})[name] = f"FAIL: {type(exc).__name__}: {exc}"
        for device in devices:
            if device != "cpu":
                table.setdefault(device, {})[name] = _one(build, call, device, references[name])
    return table
