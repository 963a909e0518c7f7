"""The CLIP resize runs in bounded memory (no dense side x side matrices, no whole-image float64 copy), with the
same values whatever the band size."""
import os
import subprocess
import sys

import numpy as np

import svdc
from svdc import image


def test_band_size_does_not_change_the_result(monkeypatch):
    x = np.random.default_rng(0).integers(0, 256, (2, 301, 517, 3), dtype=np.uint8)
    whole = image.clip_preprocess(x)  # 301 rows: one or two bands
    monkeypatch.setattr(image, "_RESIZE_ROWS", 7)
    banded = image.clip_preprocess(x)
    np.testing.assert_allclose(banded, whole, rtol=0, atol=1e-5)


def test_long_strip_and_large_photo_fit_in_a_small_address_space():
    code = (
        "import resource, numpy as np\n"
        "from svdc.image import clip_preprocess\n"
        "vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize')][0]\n"
        "limit = vm + 700 * 2**20\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "rng = np.random.default_rng(0)\n"
        "for shape in ((20, 20000, 3), (2000, 6000, 3)):\n"
        "    y = clip_preprocess(rng.integers(0, 256, shape, dtype=np.uint8))\n"
        "    assert y.shape == (1, 3, 224, 224) and np.isfinite(y).all()\n"
        "print('ok')\n"
    )
    root = os.path.dirname(os.path.dirname(svdc.__file__))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=root)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
