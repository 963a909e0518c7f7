"""End to end: svdc.TextToVideo against the diffusers chain StableDiffusionPipeline -> PIL image ->
StableVideoDiffusionPipeline on tiny perturbed random components, with the seeds TextToVideo derives: the image and
the video frames within one level on >= 99.9 % of pixels. Plus stage release, seed derivation and bad input."""
import os

import numpy as np
import pytest

import svdc
from svdc import tiny
from svdc.pipelines.text_to_video import stage_seeds

from tests.reference_helpers import perturb_parameters
from tests.unit._clip_vocab import write_tokenizer_folder


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """(diffusers SD pipeline, diffusers SVD pipeline, SD folder, SVD folder)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("torch (CPU) is a test dependency")
    from diffusers import (AutoencoderKL, AutoencoderKLTemporalDecoder, EulerDiscreteScheduler,
                           StableDiffusionPipeline, StableVideoDiffusionPipeline, UNet2DConditionModel,
                           UNetSpatioTemporalConditionModel)
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer,
                              CLIPVisionConfig, CLIPVisionModelWithProjection)

    torch.manual_seed(0)
    torch.set_num_threads(2)
    plain = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_") and k != "architectures"}  # noqa
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_folder(tmp_path_factory.mktemp("tok")))
    sd = StableDiffusionPipeline(
        vae=perturb_parameters(AutoencoderKL(**plain(tiny.SD_VAE_CONFIG)).eval(), seed=12),
        text_encoder=perturb_parameters(CLIPTextModel(CLIPTextConfig(
            **plain(tiny.sd_text_encoder_config(len(tokenizer))))).eval(), seed=13),
        tokenizer=tokenizer,
        unet=perturb_parameters(UNet2DConditionModel(**plain(tiny.SD_UNET_CONFIG)).eval(), seed=11),
        scheduler=EulerDiscreteScheduler(**plain(tiny.SD_SCHEDULER_CONFIG)), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    svd = StableVideoDiffusionPipeline(
        vae=perturb_parameters(AutoencoderKLTemporalDecoder(**tiny.VAE_CONFIG).eval(), seed=22),
        image_encoder=perturb_parameters(CLIPVisionModelWithProjection(
            CLIPVisionConfig(**tiny.IMAGE_ENCODER_CONFIG)).eval(), seed=23),
        unet=perturb_parameters(UNetSpatioTemporalConditionModel(**tiny.UNET_CONFIG).eval(), seed=21),
        scheduler=EulerDiscreteScheduler(**tiny.SCHEDULER_CONFIG), feature_extractor=CLIPImageProcessor())
    for p in (sd, svd):
        p.set_progress_bar_config(disable=True)
    sd_dir, svd_dir = tmp_path_factory.mktemp("sd"), tmp_path_factory.mktemp("svd")
    sd.save_pretrained(sd_dir)
    svd.save_pretrained(svd_dir)
    return sd, svd, sd_dir, svd_dir


def _within_one_level(ours, ref, what):
    diff = np.abs(ours.astype(int) - ref.astype(int))
    ok = float(np.mean(diff <= 1))
    informative = float(np.mean((ref > 0) & (ref < 255)))
    assert informative > 0.5, f"{what}: the reference is mostly saturated ({informative:.1%})"
    assert ok >= 0.999, f"{what}: only {ok:.4%} of pixels within one level (max diff {diff.max()})"
    return ok, int(diff.max())


def test_chain_matches_diffusers(chain):
    import torch

    sd, svd, sd_dir, svd_dir = chain
    pipe = svdc.TextToVideo.from_pretrained(image_model=sd_dir, video_model=svd_dir, device="cpu")
    kw_image = dict(negative_prompt="blurry", num_inference_steps=3, guidance_scale=5.0)
    kw_video = dict(num_frames=4, fps=7, motion_bucket_id=100, noise_aug_strength=0.02, min_guidance_scale=1.0,
                    max_guidance_scale=2.5, decode_chunk_size=4)
    prompt, seed = "a red fox running in the snow", 99
    out = pipe(prompt, seed=seed, height=64, width=64, video_num_inference_steps=3, progress=False,
               **kw_image, **kw_video)
    image_seed, video_seed = stage_seeds(seed)
    assert (out.image_seed, out.video_seed) == (image_seed, video_seed)
    with torch.no_grad():
        ref_image = sd(prompt, height=64, width=64, generator=torch.Generator().manual_seed(image_seed),
                       output_type="pil", **kw_image).images[0]
        ref_frames = svd(ref_image, height=64, width=64, num_inference_steps=3, output_type="np",
                         generator=torch.Generator().manual_seed(video_seed), **kw_video).frames[0]
    ok_i, worst_i = _within_one_level(out.image, np.asarray(ref_image), "image")
    ref_video = np.round(np.asarray(ref_frames) * 255).astype(np.uint8)
    assert out.video.frames.shape == ref_video.shape
    ok_v, worst_v = _within_one_level(out.video.frames, ref_video, "video")
    print(f"image {ok_i:.5%} (max {worst_i}), video {ok_v:.5%} (max {worst_v}) within one level")
    assert pipe.image_pipeline is None and pipe.video_pipeline is not None  # stage 1 released


def test_keep_image_model_and_components(chain):
    _, _, sd_dir, svd_dir = chain
    pipe = svdc.TextToVideo.from_pretrained(sd_dir, svd_dir, device="cpu", keep_image_model=True)
    kw = dict(seed=5, height=64, width=64, num_inference_steps=2, video_num_inference_steps=2, num_frames=2,
              progress=False)
    stages = []
    a = pipe(["a", "b"], callback=lambda s, i, n, x: stages.append((s, i, n)), **kw)
    assert pipe.image_pipeline is not None and pipe.video_pipeline is not None
    assert len(a.video) == 2 and len(a.image) == 2
    assert stages == [("image", 0, 2), ("image", 1, 2), ("video", 0, 2), ("video", 1, 2)]
    b = svdc.TextToVideo.from_components(pipe.image_pipeline, pipe.video_pipeline)(["a", "b"], **kw)
    np.testing.assert_array_equal(a.video[1].frames, b.video[1].frames)  # same seed, same videos
    np.testing.assert_array_equal(a.image[0], b.image[0])


def test_stage_seeds_are_reproducible_and_distinct():
    assert stage_seeds(0) == stage_seeds(0)
    a, b = stage_seeds(0)
    assert a != b and stage_seeds(1) != (a, b)
    assert all(0 <= s < 2 ** 63 for s in (a, b))


def test_bad_input(tmp_path):
    with pytest.raises(svdc.CheckpointError, match="image_model"):
        svdc.TextToVideo.from_pretrained(tmp_path / "missing", tmp_path)
    with pytest.raises(ValueError, match="text_to_image"):
        svdc.TextToVideo()
    pipe = svdc.TextToVideo.from_pretrained(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="seed"):
        pipe("a", seed=-1)
    with pytest.raises(TypeError, match="callback"):
        pipe("a", seed=0, callback=3)
