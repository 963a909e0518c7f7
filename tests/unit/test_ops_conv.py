"""conv2d (any kernel, stride, asymmetric padding, 1x1 fast path) and the temporal conv vs float64 NumPy."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, conv2d_ref, rand

_ops = load_testing_ops()


@pytest.mark.parametrize(
    "N,C,H,W,O,k,stride,pad",
    [
        (2, 5, 9, 11, 7, (3, 3), (1, 1), (1, 1, 1, 1)),  # the usual 3x3, odd sizes
        (1, 4, 8, 10, 6, (3, 3), (2, 2), (0, 1, 0, 1)),  # VAE downsampler: asymmetric pad, stride 2
        (1, 3, 7, 9, 5, (3, 3), (2, 2), (0, 1, 0, 1)),  # same with odd H, W
        (3, 6, 5, 7, 4, (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 -> direct GEMM path
        (1, 2, 6, 6, 3, (1, 1), (2, 2), (0, 0, 0, 0)),  # 1x1 strided goes through im2col
        (2, 3, 1, 1, 2, (3, 3), (1, 1), (1, 1, 1, 1)),  # 1x1 image, all padding
        (1, 2, 6, 9, 3, (2, 5), (1, 3), (2, 0, 1, 3)),  # rectangular kernel, unequal strides/pads
        (1, 1, 4, 4, 1, (4, 4), (1, 1), (0, 0, 0, 0)),  # kernel == image: one output
    ],
)
def test_conv2d_matches_numpy(N, C, H, W, O, k, stride, pad):
    rng = np.random.default_rng(N * 100 + C)
    x, w, b = rand(rng, N, C, H, W), rand(rng, O, C, *k), rand(rng, O)
    for bias in (b, None):
        y = _ops.conv2d(x, w, bias, stride, pad)
        assert_close(y, conv2d_ref(x, w, bias, stride, pad))


def test_conv2d_large_channels_chunks_im2col():
    # K * Wo large enough that the im2col buffer (4 Mi floats) is used in several row chunks.
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 1, 600, 20, 90), rand(rng, 8, 600, 3, 3, scale=0.05), rand(rng, 8)
    y = _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))
    assert_close(y, conv2d_ref(x, w, b, (1, 1), (1, 1, 1, 1)))
    # bounded scratch: one im2col buffer of at most 4 Mi floats per thread, not K x Ho*Wo per image
    threads = svdc.info()["openmp_threads"]
    assert _ops.last_arena_peak() <= threads * ((4 << 20) * 4 + 4096)


def conv_temporal_ref(x, F, w, b):
    x = x.astype(np.float64)
    N, C, H, W = x.shape
    v = x.reshape(N // F, F, C, H * W)
    vp = np.pad(v, ((0, 0), (1, 1), (0, 0), (0, 0)))
    y = sum(np.einsum("bfcs,oc->bfos", vp[:, k : k + F], w[:, :, k].astype(np.float64)) for k in range(3))
    if b is not None:
        y = y + b.astype(np.float64)[None, None, :, None]
    return y.reshape(N, -1, H, W)


@pytest.mark.parametrize("B,F,C,O,H,W", [(2, 5, 3, 4, 3, 5), (1, 1, 4, 2, 2, 3), (3, 2, 2, 6, 1, 1), (1, 14, 8, 8, 4, 4)])
def test_conv_temporal_matches_numpy(B, F, C, O, H, W):
    rng = np.random.default_rng(F)
    x, w, b = rand(rng, B * F, C, H, W), rand(rng, O, C, 3), rand(rng, O)
    assert_close(_ops.conv_temporal(x, F, w, b), conv_temporal_ref(x, F, w, b))
    assert_close(_ops.conv_temporal(x, F, w, None), conv_temporal_ref(x, F, w, None))


def test_conv_temporal_matches_torch_conv3d(torch_cpu):
    torch = torch_cpu
    rng = np.random.default_rng(3)
    B, F, C, O, H, W = 2, 4, 3, 5, 3, 2
    x, w, b = rand(rng, B * F, C, H, W), rand(rng, O, C, 3), rand(rng, O)
    # (b f) c h w -> b c f h w, Conv3d (3,1,1) pad (1,0,0), back to (b f) o h w
    xt = torch.from_numpy(x).reshape(B, F, C, H, W).permute(0, 2, 1, 3, 4)
    ref = torch.nn.functional.conv3d(xt, torch.from_numpy(w)[:, :, :, None, None], torch.from_numpy(b), padding=(1, 0, 0))
    ref = ref.permute(0, 2, 1, 3, 4).reshape(B * F, O, H, W).numpy()
    assert_close(_ops.conv_temporal(x, F, w, b), ref)


def test_conv2d_errors_name_the_argument():
    x = np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((2, 4, 3, 3), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"conv2d: w has 3 input channels.*expected 4"):
        _ops.conv2d(x, np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"conv2d: x has shape \(4, 8, 8\), expected 4 dimensions"):
        _ops.conv2d(x[0], w)
    with pytest.raises(svdc.ShapeError, match=r"conv2d: b has shape \(3,\), expected \(2,\)"):
        _ops.conv2d(x, w, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"conv2d: stride \(0, 1\) must be >= 1"):
        _ops.conv2d(x, w, None, (0, 1))
    with pytest.raises(ValueError, match=r"conv2d: padding .* must be >= 0"):
        _ops.conv2d(x, w, None, (1, 1), (-1, 0, 0, 0))
    with pytest.raises(svdc.ShapeError, match=r"conv2d: padded input 2x2 is smaller than the kernel 3x3"):
        _ops.conv2d(np.zeros((1, 4, 2, 2), np.float32), w)
    with pytest.raises(svdc.ShapeError, match=r"x: expected dtype float32"):
        _ops.conv2d(x.astype(np.float64), w)
    with pytest.raises(svdc.ShapeError, match=r"conv_temporal: x has 5 rows \(B\*F\), not a multiple of num_frames = 2"):
        _ops.conv_temporal(np.zeros((5, 4, 2, 2), np.float32), 2, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(svdc.ShapeError, match=r"conv_temporal: w has shape \(4, 4, 1\), expected \(4, 4, 3\)"):
        _ops.conv_temporal(np.zeros((4, 4, 2, 2), np.float32), 2, np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"conv_temporal: num_frames must be >= 1, got 0"):
        _ops.conv_temporal(np.zeros((4, 4, 2, 2), np.float32), 0, np.zeros((4, 4, 3), np.float32))


@pytest.mark.parametrize(
    "N,C,H,W,O,pad",
    [
        (2, 16, 9, 11, 17, (1, 1, 1, 1)),  # odd output sizes: clipped last tile row/column
        (1, 20, 7, 5, 24, (0, 1, 2, 0)),  # asymmetric padding
        (1, 32, 1, 1, 16, (1, 1, 1, 1)),  # 1x1 image, all padding
        (1, 16, 3, 3, 16, (0, 0, 0, 0)),  # no padding: one output pixel
        (1, 16, 4, 6, 16, (3, 0, 4, 5)),  # padding wider than the kernel
        (3, 48, 20, 36, 40, (1, 1, 1, 1)),  # several tasks per image
    ],
)
def test_conv2d_3x3_winograd_path_matches_numpy(N, C, H, W, O, pad):
    # 3x3 stride-1 convs with >= 16 input and output channels go through Winograd F(2x2, 3x3).
    rng = np.random.default_rng(C * 10 + O)
    x, w, b = rand(rng, N, C, H, W), rand(rng, O, C, 3, 3, scale=0.1), rand(rng, O)
    for bias in (b, None):
        y = _ops.conv2d(x, w, bias, (1, 1), pad)
        assert_close(y, conv2d_ref(x, w, bias, (1, 1), pad))


def test_conv2d_winograd_blocks_output_channels_with_bounded_scratch():
    # 16 * O * C = 12 Mi floats > 8 Mi: the transformed weights are built in output-channel blocks of at most 8 Mi
    # floats (32 MiB) instead of all at once (48 MiB); the tile scratch is per thread and sized by the task.
    rng = np.random.default_rng(2)
    N, C, H, W, O = 1, 768, 6, 10, 1024
    x, w, b = rand(rng, N, C, H, W), rand(rng, O, C, 3, 3, scale=0.02), rand(rng, O)
    y = _ops.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))
    assert_close(y, conv2d_ref(x, w, b, (1, 1), (1, 1, 1, 1)))
    threads = svdc.info()["openmp_threads"]
    tiles = N * 3 * 5  # 2x2 output tiles
    per_thread = 4 * (16 * (C + O) * tiles + 16 * 64 + 8 * 5 + 64) + 4096
    assert _ops.last_arena_peak() <= 4 * 16 * (8 << 20) // 16 + 4096 + threads * per_thread
