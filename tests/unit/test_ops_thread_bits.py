"""svdc's own CPU kernels (norms, attention, elementwise, data movement) give the same bits with 1, 2 and 3 OpenMP
threads: every output value is computed by one thread in an order fixed by the shapes (a group norm's statistics by
one task per (video, group), a layer norm's per row, attention per (batch, head, query block) or per query row), never
by how the work is split. Each thread count runs in a fresh process (OMP_NUM_THREADS); the sizes are above every
kernel's parallel threshold, and 3 threads split each op unevenly. The GEMM-based ops (linear, conv2d, conv_temporal)
are not listed: through OpenBLAS their row blocks follow the thread count (tests/e2e/test_bit_stable_threads.py states
the bound)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import hashlib
import numpy as np
from svdc._native import testing_ops

ops = testing_ops()
rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


cases = {
    "group_norm": lambda: ops.group_norm(r(6, 64, 17, 19), 32, 1, r(64), r(64), 1e-6, True),
    "group_norm_pooled_bias": lambda: ops.group_norm(r(6, 64, 17, 19), 32, 3, r(64), r(64), 1e-5, True,
                                                     bias=r(6, 64)),
    "layer_norm": lambda: ops.layer_norm(r(3001, 96), r(96), r(96), 1e-5),
    "attention_tiled": lambda: ops.attention(r(3, 700, 64), r(3, 650, 64), r(3, 650, 64), 2, 0.125),
    "attention_direct": lambda: ops.attention(r(2001, 7, 64), r(2001, 7, 64), r(2001, 7, 64), 4, 0.25),
    "geglu": lambda: ops.geglu(r(1001, 514)),
    "gelu": lambda: ops.gelu(r(300001)),
    "silu": lambda: ops.silu(r(300001)),
    "axpby": lambda: ops.axpby(0.3, r(300001), -1.7, r(300001)),
    "add_channel_bias": lambda: ops.add_channel_bias(r(6, 64, 17, 19), r(6, 64)),
    "add_token_bias": lambda: ops.add_token_bias(r(5, 1001, 64), r(5, 64)),
    "permute_0213": lambda: ops.permute_0213(r(3, 333, 101, 1)),
    "permute_0213_axpby": lambda: ops.permute_0213_axpby(0.7, r(2, 333, 7, 64), 0.3, r(2, 7, 333, 64)),
    "upsample_nearest2x": lambda: ops.upsample_nearest2x(r(3, 64, 33, 17)),
    "concat_channels": lambda: ops.concat_channels(r(6, 32, 33, 17), r(6, 64, 33, 17)),
}
for name, run in cases.items():
    print(name, hashlib.sha256(np.ascontiguousarray(run()).tobytes()).hexdigest())
"""


def _hashes(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split() for line in out.stdout.splitlines())


def test_own_kernels_give_the_same_bits_with_any_thread_count():
    one = _hashes(1)
    assert len(one) == 15
    for threads in (2, 3):
        other = _hashes(threads)
        differ = [name for name in one if other[name] != one[name]]
        assert not differ, f"{threads} threads change the bits of {differ}"
