"""Model.weight_shapes(config): the C models' declared weight tables equal the diffusers/transformers state dicts
(minus the buffers svdc ignores), for the tiny configs and a second small config of each model."""
import pytest

import svdc
from svdc import tiny
from svdc.naming import clip as clip_naming


def _shapes(module, ignored=frozenset()):
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if k not in ignored}


UNET_SMALL = dict(tiny.UNET_CONFIG, block_out_channels=[32, 32, 64],
                  down_block_types=["CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                                    "DownBlockSpatioTemporal"],
                  up_block_types=["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                                  "CrossAttnUpBlockSpatioTemporal"],
                  num_attention_heads=[2, 2, 4], layers_per_block=2)
VAE_SMALL = dict(tiny.VAE_CONFIG, block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
                 layers_per_block=2, latent_channels=3)
ENCODER_SMALL = dict(tiny.IMAGE_ENCODER_CONFIG, num_hidden_layers=1, image_size=64, patch_size=16,
                     hidden_act="quick_gelu", projection_dim=24)


@pytest.mark.parametrize("config", [tiny.UNET_CONFIG, UNET_SMALL], ids=["tiny", "small"])
def test_unet_weight_shapes_match_diffusers(torch_cpu, config):
    from diffusers import UNetSpatioTemporalConditionModel

    assert svdc.UNet.weight_shapes(config) == _shapes(UNetSpatioTemporalConditionModel(**config))


@pytest.mark.parametrize("config", [tiny.VAE_CONFIG, VAE_SMALL], ids=["tiny", "small"])
def test_vae_weight_shapes_match_diffusers(torch_cpu, config):
    from diffusers import AutoencoderKLTemporalDecoder

    assert svdc.VAE.weight_shapes(config) == _shapes(AutoencoderKLTemporalDecoder(**config))


@pytest.mark.parametrize("config", [tiny.IMAGE_ENCODER_CONFIG, ENCODER_SMALL], ids=["tiny", "small"])
def test_image_encoder_weight_shapes_match_transformers(torch_cpu, config):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    ref = CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
    assert svdc.ImageEncoder.weight_shapes(config) == _shapes(ref, clip_naming.IGNORED_TRANSFORMERS_KEYS)


def test_instance_weight_shapes_equal_the_class_table():
    unet, vae, enc = tiny.tiny_components(device="cpu")
    assert unet.weight_shapes() == svdc.UNet.weight_shapes(tiny.UNET_CONFIG)
    assert vae.weight_shapes() == svdc.VAE.weight_shapes(tiny.VAE_CONFIG)
    assert enc.weight_shapes() == svdc.ImageEncoder.weight_shapes(tiny.IMAGE_ENCODER_CONFIG)
    assert sum(int(__import__("numpy").prod(s)) for s in unet.weight_shapes().values()) == unet.num_parameters


def test_weight_shapes_on_the_class_needs_a_config():
    with pytest.raises(TypeError, match="config is required"):
        svdc.UNet.weight_shapes()
