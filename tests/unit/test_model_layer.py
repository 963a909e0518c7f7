"""The model layer's seams: the bindings' one config reader (key, type and range in every refusal, int32 bounds) and
SV3D's single-file VAE loading as the 2-D decoder it is (no identity temporal weights)."""
import numpy as np
import pytest

import svdc
from svdc import _C, tiny
from svdc.configs import unet as unet_configs
from svdc.configs import vae as vae_configs
from svdc.naming import vae as vae_naming
from svdc.models.vae import _native_config


def _unet_native():
    return unet_configs.to_native(tiny.UNET_CONFIG)


def _vae_native():
    return _native_config(vae_configs.normalize(tiny.VAE_CONFIG))


@pytest.mark.parametrize("make, key, value, error, text", [
    (_unet_native, "in_channels", 2**31, ValueError, "beyond the int32 range"),
    (_unet_native, "in_channels", -(2**40), ValueError, "beyond the int32 range"),
    (_unet_native, "in_channels", 0, ValueError, "must be in 1.."),
    (_unet_native, "in_channels", 8.0, TypeError, "must be an int, got float"),
    (_unet_native, "kind", True, TypeError, "must be an int, got bool"),
    (_unet_native, "block_out_channels", [32, 2**32], ValueError, r"'block_out_channels'\[1\]"),
    (_unet_native, "down_attention", [1], ValueError, "has 1 entries, expected 2"),
    (_unet_native, "linear_projection", 2, ValueError, "must be a bool"),
    (_unet_native, "norm_eps", float("nan"), ValueError, "finite number"),
    (_vae_native, "block_out_channels", "32", TypeError, "must be a list of ints"),
    (_vae_native, "decoder_kind", 2, ValueError, "must be in 0..1, got 2"),
])
def test_config_reader_refusals_name_model_key_and_values(make, key, value, error, text):
    native = make()
    native[key] = value
    model = _C.UNet if "kind" in native else _C.VAE
    name = "UNet" if model is _C.UNet else "VAE"
    with pytest.raises(error, match=text) as info:
        model.weight_shapes(native)
    assert f"{name} config" in str(info.value) and key in str(info.value)


def test_config_reader_missing_key_and_non_dict():
    native = _vae_native()
    del native["latent_channels"]
    with pytest.raises(KeyError, match="VAE config: missing key 'latent_channels'"):
        _C.VAE.weight_shapes(native)
    with pytest.raises(TypeError, match="VAE: config must be a dict, got list"):
        _C.VAE.weight_shapes([1])


def test_sv3d_single_file_vae_is_the_2d_decoder(tmp_path):
    """A Stability single file whose first-stage decoder has no temporal parts loads as an AutoencoderKL without
    post_quant_conv, decoding exactly as the tiny SV3D VAE (which is built 2-D)."""
    _, vae_2d, _ = tiny.tiny_multiview_components("sv3d_p", device="cpu")
    temporal = tiny.random_weights(svdc.VAE.weight_shapes(tiny.SV3D_VAE_CONFIG), 1)
    plain = {k: v for k, v in temporal.items()
             if ".temporal_res_block." not in k and "time_mixer" not in k and "time_conv_out" not in k}
    levels = len(tiny.SV3D_VAE_CONFIG["block_out_channels"])
    single = vae_naming.to_single_file(plain, levels, encoder_prefix="conditioner.embedders.1.encoder.")
    assert not vae_naming.has_temporal_decoder(single)
    path = tmp_path / "sv3d_vae.safetensors"
    svdc.weights.save_file(single, path)
    vae = svdc.VAE.from_pretrained(path, device="cpu", config=dict(tiny.SV3D_VAE_CONFIG))
    assert not vae.is_temporal
    assert not any(k.startswith("post_quant_conv.") or "temporal" in k or "time_" in k for k in vae.weight_shapes())
    z = np.random.default_rng(0).standard_normal((3, 4, 4, 5)).astype(np.float32)
    assert np.array_equal(vae.decode(z), vae_2d.decode(z))
    assert vae_configs.preset("sv3d_p")["_class_name"] == "AutoencoderKL"
    assert vae_configs.preset("sv3d_u")["use_post_quant_conv"] is False
