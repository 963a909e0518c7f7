"""Loading a checkpoint folder costs the weights and a small constant in resident memory, whatever the storage: a
float32 file into float32 weights is borrowed from the file's mapping (no anonymous copy at all), 16-bit storage
from a float32 file and float32 storage from a float16 file convert one tensor at a time and drop each tensor's file
pages once converted. The CPU's packed weights (kernels/cpu/prepack.c, SVDC_PREPACK) are a documented copy beside
them, made by the model's first call, not by loading: the budget is weights + a constant, and a first call then
adds the packed copy. Each load runs in a fresh child process that reports its peak RSS (VmHWM) and anonymous RSS
around from_pretrained. Also: borrowed weights compute what copied ones do and outlive the closed file, and NaN/Inf
are refused in every storage path (the C loader's check)."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.weights import save_file
from tests.parity._unet_reference import small_config

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")

# ~47 M parameters: a 190 MB float32 file, large enough for the weights to dominate the fixed costs.
CONFIG = small_config(levels=3, channels=(96, 192, 384), heads=(2, 4, 8), cross=256)
# What loading may hold besides the weights: the interpreter's and NumPy's own growth while loading, the per-tensor
# staging of a conversion (the largest tensor here is 2.4 M elements, under 10 MB in float32) and the read-ahead
# steps of the file (8 MB). Measured: under 10 MiB in every case here.
CONSTANT_MIB = 48

CHILD = """
import json, sys
import numpy as np
import svdc

def status_mib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

rss, anon = status_mib("VmRSS"), status_mib("RssAnon")
unet = svdc.UNet.from_pretrained(sys.argv[1], device="cpu", dtype=sys.argv[2])
loaded = dict(growth=status_mib("VmHWM") - rss, anon_growth=status_mib("RssAnon") - anon,
              weights=unet._native.weight_bytes / 2**20, packed=unet._native.packed_weight_bytes / 2**20,
              dtype=unet.dtype)
c = unet.config  # one small call: the first call packs
unet(np.zeros((1, 1, c["in_channels"], 8, 8), np.float32), np.float32(1.0),
     np.zeros((1, 1, c["cross_attention_dim"]), np.float32), np.zeros((1, 3), np.float32))
print(json.dumps(dict(loaded, packed_after_call=unet._native.packed_weight_bytes / 2**20)))
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """{"fp32": folder, "fp16": folder} of one random-weight UNet in diffusers' layout (the fp16 one as a variant)."""
    root = tmp_path_factory.mktemp("load_memory")
    rng = np.random.default_rng(0)
    weights = {name: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
               for name, shape in sorted(svdc.UNet.weight_shapes(CONFIG).items())}
    out = {}
    for sub, stem, cast in (("fp32", "diffusion_pytorch_model.safetensors", np.float32),
                            ("fp16", "diffusion_pytorch_model.fp16.safetensors", np.float16)):
        folder = root / sub
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(dict(CONFIG, _class_name="UNetSpatioTemporalConditionModel")))
        save_file({k: v.astype(cast, copy=False) for k, v in weights.items()}, str(folder / stem))
        out[sub] = str(folder)
    return out


def load_in_child(folder: str, dtype: str, prepack: str = "1") -> dict:
    env = dict(os.environ, SVDC_CHECK_WEIGHTS="1", SVDC_PREPACK=prepack)
    done = subprocess.run([sys.executable, "-c", CHILD, folder, dtype], capture_output=True, text=True, timeout=120,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["dtype"] == dtype
    return out


@pytest.mark.parametrize("prepack", ["1", "0"])
@pytest.mark.parametrize("files,dtype", [("fp32", "fp32"), ("fp16", "fp16"), ("fp32", "fp16"), ("fp16", "fp32")])
def test_loading_peaks_at_the_weights_plus_a_constant(folders, files, dtype, prepack):
    got = load_in_child(folders[files], dtype, prepack)
    print(f"{files} files -> {dtype} weights (SVDC_PREPACK={prepack}): peak RSS growth {got['growth']:.0f} MiB, "
          f"anonymous {got['anon_growth']:.0f} MiB, weights {got['weights']:.0f} MiB, packed {got['packed']:.0f} MiB")
    assert got["packed"] == 0, got  # loading packs nothing: the first call does
    if prepack == "0" or dtype != "fp32":  # 16-bit weights are never packed
        assert got["packed_after_call"] == 0, got
    else:
        assert got["packed_after_call"] > 0, got
    assert got["growth"] <= got["weights"] + CONSTANT_MIB, got
    if files == dtype:  # borrowed from the file's mapping: the weights are page cache, not a copy
        assert got["anon_growth"] <= CONSTANT_MIB, got
        assert got["growth"] >= 0.9 * got["weights"], got  # the check read them: the measurement sees the weights
    else:  # converted into the weight block
        assert got["anon_growth"] >= 0.9 * got["weights"], got


def _tiny_unet_folder(tmp_path, dtype=np.float32, stem="diffusion_pytorch_model.safetensors", poison=None):
    weights = tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0)
    if poison is not None:
        weights[poison] = weights[poison].copy()
        weights[poison].flat[1] = np.inf
    (tmp_path / "config.json").write_text(json.dumps(dict(tiny.UNET_CONFIG,
                                                          _class_name="UNetSpatioTemporalConditionModel")))
    save_file({k: v.astype(dtype) for k, v in weights.items()}, str(tmp_path / stem))
    return weights


def _inputs():
    rng = np.random.default_rng(1)
    c = tiny.UNET_CONFIG
    x = rng.standard_normal((1, 2, c["in_channels"], 8, 8)).astype(np.float32)
    e = rng.standard_normal((1, 1, c["cross_attention_dim"])).astype(np.float32)
    ids = np.array([[6.0, 127.0, 0.02]], np.float32)
    return x, np.float32(10.0), e, ids


def test_borrowed_weights_compute_what_copied_weights_do_and_outlive_the_file(tmp_path):
    weights = _tiny_unet_folder(tmp_path)
    borrowed = svdc.UNet.from_pretrained(tmp_path, device="cpu")
    copied = svdc.UNet.from_config(tiny.UNET_CONFIG, weights, device="cpu")
    gc.collect()  # the SafetensorsFile is gone; the views the model keeps hold the mapping
    np.testing.assert_array_equal(borrowed(*_inputs()), copied(*_inputs()))


@pytest.mark.parametrize("dtype,storage", [(np.float32, "fp32"), (np.float32, "fp16"), (np.float16, "fp16"),
                                           (np.float16, "fp32")])
def test_nan_or_inf_in_a_folder_is_refused_in_every_storage_path(tmp_path, dtype, storage, monkeypatch):
    name = sorted(svdc.UNet.weight_shapes(tiny.UNET_CONFIG))[-3]
    stem = "diffusion_pytorch_model.safetensors" if dtype == np.float32 else "diffusion_pytorch_model.fp16.safetensors"
    _tiny_unet_folder(tmp_path, dtype, stem, poison=name)
    with pytest.raises(svdc.CheckpointError, match=rf"weights\['{name}'\]: 1 of \d+ values are NaN or Inf"):
        svdc.UNet.from_pretrained(tmp_path, device="cpu", dtype=storage)
    monkeypatch.setattr(svdc.weights, "CHECK_FINITE", False)
    svdc.UNet.from_pretrained(tmp_path, device="cpu", dtype=storage)  # the opt-out loads it as it is
