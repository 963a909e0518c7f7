"""The canonical diffusers SVD snippet (diffusers' docs, kept verbatim below but for its two import lines) runs on
svdc, with the hub id served from a fake Hugging Face cache built offline and the image URL served locally; its
frames equal diffusers' (same fp16 weight files, computed in fp32, same seed) within one level.

The tiny model keeps the snippet's 1024x576 size affordable: a VAE with six blocks (down factor 32, latents 18x32)
and a UNet of two frames without attention at its full resolution."""
import io
import os
import textwrap

import numpy as np
import pytest

from svdc import tiny
from tests.reference_helpers import perturb_parameters
from tests.hub_cache import add_snapshot

REPO_ID = "stabilityai/stable-video-diffusion-img2vid-xt"
IMAGE_URL = "https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/diffusers/svd/rocket.png"

DIFFUSERS_SNIPPET = '''
import torch

from diffusers import StableVideoDiffusionPipeline
from diffusers.utils import load_image, export_to_video

pipe = StableVideoDiffusionPipeline.from_pretrained(
    "stabilityai/stable-video-diffusion-img2vid-xt", torch_dtype=torch.float16, variant="fp16"
)
pipe.enable_model_cpu_offload()

# Load the conditioning image
image = load_image("https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/diffusers/svd/rocket.png")
image = image.resize((1024, 576))

generator = torch.manual_seed(42)
frames = pipe(image, decode_chunk_size=8, generator=generator).frames[0]

export_to_video(frames, "generated.mp4", fps=7)
'''
SVDC_SNIPPET = DIFFUSERS_SNIPPET.replace("from diffusers import", "from svdc import").replace(
    "from diffusers.utils import", "from svdc.utils import")

UNET_CONFIG = dict(tiny.UNET_CONFIG, num_frames=2,
                   down_block_types=["DownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal"],
                   up_block_types=["CrossAttnUpBlockSpatioTemporal", "UpBlockSpatioTemporal"])
VAE_CONFIG = dict(tiny.VAE_CONFIG, down_block_types=["DownEncoderBlock2D"] * 6, block_out_channels=[32] * 6)


def _rocket_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(tiny.test_image(300, 500)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def fp16_snapshot(tmp_path_factory):
    """(fake hub cache, snapshot folder) of a tiny random SVD pipeline saved by diffusers as the fp16 variant only,
    as the snippet's download leaves it."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise  # the reference must run in CI, never skip there
        pytest.skip("torch (CPU) is a test dependency")
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    torch.set_num_threads(2)
    unet = perturb_parameters(UNetSpatioTemporalConditionModel(**UNET_CONFIG).eval(), seed=1)
    vae = perturb_parameters(AutoencoderKLTemporalDecoder(**VAE_CONFIG).eval(), seed=2)
    enc = perturb_parameters(CLIPVisionModelWithProjection(CLIPVisionConfig(**tiny.IMAGE_ENCODER_CONFIG)).eval(),
                             seed=3)
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=enc, unet=unet,
                                        scheduler=EulerDiscreteScheduler(**tiny.SCHEDULER_CONFIG),
                                        feature_extractor=CLIPImageProcessor())
    folder = tmp_path_factory.mktemp("svd_xt_fp16")
    pipe.to(torch.float16).save_pretrained(folder, variant="fp16")
    cache = tmp_path_factory.mktemp("hf_cache")
    return str(cache), add_snapshot(str(cache), REPO_ID, str(folder))


@pytest.mark.slow
def test_canonical_snippet_matches_diffusers(fp16_snapshot, tmp_path, monkeypatch):
    import torch
    from diffusers import StableVideoDiffusionPipeline
    from PIL import Image

    import svdc.utils

    cache, snapshot = fp16_snapshot
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.chdir(tmp_path)
    served = []

    def fake_fetch(url):  # no network in tests: the snippet's URL answers with a local PNG
        served.append(url)
        return _rocket_png()

    monkeypatch.setattr(svdc.utils, "_fetch", fake_fetch)
    namespace = {}
    exec(compile(textwrap.dedent(SVDC_SNIPPET), "diffusers_snippet", "exec"), namespace)
    assert served == [IMAGE_URL]
    frames = namespace["frames"]
    assert isinstance(frames, list) and len(frames) == 2 and all(isinstance(f, Image.Image) for f in frames)
    assert os.path.getsize(tmp_path / "generated.mp4") > 0

    # diffusers on the same fp16 files, computed in fp32 (what svdc computes on the CPU), same image and seed
    ref_pipe = StableVideoDiffusionPipeline.from_pretrained(snapshot, variant="fp16", torch_dtype=torch.float32)
    ref_pipe.set_progress_bar_config(disable=True)
    image = Image.open(io.BytesIO(_rocket_png())).convert("RGB").resize((1024, 576))
    with torch.no_grad():
        ref = ref_pipe(image, decode_chunk_size=8, generator=torch.manual_seed(42), output_type="np").frames[0]
    ref_u8 = np.round(ref * 255).astype(np.uint8)  # diffusers' own "pil" path rounds the same way
    ours = np.stack([np.asarray(f) for f in frames])
    assert ours.shape == ref_u8.shape == (2, 576, 1024, 3)
    diff = np.abs(ours.astype(int) - ref_u8.astype(int))
    assert float(np.mean((ref_u8 > 0) & (ref_u8 < 255))) > 0.5, "the reference is mostly saturated"
    assert float(np.mean(diff <= 1)) >= 0.999, f"max diff {diff.max()}, {np.mean(diff <= 1):.4%} within one level"


def test_snippet_differs_from_diffusers_only_in_its_imports():
    changed = [(a, b) for a, b in zip(DIFFUSERS_SNIPPET.splitlines(), SVDC_SNIPPET.splitlines()) if a != b]
    assert changed == [("from diffusers import StableVideoDiffusionPipeline",
                        "from svdc import StableVideoDiffusionPipeline"),
                       ("from diffusers.utils import load_image, export_to_video",
                        "from svdc.utils import load_image, export_to_video")]
