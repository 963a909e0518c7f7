"""Peak resident memory of loading a UNet folder with 16-bit weight storage is about half of float32's: the weights
live in RAM as one 16-bit block and are converted one tensor at a time (never the whole model in float32). Each
load runs in a fresh child process, which reports its peak RSS (VmHWM) after importing svdc and after loading; the difference is what loading cost. The model (~82 M parameters, a 330 MB float32 file) is large
enough that the weight block dominates the fixed costs (interpreter, the per-tensor staging of the largest tensor,
4.7 M elements)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import svdc

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")
from svdc.weights import save_file
from tests.parity._unet_reference import small_config

CONFIG = small_config(levels=3, channels=(128, 256, 512), heads=(2, 4, 8), cross=256)

# The peak is read from /proc/self/status (VmHWM, KiB), not getrusage's ru_maxrss: Linux keeps ru_maxrss across
# execve, so a child of a large pytest process would start with its parent's peak and show no growth at all.
CHILD = """
import sys
import svdc

def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

base = peak_kib()
unet = svdc.UNet.from_pretrained(sys.argv[1], device="cpu", dtype=sys.argv[2])
print(base, peak_kib(), unet.dtype, unet._native.weight_bytes)
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(float32 folder, float16-variant folder) of one random-weight UNet: diffusers' layout."""
    root = tmp_path_factory.mktemp("unet_rss")
    rng = np.random.default_rng(0)
    weights = {name: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
               for name, shape in sorted(svdc.UNet.weight_shapes(CONFIG).items())}
    out = []
    for sub, stem, cast in (("fp32", "diffusion_pytorch_model.safetensors", np.float32),
                            ("fp16", "diffusion_pytorch_model.fp16.safetensors", np.float16)):
        folder = root / sub
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(dict(CONFIG, _class_name="UNetSpatioTemporalConditionModel")))
        save_file({k: v.astype(cast, copy=False) for k, v in weights.items()}, str(folder / stem))
        out.append(str(folder))
    return out


def load_cost(folder: str, dtype: str) -> tuple[int, int]:
    """(peak RSS growth of loading, in KiB, the weight block's bytes) measured in a child process."""
    env = dict(os.environ, SVDC_CHECK_WEIGHTS="1")
    done = subprocess.run([sys.executable, "-c", CHILD, folder, dtype], capture_output=True, text=True, timeout=120,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr[-2000:]
    base, peak, stored, block = done.stdout.split()
    assert stored == dtype
    return int(peak) - int(base), int(block)


def test_fp16_storage_halves_the_peak_memory_of_loading(folders):
    fp32_folder, fp16_folder = folders
    cost32, block32 = load_cost(fp32_folder, "fp32")
    cost16, block16 = load_cost(fp32_folder, "fp16")
    cost16_variant, _ = load_cost(fp16_folder, "fp16")
    print(f"peak RSS growth: fp32 {cost32 / 1024:.0f} MiB, fp16 from the fp32 file {cost16 / 1024:.0f} MiB, "
          f"fp16 from the fp16 file {cost16_variant / 1024:.0f} MiB (blocks {block32 >> 20} / {block16 >> 20} MiB)")
    assert block16 <= 0.51 * block32
    assert cost32 >= 0.9 * block32 / 1024  # the fp32 load really holds its block: the measurement sees it
    # Half, with room for the one-tensor staging and the file pages of the tensor being read (~19 MB each here).
    assert cost16 <= 0.6 * cost32, (cost16, cost32)
    assert cost16_variant <= 0.6 * cost32, (cost16_variant, cost32)
