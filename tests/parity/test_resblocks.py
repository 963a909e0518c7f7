"""SpatioTemporalResBlock (csrc/models/blocks/resblocks.c, run by svdc._C_testing.st_resblock) against diffusers.models.resnet.SpatioTemporalResBlock: with and
without a time embedding, channel changes, several epsilons, 1/2/5 frames, 2 videos, both blend directions."""
import numpy as np
import pytest

from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32

import svdc
from svdc._native import testing_ops as load_testing_ops

_ops = load_testing_ops()

# (in, out, temb_channels or None, eps, temporal_eps, vae_style, F, B)
CASES = [
    (32, 64, 48, 1e-6, 1e-5, False, 1, 2),   # UNet style: temb, 1x1 shortcut, one frame
    (64, 64, 40, 1e-5, 1e-5, False, 2, 2),   # UNet style, sgm epsilons
    (64, 32, None, 1e-6, 1e-5, True, 5, 2),  # VAE style: no temb, reversed blend, Cin > Cout
    (32, 32, None, 1e-6, 1e-5, True, 2, 2),
    (32, 96, 16, 1e-6, 1e-6, True, 5, 2),    # reversed blend with a temb
    (96, 32, None, 1e-6, 1e-5, True, 1, 1),  # one row wider than the output: its own temporary
    (96, 64, 8, 1e-6, 1e-5, False, 3, 1),    # Cin > Cout in chunks of rows through y
]


def _reference(torch, cin, cout, temb, eps, teps, vae_style, seed):
    from diffusers.models.resnet import SpatioTemporalResBlock

    torch.manual_seed(seed)
    kwargs = dict(in_channels=cin, out_channels=cout, temb_channels=temb, eps=eps, temporal_eps=teps)
    if vae_style:
        kwargs.update(merge_factor=0.0, merge_strategy="learned", switch_spatial_to_temporal_mix=True)
    block = SpatioTemporalResBlock(**kwargs).eval()
    perturb_parameters(block, seed=seed)
    with torch.no_grad():  # a logit far from 0, so that the two blend directions differ
        block.time_mixer.mix_factor.fill_(1.3 if seed % 2 else -0.9)
    return block


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}to{c[1]}-temb{c[2]}-F{c[6]}-{'vae' if c[5] else 'unet'}")
def test_st_resblock_parity(torch_cpu, case):
    torch = torch_cpu
    cin, cout, temb, eps, teps, vae_style, frames, videos = case
    seed = cin + cout + frames
    block = _reference(torch, cin, cout, temb, eps, teps, vae_style, seed)
    rng = np.random.default_rng(seed)
    n = frames * videos
    x = rng.standard_normal((n, cin, 5, 7)).astype(np.float32)
    t = rng.standard_normal((n, temb)).astype(np.float32) if temb else None
    with torch.no_grad():
        ref = block(torch.from_numpy(x), None if t is None else torch.from_numpy(t),
                    image_only_indicator=torch.zeros(videos, frames))
    weights = {"block." + k: v for k, v in state_dict_float32(block).items()}
    cfg = dict(in_channels=cin, out_channels=cout, temb_channels=temb or 0, groups=32, eps=eps, temporal_eps=teps,
               temporal_weight=int(vae_style))
    out = _ops.st_resblock(cfg, weights, x, frames, t)
    assert_parity(out, ref)
    # The direction matters with this mix factor: the other one must not match.
    cfg["temporal_weight"] = 1 - cfg["temporal_weight"]
    other = _ops.st_resblock(cfg, weights, x, frames, t)
    assert np.max(np.abs(other - ref.numpy())) > 1e-3 * np.max(np.abs(ref.numpy()))


def test_st_resblock_rejects_bad_frames(torch_cpu):
    block = _reference(torch_cpu, 32, 32, None, 1e-6, 1e-5, True, 0)
    weights = {"block." + k: v for k, v in state_dict_float32(block).items()}
    cfg = dict(in_channels=32, out_channels=32, temb_channels=0, groups=32, eps=1e-6, temporal_eps=1e-5,
               temporal_weight=1)
    x = np.zeros((5, 32, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match="5 rows"):
        _ops.st_resblock(cfg, weights, x, 2, None)
