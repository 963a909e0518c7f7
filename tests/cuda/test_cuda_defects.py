"""Regression tests for the defects found by reviewing the CUDA backend before its first GPU run, and the models on
CUDA (skipped with the reason where no GPU is usable; CI has none, tests/device covers the device path there):
a fault surfacing at an allocation is a device error, not "out of memory"; the attention shared-memory limit is set
once per bucket (two threads with different head dims of one bucket); NaN scores reach the output through the tiled
softmax (the tiled and the wide kernel); the im2col row-run and multi-chunk paths and the temporal conv's chunks
(small SVDC_CUDA_IM2COL_BUDGET); cuBLAS status with its reason; the tiny models and the image-to-video pipeline on
CUDA against the CPU; the device arena planned exactly (scratch included) so a forward allocates nothing."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from svdc import runtime, tiny
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()
_COUNT, _REASON = runtime._cuda_status()
pytestmark = pytest.mark.skipif(_COUNT == 0, reason=f"no usable CUDA device: cuda {_REASON}")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_a_fault_is_not_reported_as_out_of_memory():
    code = textwrap.dedent(
        """
        import svdc
        from svdc import runtime, tiny, _C_cuda
        from svdc._native import testing_ops
        assert runtime._cuda_status()[0] > 0
        _C_cuda._debug_fault(0)
        for what, call in (("alloc", lambda: load_testing_ops().arena_alloc(1 << 20, device="cuda")),
                           ("model", lambda: svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(
                               svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0), device="cuda"))):
            try:
                call()
                print(what, "NO ERROR")
            except MemoryError as exc:
                print(what, "OOM:", exc)
            except svdc.DeviceUnavailableError as exc:
                print(what, "REFUSED:", exc)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "alloc REFUSED: cuda: device 0 is unusable" in r.stdout, r.stdout
    assert "model REFUSED: cuda: device 0 is unusable" in r.stdout, r.stdout


def test_attention_threads_with_two_head_dims_of_one_bucket():
    """D = 70 and D = 96 share the NS = 3 instantiation; a per-launch shared-memory limit raced between them."""
    cases = {}
    for D in (70, 96):
        q, k, v = (rand(s, 2, 130, 2 * D) for s in (1, 2, 3))
        cases[D] = ((q, k, v), ops.attention(q, k, v, 2, D ** -0.5))
    errors = []

    def work(D):
        (q, k, v), ref = cases[D]
        try:
            for _ in range(20):
                got = ops.attention(q, k, v, 2, D ** -0.5, device="cuda")
                if not np.max(np.abs(got - ref)) <= 2e-5 * np.max(np.abs(ref)):
                    errors.append(f"D={D}: wrong result")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"D={D}: {exc}")

    threads = [threading.Thread(target=work, args=(D,)) for D in (70, 96, 70, 96)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("D", [64, 320], ids=["tiled", "wide"])
def test_nan_scores_reach_the_output_through_the_tiled_kernel(dtype, D):
    q, k, v = rand(4, 1, 40, D), rand(5, 1, 200, D), rand(6, 1, 200, D)
    k[0, 5, :] = np.nan  # a NaN key in the first 64-key tile; later tiles are finite
    ref = ops.attention(q, k, v, 1, 0.125)
    got = ops.attention(q, k, v, 1, 0.125, device="cuda", dtype=dtype)
    assert np.isnan(ref).all()
    assert np.isnan(got).all(), f"{np.count_nonzero(~np.isnan(got))} outputs lost the NaN"


@pytest.mark.parametrize("budget", [4096, 40000], ids=["row runs", "image chunks"])
def test_im2col_chunked_paths(monkeypatch, budget):
    monkeypatch.setenv("SVDC_CUDA_IM2COL_BUDGET", str(budget))
    x, w, b = rand(7, 3, 5, 17, 19), rand(8, 6, 5, 3, 3), rand(9, 6)
    ref = ops.conv2d(x, w, b, stride=(2, 1), padding=(1, 1, 0, 1))
    got = ops.conv2d(x, w, b, stride=(2, 1), padding=(1, 1, 0, 1), device="cuda")
    assert np.max(np.abs(got - ref)) <= 2e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("budget", [1000, 60000], ids=["one image per chunk", "several images per chunk"])
def test_conv_temporal_chunks_round_once(monkeypatch, dtype, budget):
    monkeypatch.setenv("SVDC_CUDA_IM2COL_BUDGET", str(budget))
    x, w, b = rand(10, 2 * 7, 6, 5, 4), rand(11, 9, 6, 3), rand(12, 9)
    if dtype != "fp32":  # the reference sees the inputs rounded as the device stores them
        code = "f16" if dtype == "fp16" else "bf16"
        x, w, b = (ops.convert(ops.convert(a, code), "f32") for a in (x, w, b))
    ref = ops.conv_temporal(x, 7, w, b)
    got = ops.conv_temporal(x, 7, w, b, device="cuda", dtype=dtype)
    rel = {"fp32": 2e-5, "fp16": 1e-3, "bf16": 8e-3}[dtype]  # one output rounding (test_cuda_ops.py's bounds)
    assert np.max(np.abs(got - ref)) <= rel * np.max(np.abs(ref))


@pytest.mark.parametrize("budget", [None, 4096], ids=["default", "row runs"])
def test_unet_forward_on_cuda_allocates_nothing_after_its_plan(monkeypatch, budget):
    """The measuring pass includes the kernels' arena scratch (scratch_ops: im2col, group norm partials, the
    temporal conv's operands), so the planned block is the call's high-water mark and the arena stays one block."""
    if budget:
        monkeypatch.setenv("SVDC_CUDA_IM2COL_BUDGET", str(budget))
    import svdc

    unet = svdc.UNet.from_config(tiny.UNET_CONFIG, tiny.random_weights(svdc.UNet.weight_shapes(tiny.UNET_CONFIG), 0),
                                 device="cuda")
    args = (rand(13, 1, 3, 8, 8, 8), np.float32(0.7), rand(14, 1, 1, 32), rand(15, 1, 3))
    unet(*args)
    native = unet._native
    assert native.last_planned_bytes == native.last_peak_bytes > 0
    assert native.arena_reserved_bytes == native.last_peak_bytes


def test_cublas_status_names_the_reason():
    from svdc import _C_cuda

    uses, why = _C_cuda.cublas_status(0)
    assert uses or why, "the fallback GEMM kernel runs without a reason"


def test_tiny_models_and_pipeline_on_cuda_match_the_cpu():
    image = tiny.test_image()
    kw = dict(num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)
    gpu_pipe = tiny.tiny_pipeline(device="cuda")
    assert gpu_pipe.unet._native.device == "cuda:0"
    gpu = gpu_pipe(image, **kw).frames.astype(int)
    cpu = tiny.tiny_pipeline(device="cpu")(image, **kw).frames.astype(int)
    assert np.max(np.abs(gpu - cpu)) <= 1 and np.mean(gpu != cpu) <= 1e-3
