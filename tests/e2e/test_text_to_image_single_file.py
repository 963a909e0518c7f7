"""A tiny SD 2.x checkpoint written in the Stability single-file layout (model.diffusion_model.*, first_stage_model.*,
cond_stage_model.model.* with the whole text tower: one layer more than the diffusers folder's, plus the projection)
loads into svdc.TextToImage and gives exactly the folder load's images; its missing tokenizer is refused."""
import os

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.configs import unet as unet_configs
from svdc.naming import text_encoder as te_naming
from svdc.naming import unet as unet_naming
from svdc.naming import vae as vae_naming
from svdc.weights import load_file, save_file


@pytest.fixture(scope="module")
def folder_and_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd_single")
    folder = tiny.save_sd_pipeline(root / "folder", seed=7)
    unet_w = load_file(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))
    vae_w = load_file(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"))
    te_w = dict(load_file(os.path.join(folder, "text_encoder", "model.safetensors")))
    te_cfg = tiny.sd_text_encoder_config(len(svdc.CLIPTokenizer.from_pretrained(folder).encoder))
    # The full tower: the folder's layers, then one more (dropped by the penultimate-layer conditioning) and the
    # projection, both random.
    full_cfg = {**te_cfg, "num_hidden_layers": te_cfg["num_hidden_layers"] + 1}
    extra = tiny.random_weights(svdc.TextEncoder.weight_shapes(full_cfg, with_projection=True), seed=99)
    last = f"text_model.encoder.layers.{te_cfg['num_hidden_layers']}."
    te_w.update({k: v for k, v in extra.items() if k.startswith(last) or k == "text_projection.weight"})
    single = {}
    single.update(unet_naming.to_single_file(unet_w, unet_configs.from_diffusers(tiny.SD_UNET_CONFIG)))
    single.update(vae_naming.kl_to_single_file(vae_w, len(tiny.SD_VAE_CONFIG["block_out_channels"])))
    single.update(te_naming.to_single_file(te_w))
    path = root / "tiny-sd-v2-1_512.safetensors"
    save_file(single, path)
    configs = {"unet": tiny.SD_UNET_CONFIG, "vae": tiny.SD_VAE_CONFIG, "text_encoder": full_cfg}
    return folder, str(path), configs


def test_single_file_equals_folder(folder_and_file):
    folder, path, configs = folder_and_file
    a = svdc.TextToImage.from_pretrained(folder, device="cpu")
    b = svdc.TextToImage.from_pretrained(path, device="cpu", tokenizer=os.path.join(folder, "tokenizer"),
                                         configs=configs)
    assert b.scheduler.prediction_type == "epsilon"  # "512" in the name: SD 2.1-base
    kw = dict(negative_prompt=["x", "y"], num_inference_steps=3, guidance_scale=6.0, height=64, width=64, seed=11,
              progress=False)
    for x, y in zip(a(["a red fox", "a blue car"], **kw), b(["a red fox", "a blue car"], **kw)):
        np.testing.assert_array_equal(x, y)


def test_prediction_type_from_the_file_name(folder_and_file, tmp_path):
    folder, path, configs = folder_and_file
    v_path = tmp_path / "v2-1_768-tiny.safetensors"
    os.symlink(path, v_path)
    pipe = svdc.TextToImage.from_pretrained(v_path, device="cpu", tokenizer=folder, configs=configs)
    assert pipe.scheduler.prediction_type == "v_prediction"


def test_single_file_needs_a_tokenizer(folder_and_file):
    _, path, configs = folder_and_file
    with pytest.raises(ValueError, match="tokenizer"):
        svdc.TextToImage.from_pretrained(path, device="cpu", configs=configs)
    with pytest.raises(ValueError, match="configs"):
        svdc.TextToImage.from_single_file(path, tokenizer="x", configs={"image_encoder": {}})
