"""16-bit weight storage (dtype="fp16" | "bf16", compute in float32) for the UNet, the VAE, the image encoder and the
text encoder, on the CPU and on the emulated device, against two references:

1. torch running the same model with its weights rounded to fp16/bf16 and cast back to float32 (what svdc computes:
   the rounding is torch's own .to(dtype), round-to-nearest-even). This must agree as closely as svdc's float32 path
   agrees with torch in float32 (REF_BOUND), so it checks the conversion bit for bit in effect.
2. svdc's own float32 model: the cost of 16-bit storage, within a per-model bound (BOUNDS) with its reason.

The per-model bounds were set from measured errors (printed with -s) with margin, not tuned to pass: each is the
weight rounding (a relative error u per weight: 2^-11 for fp16, 2^-8 for bf16 with round-to-nearest) carried
through the network. For a network of depth d of roughly norm-preserving layers, independent rounding errors add in
quadrature: relative output error ~ u * sqrt(d) * (gain of the layers), with the max over outputs a few times the
rms."""
from __future__ import annotations

import numpy as np
import pytest

import svdc
from tests.reference_helpers import perturb_parameters, state_dict_float32
from tests.parity._unet_reference import random_inputs, reference_model, run_reference, small_config
from tests.parity._vae_reference import make_reference, reference_decode, reference_encode

DEVICES = ("cpu", "emu")
DTYPES = ("fp16", "bf16")
# svdc (16-bit storage) vs torch with the same rounded weights: the float32 parity of the two implementations
# (measured 1.6e-7 .. 1.8e-6 of the output's range: summation order), with margin. Only weights of 2 or more
# dimensions are stored in 16 bits (1-D ones stay float32), and the torch reference rounds exactly those.
REF_BOUND = 1e-5
# svdc 16-bit storage vs svdc float32, max|diff| / max|fp32 output|. u = 2^-11 (fp16) / 2^-8 (bf16): bf16 costs
# about 8x fp16 everywhere, as the ratio of the two u predicts.
BOUNDS = {  # measured on these configs and weights (fp16 / bf16; the same on both devices), then the bound
    # UNet (2 levels, ~20 weighted layers on the longest path, softmaxes that amplify logit errors):
    # measured 9.0e-4 / 7.6e-3, about u * sqrt(20) * 2; bound 4x that.
    ("unet", "fp16"): 4e-3, ("unet", "bf16"): 3e-2,
    # VAE encode (2 levels of res blocks + the mid attention, ~10 convs deep): measured 5.0e-4 / 4.0e-3.
    ("vae_encode", "fp16"): 2e-3, ("vae_encode", "bf16"): 1.6e-2,
    # VAE decode (mid block, 2 up levels, temporal mixers, ~14 convs): measured 5.0e-4 / 4.8e-3.
    ("vae_decode", "fp16"): 2e-3, ("vae_decode", "bf16"): 1.6e-2,
    # Image encoder (patch conv + 2 pre-LN layers + projection, ~10 matmuls; the layer norms re-normalise):
    # measured 2.8e-4 / 2.1e-3.
    ("image_encoder", "fp16"): 1e-3, ("image_encoder", "bf16"): 1e-2,
    # Text encoder (embeddings + 3 pre-LN layers + projection, ~14 matmuls): measured 7.8e-4 / 5.8e-3.
    ("text_encoder", "fp16"): 3e-3, ("text_encoder", "bf16"): 1.6e-2,
}
TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def rounded_copy(torch, model, dtype: str):
    """A deep copy of `model` whose weights are stored as svdc stores them: parameters of 2 or more dimensions
    rounded to `dtype` by torch and cast back to float32; 1-D ones (biases, norm scales, mix factors) kept float32
    (csrc/core/params.c, param_dtype)."""
    import copy

    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            if p.ndim >= 2:
                p.copy_(p.to(getattr(torch, TORCH_DTYPES[dtype])).to(torch.float32))
    return twin


def rel_err(actual, reference) -> float:
    ref = np.asarray(reference, np.float64)
    scale = float(np.max(np.abs(ref)))
    assert scale > 0 and np.all(np.isfinite(actual))
    return float(np.max(np.abs(np.asarray(actual, np.float64) - ref))) / scale


def check(what: str, dtype: str, out16, torch_rounded, out32):
    """The two comparisons of the module docstring, printed for the record."""
    exact = rel_err(out16, torch_rounded)
    cost = rel_err(out16, out32)
    print(f"{what} {dtype}: vs torch with rounded weights {exact:.2e}, vs fp32 {cost:.2e}")
    assert exact <= REF_BOUND, f"{what} {dtype}: {exact:.3e} of range from torch with the same rounded weights"
    bound = BOUNDS[(what.split("@")[0], dtype)]
    assert cost <= bound, f"{what} {dtype}: {cost:.3e} of range from fp32 > {bound:g}"
    assert cost > 0, f"{what} {dtype}: identical to fp32, so the weights were not stored in 16 bits"


_CACHE = {}


def cached(name, build):
    """One reference model per module run (torch_cpu is function-scoped, so no module-scoped fixture can take it)."""
    if name not in _CACHE:
        _CACHE[name] = build()
    return _CACHE[name]


@pytest.fixture
def unet_case(torch_cpu):
    return cached("unet", lambda: build_unet_case(torch_cpu))


def build_unet_case(torch_cpu):
    cfg = small_config(levels=2)
    model = reference_model(torch_cpu, cfg)
    inputs = random_inputs(cfg, 2, 3, 8, 6, seed=1)
    weights = state_dict_float32(model)
    out32 = svdc.UNet.from_config(cfg, weights, device="cpu")(*inputs)
    return cfg, model, weights, inputs, out32


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_unet(torch_cpu, unet_case, dtype, device):
    cfg, model, weights, inputs, out32 = unet_case
    unet = svdc.UNet.from_config(cfg, weights, device=device, dtype=dtype)
    assert unet.dtype == dtype
    assert unet._native.weight_bytes < 0.55 * sum(w.nbytes for w in weights.values())  # 2 bytes a weight + padding
    ref = run_reference(torch_cpu, rounded_copy(torch_cpu, model, dtype), *inputs)
    check(f"unet@{device}", dtype, unet(*inputs), ref, out32)


VAE_CFG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[32, 64],
               down_block_types=["DownEncoderBlock2D"] * 2, layers_per_block=1)


@pytest.fixture
def vae_case(torch_cpu):
    return cached("vae", lambda: build_vae_case(torch_cpu))


def build_vae_case(torch_cpu):
    model, weights = make_reference(torch_cpu, VAE_CFG, seed=3)
    rng = np.random.default_rng(4)
    images = rng.uniform(-1, 1, (2, 3, 12, 20)).astype(np.float32)
    latents = rng.standard_normal((3, 4, 3, 4)).astype(np.float32)
    vae = svdc.VAE.from_config(VAE_CFG, weights, device="cpu")
    return model, weights, images, latents, vae.encode(images), vae.decode(latents, num_frames=3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_vae(torch_cpu, vae_case, dtype, device):
    model, weights, images, latents, enc32, dec32 = vae_case
    vae = svdc.VAE.from_config(VAE_CFG, weights, device=device, dtype=dtype)
    twin = rounded_copy(torch_cpu, model, dtype)
    check(f"vae_encode@{device}", dtype, vae.encode(images), reference_encode(torch_cpu, twin, images), enc32)
    check(f"vae_decode@{device}", dtype, vae.decode(latents, num_frames=3),
          reference_decode(torch_cpu, twin, latents, 3), dec32)


IMAGE_CFG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=16,
                 patch_size=4, projection_dim=24, hidden_act="gelu")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_image_encoder(torch_cpu, dtype, device):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch_cpu.manual_seed(0)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_CFG)).eval()
    model.config._attn_implementation = "eager"
    perturb_parameters(model, seed=0)
    weights = state_dict_float32(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    out32 = svdc.ImageEncoder.from_config(IMAGE_CFG, weights, device="cpu")(x)
    enc = svdc.ImageEncoder.from_config(IMAGE_CFG, weights, device=device, dtype=dtype)
    with torch_cpu.no_grad():
        ref = rounded_copy(torch_cpu, model, dtype)(pixel_values=torch_cpu.from_numpy(x)).image_embeds.numpy()
    check(f"image_encoder@{device}", dtype, enc(x), ref, out32)


TEXT_CFG = dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=24, eos_token_id=98,
                pad_token_id=1, bos_token_id=97)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_text_encoder(torch_cpu, dtype, device):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    model = perturb_parameters(CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_CFG)).eval(), seed=7)
    weights = state_dict_float32(model)
    ids = np.random.default_rng(0).integers(2, 97, (2, 9)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 97, 98
    out32 = svdc.TextEncoder.from_config(TEXT_CFG, weights, device="cpu")(ids)
    enc = svdc.TextEncoder.from_config(TEXT_CFG, weights, device=device, dtype=dtype)
    with torch_cpu.no_grad():
        ref = rounded_copy(torch_cpu, model, dtype)(torch_cpu.from_numpy(ids))
    out = enc(ids)
    check(f"text_encoder@{device}", dtype, out["hidden_states"], ref.last_hidden_state.numpy(),
          out32["hidden_states"])
    check(f"text_encoder@{device}", dtype, out["text_embeds"], ref.text_embeds.numpy(), out32["text_embeds"])
