"""fork() after a model call: multiprocessing's fork start method must not deadlock the child (GNU OpenMP's
thread pool does not survive fork; svdc._fork makes the child run on one thread) and the child's result is the
parent's."""
import os
import subprocess
import sys

import svdc

SCRIPT = r"""
import multiprocessing as mp
import numpy as np
import svdc
from svdc import tiny

svdc._C.set_num_threads(2)  # a team of 2+ threads exists in the parent before the fork
vae = tiny.tiny_components(device="cpu")[1]
z = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
expected = vae.decode(z, num_frames=2)

def work(i):
    return vae.decode(z, num_frames=2)

with mp.get_context("fork").Pool(2) as pool:
    results = pool.map_async(work, range(3)).get(timeout=60)
for r in results:
    np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-5)
print("ok", len(results))
"""


def test_fork_pool_after_a_model_call_does_not_hang():
    root = os.path.dirname(os.path.dirname(svdc.__file__))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=150, env=env)
    assert r.returncode == 0 and "ok 3" in r.stdout, r.stderr[-3000:]
