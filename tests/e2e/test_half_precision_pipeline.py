"""The image-to-video pipeline with 16-bit weight storage on the CPU runs and stays within stated bounds of fp32
(uint8 frames), and every generating CLI command takes --dtype."""
import numpy as np
import pytest

from svdc import tiny
from svdc.cli import build_parser

BASE = dict(num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)
# Frames in uint8 levels, max |diff| and mean |diff| against fp32. The model outputs move by ~1e-3 (fp16) / ~1e-2
# (bf16) of their range (tests/parity/test_half_precision.py); through the sampler and the decoder that flips the
# rounding of some levels (fp16: measured max 1, mean 0.09) or moves a few by several levels (bf16, 8x the
# rounding: measured max 6, mean 0.80). Bounds: twice the measurement.
BOUNDS = {"fp16": (2, 0.2), "bf16": (12, 1.6)}


@pytest.fixture(scope="module")
def fp32_frames():
    return tiny.tiny_pipeline(device="cpu", dtype="fp32")(tiny.test_image(), **BASE).frames


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_image_to_video_with_16_bit_weights_on_the_cpu(fp32_frames, dtype):
    pipe = tiny.tiny_pipeline(device="cpu", dtype=dtype)
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.image_encoder.dtype == dtype
    frames = pipe(tiny.test_image(), **BASE).frames
    diff = np.abs(frames.astype(int) - fp32_frames.astype(int))
    worst, mean = BOUNDS[dtype]
    print(f"{dtype}: max {diff.max()} levels, mean {diff.mean():.3f}")
    assert 0 < diff.max() <= worst and diff.mean() <= mean, (diff.max(), diff.mean())


@pytest.mark.parametrize("argv", [
    ["img2vid", "in.png", "--model", "tiny", "-o", "o.mp4"],
    ["multiview", "in.png", "--model", "tiny", "-o", "views"],
    ["txt2img", "a fox", "--model", "tiny", "-o", "o.png"],
    ["txt2vid", "a fox", "--image-model", "tiny", "--video-model", "tiny", "-o", "o.mp4"],
    ["demo"],
])
def test_every_generating_command_takes_dtype(argv, capsys):
    parser = build_parser()
    assert parser.parse_args(argv + ["--dtype", "bf16"]).dtype == "bf16"
    assert parser.parse_args(argv).dtype is None  # the device's default
    with pytest.raises(SystemExit):
        parser.parse_args(argv + ["--dtype", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
