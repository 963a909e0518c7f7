"""svdc.StableVideoDiffusionPipeline on the tiny random model: diffusers' output layouts (batch axis first), the
generator forms (int, svdc.Generator, CPU torch.Generator) giving the native pipeline's noise, callbacks, the
accepted no-op switches, dtype mapping and the refusals, each with the argument named."""
import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.pipelines.compat import native_dtype, seed_from_generator

KW = dict(num_frames=2, num_inference_steps=2, height=64, width=64)


@pytest.fixture(scope="module")
def native():
    return tiny.tiny_pipeline(device="cpu")


@pytest.fixture(scope="module")
def pipe(native):
    p = svdc.StableVideoDiffusionPipeline.from_native(native)
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def reference(native):
    """The native pipeline's frames for seed 5 (uint8 (F, H, W, 3))."""
    return native(tiny.test_image(), seed=5, progress=False, **KW).frames


def _image():
    from PIL import Image

    return Image.fromarray(tiny.test_image())


def test_pil_output_has_the_batch_axis(pipe, reference):
    out = pipe(_image(), generator=5, **KW)
    assert isinstance(out, svdc.StableVideoDiffusionPipelineOutput)
    frames = out.frames
    assert isinstance(frames, list) and len(frames) == 1 and len(frames[0]) == 2  # [batch][frame]
    np.testing.assert_array_equal(np.stack([np.asarray(f) for f in frames[0]]), reference)
    assert out[0] is out.frames and out["frames"] is out.frames and out.to_tuple() == (out.frames,)


def test_np_and_tuple_output(pipe, reference):
    (frames,) = pipe(_image(), generator=5, output_type="np", return_dict=False, **KW)
    assert frames.shape == (1, 2, 64, 64, 3) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames[0], reference.astype(np.float32) / 255)


def test_latent_output_skips_the_decode(pipe, native):
    seen = []
    lat = pipe(_image(), generator=5, output_type="latent",
               callback_on_step_end=lambda p, i, t, kw: seen.append(kw["latents"]) or kw, **KW).frames
    assert lat.shape == (1, 2, 4, 8, 8)
    np.testing.assert_array_equal(lat, seen[-1])
    final = []
    native(tiny.test_image(), seed=5, progress=False, callback=lambda i, n, x: final.append(x), **KW)
    np.testing.assert_array_equal(lat, final[-1])


def test_pt_output(pipe, reference):
    torch = pytest.importorskip("torch")
    frames = pipe(_image(), generator=5, output_type="pt", **KW).frames
    assert isinstance(frames, torch.Tensor) and tuple(frames.shape) == (1, 2, 3, 64, 64)  # (B, F, C, H, W)
    np.testing.assert_array_equal(frames[0].permute(0, 2, 3, 1).numpy(), reference / np.float32(255))


def test_generator_forms_give_the_same_noise(pipe, reference):
    by_svdc = pipe(_image(), generator=svdc.Generator(5), output_type="np", **KW).frames[0]
    np.testing.assert_array_equal(by_svdc, reference / np.float32(255))
    torch = pytest.importorskip("torch")
    by_torch = pipe(_image(), generator=torch.Generator("cpu").manual_seed(5), output_type="np", **KW).frames[0]
    np.testing.assert_array_equal(by_torch, reference / np.float32(255))
    assert seed_from_generator(torch.manual_seed(42)) == 42  # the snippet's form: the default generator
    used = torch.Generator().manual_seed(5)
    torch.randn(3, generator=used)
    with pytest.warns(RuntimeWarning, match="already used"):
        assert seed_from_generator(used) == 5
    assert seed_from_generator([torch.Generator().manual_seed(9)]) == 9


def test_num_videos_per_prompt_and_batches(pipe):
    frames = pipe([_image(), _image()], generator=1, output_type="np", num_videos_per_prompt=2, **KW).frames
    assert frames.shape == (4, 2, 64, 64, 3)
    batch = np.stack([tiny.test_image()] * 3).astype(np.float32) / 255  # (B, H, W, 3) in [0, 1]
    assert pipe(batch, generator=1, output_type="np", **KW).frames.shape[0] == 3


def test_default_size_is_the_unet_sample_size(pipe):
    frames = pipe(_image(), generator=1, output_type="np", height=None, width=None, num_frames=1,
                  num_inference_steps=1, min_guidance_scale=1.0, max_guidance_scale=1.0).frames
    assert frames.shape[2:4] == (tiny.UNET_CONFIG["sample_size"] * 8,) * 2


def test_callback_on_step_end(pipe):
    calls = []

    def cb(p, i, t, kw):
        calls.append((p, i, t, sorted(kw)))
        return kw

    pipe(_image(), generator=1, callback_on_step_end=cb, **KW)
    timesteps = svdc.schedules.euler_schedule(2, pipe.scheduler_config).timesteps
    assert [(c[0], c[1], c[3]) for c in calls] == [(pipe, 0, ["latents"]), (pipe, 1, ["latents"])]
    np.testing.assert_allclose([c[2] for c in calls], timesteps)
    with pytest.raises(ValueError, match="changed latents"):
        pipe(_image(), generator=1, callback_on_step_end=lambda p, i, t, kw: {"latents": kw["latents"] + 1}, **KW)
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipe(_image(), callback_on_step_end_tensor_inputs=["prompt_embeds"], **KW)


def test_switches_are_accepted(pipe):
    for name in ("enable_model_cpu_offload", "enable_sequential_cpu_offload", "enable_vae_slicing",
                 "enable_forward_chunking", "enable_attention_slicing", "enable_xformers_memory_efficient_attention"):
        assert getattr(pipe, name)() is None
    assert pipe.to("cpu") is pipe and pipe.device == "cpu"
    with pytest.raises(AttributeError, match="no_such_thing"):
        pipe.no_such_thing
    with pytest.raises(ValueError, match="loaded components"):
        pipe.to("cuda")


@pytest.mark.parametrize("value,expected", [(None, None), ("fp16", "fp16"), ("float16", "fp16"), ("bf16", "bf16"),
                                            ("bfloat16", "bf16"), ("float32", "fp32"), ("auto", None),
                                            (np.float16, "fp16"), (np.float32, "fp32")])
def test_dtype_names(value, expected):
    assert native_dtype(value) == expected
    assert native_dtype(dtype=value) == expected


def test_torch_dtypes():
    torch = pytest.importorskip("torch")
    assert native_dtype(torch.float16) == "fp16"
    assert native_dtype(torch.bfloat16) == "bf16"
    assert native_dtype(torch.float32) == "fp32"
    with pytest.raises(ValueError, match="disagree"):
        native_dtype(torch.float16, torch.float32)
    with pytest.raises(ValueError, match="torch_dtype"):
        native_dtype(torch.int8)


def test_from_pretrained_folder(tmp_path, reference):
    folder = tiny.save_pipeline(tmp_path / "tiny")
    p = svdc.StableVideoDiffusionPipeline.from_pretrained(folder, torch_dtype="float32", low_cpu_mem_usage=True)
    p.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(p(_image(), generator=5, output_type="np", **KW).frames[0],
                                  reference / np.float32(255))
    with pytest.raises(TypeError, match="no_such_option"):
        svdc.StableVideoDiffusionPipeline.from_pretrained(folder, no_such_option=1)
    with pytest.raises(ValueError, match="use_safetensors"):
        svdc.StableVideoDiffusionPipeline.from_pretrained(folder, use_safetensors=False)
    with pytest.raises(ValueError, match="variant"):
        svdc.StableVideoDiffusionPipeline.from_pretrained(folder, variant="../x")


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(output_type="mp4"), ValueError, "output_type"),
    (dict(sigmas=[1.0, 0.5]), ValueError, "sigmas"),
    (dict(num_videos_per_prompt=0), ValueError, "num_videos_per_prompt"),
    (dict(generator="seed"), TypeError, "generator"),
    (dict(generator=[1, 2]), ValueError, "generator"),
    (dict(callback_on_step_end=3), TypeError, "callback_on_step_end"),
])
def test_refusals(pipe, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pipe(_image(), **{**KW, **kwargs})
