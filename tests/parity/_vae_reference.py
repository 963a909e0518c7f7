"""Reference helpers for the VAE parity tests: random-weight diffusers AutoencoderKLTemporalDecoder models with every
parameter perturbed and the mix factors spread away from 0 (so the blend direction matters), and diffusers'
pipeline-style chunked decode replicated with torch."""
from __future__ import annotations

import numpy as np

from tests.reference_helpers import perturb_parameters, state_dict_float32


def spread_mix_factors(torch, module, seed: int = 1):
    """Sets every mix_factor logit to a value in [-2.5, 2.5] (σ from 0.08 to 0.92), away from the 0 init where
    both blend directions give the same result."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if name.endswith("mix_factor"):
                p.copy_(torch.rand(p.shape, generator=gen) * 5.0 - 2.5)
    return module


def make_reference(torch, config: dict, seed: int = 0):
    """A diffusers AutoencoderKLTemporalDecoder in fp32 eval mode with perturbed weights, and its float32 weights."""
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(seed)
    model = AutoencoderKLTemporalDecoder(**config).eval()
    perturb_parameters(model, seed=seed)
    spread_mix_factors(torch, model, seed=seed + 1)
    return model, state_dict_float32(model)


def reference_encode(torch, model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encode(torch.from_numpy(images)).latent_dist.mode().numpy()


def reference_decode(torch, model, latents: np.ndarray, num_frames: int) -> np.ndarray:
    with torch.no_grad():
        return model.decode(torch.from_numpy(latents), num_frames=num_frames).sample.numpy()


def reference_pipeline_decode(torch, model, latents: np.ndarray, decode_chunk_size: int) -> np.ndarray:
    """StableVideoDiffusionPipeline.decode_latents' loop (without its 1/scaling_factor, which the caller applies):
    consecutive chunks of the flattened rows, each decoded with num_frames = its length."""
    z = torch.from_numpy(latents)
    frames = []
    with torch.no_grad():
        for i in range(0, z.shape[0], decode_chunk_size):
            chunk = z[i:i + decode_chunk_size]
            frames.append(model.decode(chunk, num_frames=chunk.shape[0]).sample)
    return torch.cat(frames, dim=0).numpy()
