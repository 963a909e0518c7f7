"""The message audit: bad arguments at the public entry points must raise a typed error whose message names the
argument the user passed (not an internal array, a C-side name or a helper function), what was expected and what
was given. Every case here was found wrong by driving the public API with bad input (an internal name, a bare
Python error, a misleading "actual" value, or a late failure after expensive work); each row lists the fragments
the message must hold: the argument's name first, then the expected and the actual value."""
from __future__ import annotations

import contextlib
import os
import resource

import numpy as np
import pytest

import svdc
import svdc.curation.manifest
import svdc.curation.runner
import svdc.runner
from svdc import tiny
from tests.robustness.harness import ADDRESS_SPACE_HEADROOM, _vm_size

S: dict = {}  # the tiny models, built once for the module
FAST = dict(num_inference_steps=1, num_frames=2, height=64, width=64, progress=False, seed=0)
IMG = tiny.test_image(64, 64)
BIG = 1e39  # finite in float64, beyond float32's range


def state(tmp_root: str) -> dict:
    if "unet" not in S:
        S["unet"], S["vae"], S["enc"] = tiny.tiny_components(device="cpu")
        S["i2v"] = svdc.ImageToVideo.from_components(S["unet"], S["vae"], S["enc"])
        S["mv"] = tiny.tiny_multiview(device="cpu")
        S["t2i"] = tiny.tiny_sd_pipeline(os.path.join(tmp_root, "sd"))
        S["t2v"] = svdc.TextToVideo.from_components(S["t2i"], S["i2v"])
    return S


def unet(sample=None, timestep=1.0, ids=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 8, 8, 8)).astype(np.float32) if sample is None else sample
    ids = np.zeros((1, 3), np.float32) if ids is None else ids
    return S["unet"](x, timestep, rng.standard_normal((1, 1, 32)).astype(np.float32), ids)


def unet_config(**change):
    return svdc.UNet.weight_shapes(dict(tiny.UNET_CONFIG, **change))


def i2v(image=None, **kw):
    return S["i2v"](IMG if image is None else image, **dict(FAST, **kw))


def t2i(**kw):
    return S["t2i"]("a fox", **dict(dict(num_inference_steps=1, height=64, width=64, progress=False, seed=0), **kw))


def mv(**kw):
    return S["mv"](tiny.test_object(), **dict(dict(num_inference_steps=1, progress=False, seed=0), **kw))


STEPS_RUN: list = []


def t2v_video_steps_zero():
    """The stage-2 argument under its TextToVideo name, refused before stage 1 runs a single step."""
    STEPS_RUN.clear()
    return S["t2v"]("a fox", num_inference_steps=1, video_num_inference_steps=0, num_frames=2, height=64, width=64,
                    progress=False, seed=0, callback=lambda *a: STEPS_RUN.append(a))


def curation_run(**kw):
    from svdc.curation.runner import run

    return run([__file__], os.path.join(S["tmp"], "curation"), progress=False, **kw)


def sd_from_components(**kw):
    p = S["t2i"]
    return svdc.TextToImage.from_components(p.unet, p.vae, p.text_encoder, p.tokenizer, **kw)


def video(frames=None):
    return svdc.Video(np.zeros((2, 8, 8, 3), np.uint8) if frames is None else frames)


def nan_alpha(rgb):
    return np.full(rgb.shape[:2], np.nan)


def object_on_white() -> np.ndarray:
    """The tiny RGBA test object composited on white: an RGB input, so the matting hook runs on it first."""
    obj = tiny.test_object().astype(np.float32)
    a = obj[..., 3:] / 255.0
    return (obj[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)


# (case, call, exception type, fragments the message must contain: the argument, the expected, the actual)
CASES = [
    # model inputs finite in float64 but beyond float32: named as such, not as "NaN/Inf" the user never passed
    ("unet sample 1e39", lambda: unet(sample=np.full((1, 2, 8, 8, 8), BIG)), ValueError,
     ["sample:", "float32 range", "1e+39"]),
    ("unet timestep 1e39", lambda: unet(timestep=BIG), ValueError, ["timestep:", "float32 range", "1e+39"]),
    ("unet added_time_ids 1e39", lambda: unet(ids=np.full((1, 3), BIG)), ValueError,
     ["added_time_ids:", "float32 range", "1e+39"]),
    ("vae.encode images 1e39", lambda: S["vae"].encode(np.full((1, 3, 64, 64), BIG)), ValueError,
     ["images:", "float32 range", "1e+39"]),
    ("vae.decode latents 1e39", lambda: S["vae"].decode(np.full((2, 4, 8, 8), BIG), num_frames=2), ValueError,
     ["latents:", "float32 range", "1e+39"]),
    ("image encoder pixel_values 1e39", lambda: S["enc"](np.full((1, 3, 224, 224), BIG)), ValueError,
     ["pixel_values:", "float32 range", "1e+39"]),
    # UNet.embedding: its num_frames, not the internal dummy "sample"
    ("unet.embedding num_frames 0", lambda: S["unet"].embedding(1.0, np.zeros((1, 3), np.float32), 0), ValueError,
     ["num_frames:", ">= 1", "got 0"]),
    ("unet.embedding num_frames str", lambda: S["unet"].embedding(1.0, np.zeros((1, 3), np.float32), "2"), TypeError,
     ["num_frames:", ">= 1", "'2'"]),
    # UNet configs: the key and its value, not a bare int()/iteration error
    ("unet config cross_attention_dim float", lambda: unet_config(cross_attention_dim=3.5), ValueError,
     ["cross_attention_dim", "an int or a list of ints", "3.5"]),
    ("unet config num_attention_heads str", lambda: unet_config(num_attention_heads="x"), ValueError,
     ["num_attention_heads", "an int or a list of ints", "'x'"]),
    ("unet config in_channels str", lambda: unet_config(in_channels="8x"), ValueError,
     ["in_channels", "must be an int", "'8x'"]),
    # paths: the argument's name, not os.fspath's or an internal helper's ("resolve: ...")
    ("UNet.from_pretrained path None", lambda: svdc.UNet.from_pretrained(None, device="cpu"), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("ImageToVideo.from_pretrained path None", lambda: svdc.ImageToVideo.from_pretrained(None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("MultiView.from_pretrained path int", lambda: svdc.MultiView.from_pretrained(3), TypeError,
     ["path:", "str or os.PathLike", "int"]),
    ("TextToImage.from_pretrained path None", lambda: svdc.TextToImage.from_pretrained(None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("TextToVideo.from_pretrained image_model None", lambda: svdc.TextToVideo.from_pretrained(None, "v"), TypeError,
     ["image_model:", "str or os.PathLike", "NoneType"]),
    ("Video.save path None", lambda: video().save(None), TypeError, ["path:", "str or os.PathLike", "NoneType"]),
    ("Orbit.save folder int", lambda: svdc.Orbit(np.zeros((21, 8, 8, 3), np.uint8), 0.0, np.zeros(21)).save(3),
     TypeError, ["folder:", "str or os.PathLike", "int"]),
    ("TextToImage.from_single_file path None", lambda: svdc.TextToImage.from_single_file(None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("CLIPTokenizer.from_pretrained path None", lambda: svdc.CLIPTokenizer.from_pretrained(None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("weights.load_file path None", lambda: svdc.weights.load_file(None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("weights.save_file path None", lambda: svdc.weights.save_file({"a": np.zeros(2, np.float32)}, None), TypeError,
     ["path:", "str or os.PathLike", "NoneType"]),
    ("runner.read_results out_dir None", lambda: svdc.runner.read_results(None), TypeError,
     ["out_dir:", "str or os.PathLike", "NoneType"]),
    ("curation read_table root None", lambda: svdc.curation.manifest.read_table(None, "clips"), TypeError,
     ["root:", "str or os.PathLike", "NoneType"]),
    ("curation run out_dir None", lambda: svdc.curation.runner.run([__file__], None), TypeError,
     ["out_dir:", "str or os.PathLike", "NoneType"]),
    ("curation run videos None", lambda: svdc.curation.runner.run(None, S["tmp"]), TypeError,
     ["videos:", "a list of paths", "NoneType"]),
    ("export_to_video output_video_path int", lambda: svdc.export_to_video([np.zeros((8, 8, 3))], 3), TypeError,
     ["output_video_path:", "str or os.PathLike", "int"]),
    # cameras: the radius is a distance, and lists of different lengths are named
    ("camera_to_world radius NaN", lambda: svdc.orbits.camera_to_world([0.0], [0.0], float("nan")), ValueError,
     ["radius:", "finite number", "nan"]),
    ("camera_to_world 2 elevations, 3 azimuths", lambda: svdc.orbits.camera_to_world([0, 1], [0, 1, 2]), ValueError,
     ["azimuths:", "1 value or 2", "got 3"]),
    # construction arguments: checked and named when given, not at the first call or by dict()/int()
    ("ImageToVideo scheduler_config list", lambda: svdc.ImageToVideo.from_components(
        S["unet"], S["vae"], S["enc"], scheduler_config=[1]), TypeError, ["scheduler_config:", "a dict", "list"]),
    ("ImageToVideo num_frames str", lambda: svdc.ImageToVideo.from_components(
        S["unet"], S["vae"], S["enc"], num_frames="x"), TypeError, ["num_frames:", ">= 1", "'x'"]),
    ("ImageToVideo num_frames -3", lambda: svdc.ImageToVideo.from_components(
        S["unet"], S["vae"], S["enc"], num_frames=-3), ValueError, ["num_frames:", ">= 1", "-3"]),
    ("ImageToVideo unet None", lambda: svdc.ImageToVideo.from_components(None, S["vae"], S["enc"]), TypeError,
     ["unet:", "loaded model", "NoneType"]),
    ("TextToImage scheduler_config list", lambda: sd_from_components(scheduler_config=[1]), TypeError,
     ["scheduler_config:", "a dict", "list"]),
    ("TextToImage text_hidden_layer str", lambda: sd_from_components(text_hidden_layer="x"), TypeError,
     ["text_hidden_layer:", "an int", "'x'"]),
    ("TextToImage text_hidden_layer 5", lambda: sd_from_components(text_hidden_layer=5), ValueError,
     ["text_hidden_layer:", "-2..-1", "5"]),
    ("TextToVideo components swapped", lambda: svdc.TextToVideo.from_components(S["i2v"], S["t2i"]), TypeError,
     ["text_to_image:", "svdc.TextToImage", "ImageToVideo"]),
    # latents: a real numeric array, its dtype or the count of bad values named
    ("ImageToVideo latents complex", lambda: i2v(latents=np.zeros((1, 2, 4, 8, 8), np.complex64)), TypeError,
     ["latents:", "real numeric array", "complex64"]),
    ("ImageToVideo latents str", lambda: i2v(latents="abc"), TypeError, ["latents:", "real numeric array", "<U3"]),
    ("ImageToVideo latents 1e39", lambda: i2v(latents=np.full((1, 2, 4, 8, 8), BIG)), ValueError,
     ["latents:", "float32 range", "1e+39"]),
    ("ImageToVideo latents NaN", lambda: i2v(latents=np.full((1, 2, 4, 8, 8), np.nan)), ValueError,
     ["latents:", "expected finite", "512 NaN/Inf"]),
    ("TextToImage latents 1e39", lambda: t2i(latents=np.full((1, 4, 8, 8), BIG)), ValueError,
     ["latents:", "float32 range", "1e+39"]),
    ("MultiView latents 1e39", lambda: mv(latents=np.full((1, 21, 4, 8, 8), BIG)), ValueError,
     ["latents:", "float32 range", "1e+39"]),
    # sampling that overflows: the arguments that scale it, not the sampler's or the UNet's internal arrays
    ("ImageToVideo max_guidance_scale 3e38", lambda: i2v(num_inference_steps=2, max_guidance_scale=3e38),
     ValueError, ["overflowed float32", "guidance scale (up to 3e+38)", "NaN/Inf"]),
    ("TextToImage guidance_scale 3e38", lambda: t2i(num_inference_steps=2, guidance_scale=3e38), ValueError,
     ["overflowed float32", "guidance scale (up to 3e+38)", "NaN/Inf"]),
    # sizes: a MemoryError naming the arguments and the bytes, before numpy's about an internal array
    ("TextToImage height/width 8e6", lambda: t2i(height=8 * 10**6, width=8 * 10**6), MemoryError,
     ["height=8000000", "width=8000000", "bytes"]),
    ("MultiView size 8e5", lambda: svdc.MultiView.from_components(S["mv"].unet, S["mv"].vae, S["mv"].image_encoder,
                                                                  size=8 * 10**5)(tiny.test_object(), progress=False),
     MemoryError, ["height=800000", "width=800000", "bytes"]),
    # TextToVideo: stage 2's argument under its own name
    ("TextToVideo video_num_inference_steps 0", t2v_video_steps_zero, ValueError,
     ["video_num_inference_steps:", ">= 1", "got 0"]),
    # images: the actual values, and the argument as the user passed it
    ("image float NaN", lambda: i2v(image=np.full((64, 64, 3), np.nan)), ValueError,
     ["image:", "finite", "12288 NaN/Inf"]),
    ("image float 2.0", lambda: i2v(image=np.full((64, 64, 3), 2.0)), ValueError,
     ["image:", "in [0, 1]", "[2, 2]"]),
    ("image encoder preprocess NaN", lambda: S["enc"].preprocess(np.full((8, 8, 3), np.nan)), ValueError,
     ["image:", "finite", "192 NaN/Inf"]),
    ("compat lone image NaN", lambda: svdc.StableVideoDiffusionPipeline.from_native(S["i2v"])(
        np.full((64, 64, 3), np.nan), num_inference_steps=1, num_frames=2, height=64, width=64), ValueError,
     ["image:", "finite", "NaN/Inf"]),
    ("matting returns NaN", lambda: S["mv"](object_on_white(), matting=nan_alpha, num_inference_steps=1,
                                             progress=False), ValueError, ["matting:", "finite", "NaN/Inf"]),
    ("Video float NaN frames", lambda: video(np.full((2, 8, 8, 3), np.nan)), ValueError,
     ["frames:", "finite", "384 NaN/Inf"]),
    ("export_to_video a str", lambda: svdc.export_to_video("abc"), ValueError,
     ["video_frames:", "non-empty list", "str 'abc'"]),
    ("export_to_video empty", lambda: svdc.export_to_video([]), ValueError,
     ["video_frames:", "non-empty list", "an empty list"]),
    ("export_to_gif empty", lambda: svdc.utils.export_to_gif([]), ValueError,
     ["image:", "non-empty list", "an empty list"]),
    # curation: its own arguments, not an AttributeError / a comparison error
    ("curation run params int", lambda: curation_run(params=3), TypeError, ["params:", "CurationParams", "int"]),
    ("curation run workers str", lambda: curation_run(workers="x"), ValueError, ["workers:", ">= 1", "'x'"]),
]


@contextlib.contextmanager
def bounded_memory():
    """An address-space limit while a case runs, so a size that is not refused up front (a regression) fails with a
    MemoryError instead of getting pytest killed by the OOM killer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + ADDRESS_SPACE_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_message_names_the_argument(case, tmp_path_factory):
    S.setdefault("tmp", str(tmp_path_factory.mktemp("messages")))
    state(S["tmp"])
    name, call, kind, fragments = case
    with pytest.raises(Exception) as info, bounded_memory():
        call()
    message = str(info.value)
    assert isinstance(info.value, kind), f"{name}: expected {kind.__name__}, got {type(info.value).__name__}: {message}"
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{name}: the message lacks {missing}: {message}"
    if name.startswith("TextToVideo video_num"):
        assert not STEPS_RUN, "stage 1 ran before stage 2's argument was checked"
