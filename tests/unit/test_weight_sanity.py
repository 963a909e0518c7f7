"""Corrupt weights are detected at load: NaN/Inf in any tensor (with an opt-out), big-endian arrays read by value,
and a checkpoint truncated on disk after it was opened is an error rather than a SIGBUS."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import svdc
from svdc import tiny, weights

Z = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)


def _vae_weights():
    return tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1)


def test_one_nan_in_vae_weights_is_a_checkpoint_error_naming_the_tensor():
    w = _vae_weights()
    name = sorted(k for k in w if k.startswith("decoder."))[3]
    w[name] = w[name].copy()
    w[name].flat[w[name].size // 2] = np.nan
    with pytest.raises(svdc.CheckpointError, match=rf"weights\['{name}'\]: 1 of {w[name].size} values are NaN"):
        svdc.VAE.from_config(tiny.VAE_CONFIG, w, device="cpu")


@pytest.mark.parametrize("cls,config,seed", [(svdc.UNet, tiny.UNET_CONFIG, 0),
                                             (svdc.ImageEncoder, tiny.IMAGE_ENCODER_CONFIG, 2)])
def test_inf_in_unet_and_encoder_weights_is_refused(cls, config, seed):
    w = tiny.random_weights(cls.weight_shapes(config), seed)
    name = sorted(w)[-1]
    w[name] = np.full_like(w[name], np.inf)
    with pytest.raises(svdc.CheckpointError, match="NaN or Inf"):
        cls.from_config(config, w, device="cpu")


def test_nan_in_a_checkpoint_folder_is_refused_and_the_check_can_be_skipped(tmp_path, monkeypatch):
    w = _vae_weights()
    name = sorted(w)[0]
    w[name][...] = np.nan
    weights.save_file(w, tmp_path / "diffusion_pytorch_model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(dict(tiny.VAE_CONFIG, _class_name="AutoencoderKLTemporalDecoder")))
    with pytest.raises(svdc.CheckpointError, match=name):
        svdc.VAE.from_pretrained(tmp_path, device="cpu")
    monkeypatch.setattr(weights, "CHECK_FINITE", False)
    svdc.VAE.from_pretrained(tmp_path, device="cpu")  # the opt-out loads it as it is


def test_big_endian_weights_are_read_by_value():
    w = _vae_weights()
    expected = svdc.VAE.from_config(tiny.VAE_CONFIG, w, device="cpu").decode(Z, 2)
    swapped = {k: v.astype(">f4") for k, v in w.items()}
    got = svdc.VAE.from_config(tiny.VAE_CONFIG, swapped, device="cpu").decode(Z, 2)
    np.testing.assert_array_equal(got, expected)


def test_checkpoint_truncated_after_opening_is_an_error_not_sigbus(tmp_path):
    path = tmp_path / "w.safetensors"
    weights.save_file({"a": np.ones(4096, np.float32), "b": np.ones(65536, np.float32)}, path)
    code = (
        "import os, svdc\n"
        f"f = svdc.weights.SafetensorsFile({str(path)!r})\n"
        f"os.truncate({str(path)!r}, 4096)\n"
        "try:\n"
        "    float(f['b'].sum())\n"
        "except svdc.CheckpointError as e:\n"
        "    print('CheckpointError', e)\n"
    )
    root = os.path.dirname(os.path.dirname(svdc.__file__))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "CheckpointError" in r.stdout and "truncated on disk" in r.stdout and "'b'" in r.stdout
