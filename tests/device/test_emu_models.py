"""The models and the image-to-video pipeline on the emulated device ("emu") against the CPU path: weights uploaded
once into a device block, inputs/outputs staged through the core's transfer service, the arena reserved at its
peak. The emulated device runs the CPU kernels, so float32 storage must give the same numbers; the bound below
allows 1e-6 of max|ref| because a backend that asks for fewer, larger chunks (chunk_budget 0) may sum in another
order. 16-bit weight storage is tested against fp32 and torch in tests/parity/test_half_precision.py; here the
emulated device must equal the CPU with it too."""
import numpy as np
import pytest

import svdc
from svdc import runtime, tiny
from svdc._native import _C
from svdc._native import testing_ops as load_testing_ops

ops = load_testing_ops()
BASE = dict(num_frames=2, num_inference_steps=2, height=64, width=64, seed=0, progress=False)


def assert_same(actual, expected, what):
    assert actual.shape == expected.shape, what
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    assert scale > 0 and err <= 1e-6 * scale, f"{what}: max|emu - cpu| = {err:.3g} (max|cpu| = {scale:.3g})"


@pytest.fixture(scope="module")
def components():
    return {dev: tiny.tiny_components(device=dev) for dev in ("cpu", "emu")}


def unet_inputs(seed=0, batch=1, frames=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, frames, 8, 8, 8)).astype(np.float32), np.float32(0.7),
            rng.standard_normal((batch, 1, 32)).astype(np.float32), rng.standard_normal((batch, 3)).astype(np.float32))


def test_components_live_on_the_device(components):
    unet, vae, enc = components["emu"]
    assert unet._native.device == vae._native.device == enc._native.device == "emu:0"
    assert unet.device == "emu:0"


def test_unet_on_emu_equals_cpu(components):
    args = unet_inputs()
    assert_same(components["emu"][0](*args), components["cpu"][0](*args), "UNet forward")


def test_vae_on_emu_equals_cpu(components):
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    latents = rng.standard_normal((4, 4, 8, 8)).astype(np.float32)
    (vc, ve) = components["cpu"][1], components["emu"][1]
    assert_same(ve.encode(images), vc.encode(images), "VAE encode")
    assert_same(ve.decode(latents, num_frames=2), vc.decode(latents, num_frames=2), "VAE decode")


def test_image_encoder_on_emu_equals_cpu(components):
    x = np.random.default_rng(2).standard_normal((2, 3, 224, 224)).astype(np.float32)
    assert_same(components["emu"][2](x), components["cpu"][2](x), "ImageEncoder")


def test_image_to_video_on_emu_equals_cpu():
    image = tiny.test_image()
    cpu = tiny.tiny_pipeline(device="cpu")(image, **BASE)
    emu = tiny.tiny_pipeline(device="emu")(image, **BASE)
    assert np.array_equal(emu.frames, cpu.frames), \
        f"{np.count_nonzero(emu.frames != cpu.frames)} of {cpu.frames.size} uint8 values differ"


def test_a_repeated_forward_neither_allocates_nor_frees(components):
    unet = components["emu"][0]
    args = unet_inputs(seed=3)
    unet(*args)  # the first call of these shapes sizes the arena
    before = ops.emu_stats()
    for _ in range(2):
        unet(*args)
    after = ops.emu_stats()
    assert (after["allocs"], after["frees"]) == (before["allocs"], before["frees"])
    assert unet._native.arena_reserved_bytes >= unet._native.last_peak_bytes > 0


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_sixteen_bit_storage_on_emu_equals_cpu(dtype):
    """Both devices widen the same 16-bit weights to float32 before each op, so only the chunking differs."""
    unet_cpu, vae_cpu, enc_cpu = tiny.tiny_components(device="cpu", dtype=dtype)
    unet_emu, vae_emu, enc_emu = tiny.tiny_components(device="emu", dtype=dtype)
    assert unet_emu.dtype == vae_emu.dtype == enc_emu.dtype == dtype
    args = unet_inputs(seed=6)
    assert_same(unet_emu(*args), unet_cpu(*args), f"UNet forward ({dtype})")
    latents = np.random.default_rng(7).standard_normal((2, 4, 8, 8)).astype(np.float32)
    assert_same(vae_emu.decode(latents, num_frames=2), vae_cpu.decode(latents, num_frames=2), f"VAE decode ({dtype})")
    x = np.random.default_rng(8).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert_same(enc_emu(x), enc_cpu(x), f"ImageEncoder ({dtype})")


def test_unknown_dtype_is_refused_naming_the_accepted_values():
    with pytest.raises(ValueError, match=r"dtype: expected None, 'fp32', 'fp16' or 'bf16'.*got 'fp8'"):
        svdc.VAE.from_config(tiny.VAE_CONFIG, {}, device="cpu", dtype="fp8")
    with pytest.raises(ValueError, match=r"dtype: expected .*numpy.float32/float16.* got <class 'numpy.float64'>"):
        svdc.UNet.from_config(tiny.UNET_CONFIG, {}, device="emu", dtype=np.float64)


def test_auto_picks_cuda_when_usable_and_the_models_accept_it(monkeypatch):
    """A faked usable CUDA status: "auto" resolves to cuda:0 and every component is built there (the C models run
    on the emulated device standing in for the GPU), and the pipeline runs end to end."""
    monkeypatch.setattr(runtime, "_cuda_status", lambda: (1, None))
    monkeypatch.setattr(runtime, "native_device", lambda d: "emu:0" if d.startswith("cuda") else d)
    pipe = tiny.tiny_pipeline(device="auto")
    assert pipe.unet.device == pipe.vae.device == pipe.image_encoder.device == "cuda:0"
    assert pipe.unet._native.device == "emu:0"
    # dtype=None on CUDA stores 16-bit weights: bf16 on sm_80+, else (and here, no real GPU to ask) fp16
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.image_encoder.dtype == runtime.default_dtype("cuda:0") == "fp16"
    video = pipe(tiny.test_image(), **BASE)
    cpu = tiny.tiny_pipeline(device="cpu", dtype="fp16")(tiny.test_image(), **BASE)
    assert np.array_equal(video.frames, cpu.frames)


def test_unet_on_emu_with_the_cpu_chunk_budget_is_bit_identical(components):
    """The 1e-6 bound above covers only the chunking: with the CPU's budget the same kernels see the same chunks."""
    budget = next(b["chunk_budget"] for b in _C.backends() if b["name"] == "cpu")
    ops.emu_set_chunk_budget(budget)
    try:
        args = unet_inputs(seed=5, batch=2)
        np.testing.assert_array_equal(components["emu"][0](*args), components["cpu"][0](*args))
    finally:
        ops.emu_set_chunk_budget(0)


SD2_UNET = {  # a tiny UNet2DConditionModel config (the SD 2.x family)
    "_class_name": "UNet2DConditionModel", "sample_size": 8, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64], "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": [2, 2],
    "use_linear_projection": True, "upcast_attention": True,
}
KL_VAE = {"_class_name": "AutoencoderKL", "down_block_types": ["DownEncoderBlock2D"] * 2,
          "up_block_types": ["UpDecoderBlock2D"] * 2, "block_out_channels": [32, 64], "layers_per_block": 1,
          "latent_channels": 4}


def test_2d_unet_and_kl_vae_on_emu_equal_cpu():
    """The model-layer kinds (UNet2DConditionModel, AutoencoderKL) go through the same device scaffolding."""
    rng = np.random.default_rng(4)
    w = tiny.random_weights(svdc.UNet.weight_shapes(SD2_UNET), 0)
    x, t = rng.standard_normal((2, 4, 7, 5)).astype(np.float32), np.array([17.0, 803.0], np.float32)
    e = rng.standard_normal((2, 77, 32)).astype(np.float32)
    cpu, emu = (svdc.UNet.from_config(SD2_UNET, w, device=d) for d in ("cpu", "emu"))
    assert_same(emu(x, t, e), cpu(x, t, e), "UNet2DConditionModel")
    w = tiny.random_weights(svdc.VAE.weight_shapes(KL_VAE), 1)
    cpu, emu = (svdc.VAE.from_config(KL_VAE, w, device=d) for d in ("cpu", "emu"))
    images = rng.uniform(-1, 1, (2, 3, 16, 12)).astype(np.float32)
    latents = rng.standard_normal((2, 4, 8, 6)).astype(np.float32)
    assert_same(emu.encode(images), cpu.encode(images), "AutoencoderKL encode")
    assert_same(emu.decode(latents), cpu.decode(latents), "AutoencoderKL decode")
