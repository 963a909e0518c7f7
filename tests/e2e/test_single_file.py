"""End to end from ONE Stability-layout .safetensors file: svdc.ImageToVideo.from_pretrained(file, configs=...) on the
tiny diffusers pipeline of test_image_to_video.py, written with the naming modules' inverse maps, must give exactly
the video of the diffusers-folder load and match diffusers; bad single files raise svdc.CheckpointError.

UNet epsilon: a single file is loaded with sgm's res-block epsilon (1e-5 everywhere) by default, because that is how
the Stability checkpoints were trained. The weights here come from a diffusers model, and the references (diffusers
itself and svdc's folder load) use diffusers' epsilons (1e-6 in the CrossAttnDown and Up res blocks), so the test
passes configs["unet"]["resnet_eps"] = "diffusers": only then can the single-file load be bit-identical to the
folder load. test_single_file_defaults_to_sgm_eps checks the default separately (it must differ from the folder)."""
import re

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.naming import clip as clip_naming
from svdc.naming import unet as unet_naming
from svdc.naming import vae as vae_naming
from svdc.weights import save_file

from tests.reference_helpers import state_dict_float32
from tests.e2e.test_image_to_video import _compare, _pil, reference  # noqa: F401  (reference is a fixture)

# The tiny components' configs; the UNet's with the diffusers epsilons (see the module docstring).
CONFIGS = {
    "unet": {**tiny.UNET_CONFIG, "resnet_eps": "diffusers"},
    "vae": dict(tiny.VAE_CONFIG),
    "image_encoder": dict(tiny.IMAGE_ENCODER_CONFIG),
}
UNET_CONV_IN = unet_naming.SGM_PREFIX + "input_blocks.0.0.weight"


def _decoys(rng, tensors):
    """Tensors real Stability files carry next to the used ones; every loader must skip them. Random values of
    plausible shapes, so that using one by mistake changes the output or fails to load."""
    enc = vae_naming.ENCODER_PREFIXES[0]
    dec_conv_in = tensors[vae_naming.DECODER_PREFIX + "conv_in.weight"]
    enc_conv_in = tensors[enc + "encoder.conv_in.weight"]
    out = {
        # the conditioner VAE's own decoder and post_quant_conv (the video decoder is first_stage_model.decoder)
        enc + "decoder.conv_in.weight": dec_conv_in.shape,
        enc + "post_quant_conv.weight": (4, 4, 1, 1),
        # the first stage's training-time encoder; the conditioning path uses conditioner.embedders.3's encoder
        "first_stage_model.encoder.conv_in.weight": enc_conv_in.shape,
        "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
        # the open_clip text tower's leftovers
        "conditioner.embedders.0.open_clip.model.token_embedding.weight": (49, 32),
        "conditioner.embedders.0.open_clip.model.ln_final.weight": (32,),
    }
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in out.items()}


def _single_file_tensors(pipe) -> dict:
    """One Stability-layout state dict of the diffusers pipeline's UNet, VAE and CLIP image tower."""
    tensors = {}
    parts = [
        unet_naming.to_single_file(state_dict_float32(pipe.unet), CONFIGS["unet"]),
        vae_naming.to_single_file(state_dict_float32(pipe.vae), len(tiny.VAE_CONFIG["block_out_channels"])),
        clip_naming.to_single_file(state_dict_float32(pipe.image_encoder)),
    ]
    for part in parts:
        clash = set(part) & set(tensors)
        assert not clash, f"two components write the same single-file keys: {sorted(clash)[:3]}"
        tensors.update(part)
    assert any(k.endswith("attn.in_proj_weight") for k in tensors)  # the fused q/k/v layout is exercised
    tensors.update(_decoys(np.random.default_rng(11), tensors))
    return tensors


@pytest.fixture(scope="module")
def single_file(reference, tmp_path_factory):
    """(path of the single file, its tensors, svdc pipeline loaded from it with CONFIGS)."""
    pipe, _, _ = reference
    tensors = _single_file_tensors(pipe)
    path = tmp_path_factory.mktemp("single") / "svd_tiny.safetensors"
    save_file(tensors, path)
    return path, tensors, svdc.ImageToVideo.from_pretrained(path, device="cpu", configs=CONFIGS)


def test_components_equal_folder_load(reference, single_file):
    """Every component of the single-file load computes bit-for-bit what the folder load does."""
    _, _, folder = reference
    _, _, ours = single_file
    assert ours.default_num_frames == tiny.UNET_CONFIG["num_frames"]  # from configs["unet"], not the file name
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 8, 8, 8)).astype(np.float32)
    t = np.array([0.7], np.float32)
    e = rng.standard_normal((1, 1, 32)).astype(np.float32)
    ids = np.array([[6.0, 127.0, 0.02]], np.float32)
    np.testing.assert_array_equal(ours.unet(x, t, e, ids), folder.unet(x, t, e, ids))
    img = rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(ours.vae.encode(img), folder.vae.encode(img))
    z = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(ours.vae.decode(z, num_frames=2), folder.vae.decode(z, num_frames=2))
    pix = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.testing.assert_array_equal(ours.image_encoder(pix), folder.image_encoder(pix))


CASE = dict(num_frames=4, num_inference_steps=4, min_guidance_scale=1.2, max_guidance_scale=2.5, decode_chunk_size=3,
            noise_aug_strength=0.05, height=64, width=64)


def test_video_equals_folder_and_matches_diffusers(reference, single_file):
    import torch

    pipe, _, folder = reference
    _, _, ours = single_file
    image, seed = _pil(64, 64), 321
    from_file = ours(image, seed=seed, progress=False, **CASE)
    from_folder = folder(image, seed=seed, progress=False, **CASE)
    np.testing.assert_array_equal(from_file.frames, from_folder.frames)
    with torch.no_grad():
        ref = pipe(image, generator=torch.Generator().manual_seed(seed), output_type="np", **CASE).frames
    ok, worst = _compare(from_file.frames, np.asarray(ref), "single file vs diffusers")
    print(f"single file vs diffusers: {ok:.5%} of pixels within 1 level, max diff {worst}")


def test_single_file_defaults_to_sgm_eps(reference, single_file):
    """Without resnet_eps the single-file UNet uses sgm's 1e-5: close to, but not bit-equal with, the folder's."""
    _, _, folder = reference
    path, _, _ = single_file
    cfg = {k: v for k, v in CONFIGS["unet"].items() if k != "resnet_eps"}
    sgm = svdc.ImageToVideo.from_pretrained(path, device="cpu", configs={**CONFIGS, "unet": cfg})
    assert sgm.unet.config["resnet_eps"] == "sgm"
    rng = np.random.default_rng(4)
    args = (rng.standard_normal((1, 2, 8, 8, 8)).astype(np.float32), np.array([0.7], np.float32),
            rng.standard_normal((1, 1, 32)).astype(np.float32), np.array([[6.0, 127.0, 0.02]], np.float32))
    a, b = sgm.unet(*args), folder.unet(*args)
    assert not np.array_equal(a, b)
    assert np.max(np.abs(a - b)) <= 1e-2 * np.max(np.abs(b))  # an epsilon change, not a different network


def test_without_configs_the_full_size_preset_is_refused(single_file):
    path, _, _ = single_file
    with pytest.raises(svdc.CheckpointError, match=r"label_emb\.0\.0\.weight has input width 24"):
        svdc.ImageToVideo.from_pretrained(path, device="cpu")


def test_bad_configs_argument(single_file):
    path, _, _ = single_file
    with pytest.raises(ValueError, match="configs: unknown component"):
        svdc.ImageToVideo.from_pretrained(path, device="cpu", configs={"text_encoder": {}})
    with pytest.raises(TypeError, match=re.escape("configs['vae']")):
        svdc.ImageToVideo.from_pretrained(path, device="cpu", configs={**CONFIGS, "vae": [1, 2]})
    with pytest.raises(TypeError, match="configs"):
        svdc.ImageToVideo.from_pretrained(path, device="cpu", configs=[("unet", {})])


# ---- bad single files ----------------------------------------------------------------------------------------------
def test_missing_vae_encoder_names_the_prefix(single_file, tmp_path):
    _, tensors, _ = single_file
    enc = vae_naming.ENCODER_PREFIXES[0]
    kept = {k: v for k, v in tensors.items() if not k.startswith((enc + "encoder.", enc + "quant_conv."))}
    assert len(kept) < len(tensors)
    bad = tmp_path / "no_vae_encoder.safetensors"
    save_file(kept, bad)
    with pytest.raises(svdc.CheckpointError, match=re.escape(enc + "encoder.")):
        svdc.ImageToVideo.from_pretrained(bad, device="cpu", configs=CONFIGS)


def test_misshaped_unet_tensor_names_the_tensor(single_file, tmp_path):
    _, tensors, _ = single_file
    w = tensors[UNET_CONV_IN]  # (32, 8, 3, 3)
    bad = tmp_path / "bad_unet.safetensors"
    save_file({**tensors, UNET_CONV_IN: np.ascontiguousarray(w[:, :4])}, bad)
    with pytest.raises(svdc.CheckpointError, match=r"conv_in\.weight.*shape"):
        svdc.ImageToVideo.from_pretrained(bad, device="cpu", configs=CONFIGS)
