"""The canonical diffusers Stable Diffusion 2.1 snippet (the stabilityai/stable-diffusion-2-1 model card, kept
verbatim below but for its import line) runs on svdc.StableDiffusionPipeline, with the hub id served from a fake
Hugging Face cache built offline (a tiny random SD 2.x pipeline saved by diffusers in fp16, with SD 2.1's
DDIMScheduler v-prediction config) and "cuda" standing for the emulated device; its image equals diffusers' (same
files computed in fp32, same torch seed, DPM-Solver++ from the DDIM config, 50 steps, CFG 7.5) within one level.
Plus the rest of the diffusers surface: generator=, output_type, return_dict, num_images_per_prompt, callbacks."""
import os
import textwrap

import numpy as np
import pytest

import svdc
from svdc import runtime, tiny
from tests.hub_cache import add_snapshot
from tests.reference_helpers import perturb_parameters
from tests.unit._clip_vocab import write_tokenizer_folder

REPO_ID = "stabilityai/stable-diffusion-2-1"
DIFFUSERS_SNIPPET = '''
import torch
from diffusers import StableDiffusionPipeline, DPMSolverMultistepScheduler

model_id = "stabilityai/stable-diffusion-2-1"

# Use the DPMSolverMultistepScheduler (DPM-Solver++) scheduler here instead
pipe = StableDiffusionPipeline.from_pretrained(model_id, torch_dtype=torch.float16)
pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
pipe = pipe.to("cuda")

prompt = "a photo of an astronaut riding a horse on mars"
image = pipe(prompt).images[0]

image.save("astronaut_rides_horse.png")
'''
SVDC_SNIPPET = DIFFUSERS_SNIPPET.replace("from diffusers import", "from svdc import")

# SD 2.1's scheduler/scheduler_config.json
SD21_SCHEDULER = dict(beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085, clip_sample=False,
                      num_train_timesteps=1000, prediction_type="v_prediction", set_alpha_to_one=False,
                      steps_offset=1, trained_betas=None)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """(fake hub cache, snapshot folder) of a tiny random SD 2.x pipeline saved by diffusers in fp16."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise  # the reference must run in CI, never skip there
        pytest.skip("torch (CPU) is a test dependency")
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_folder(tmp_path_factory.mktemp("tok")))
    te_cfg = {k: v for k, v in tiny.sd_text_encoder_config(len(tokenizer)).items() if k != "architectures"}
    text_encoder = perturb_parameters(CLIPTextModel(CLIPTextConfig(**te_cfg)).eval(), seed=3)
    unet = perturb_parameters(UNet2DConditionModel(
        **{k: v for k, v in tiny.SD_UNET_CONFIG.items() if not k.startswith("_")}).eval(), seed=1)
    vae = perturb_parameters(AutoencoderKL(
        **{k: v for k, v in tiny.SD_VAE_CONFIG.items() if not k.startswith("_")}).eval(), seed=2)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**SD21_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    folder = tmp_path_factory.mktemp("sd21_fp16")
    pipe.to(torch.float16).save_pretrained(folder)
    cache = tmp_path_factory.mktemp("hf_cache")
    return str(cache), add_snapshot(str(cache), REPO_ID, str(folder))


def _fake_cuda(monkeypatch):
    """A usable "cuda" whose models run on the emulated device (as tests/device/test_emu_models.py does)."""
    monkeypatch.setattr(runtime, "_cuda_status", lambda: (1, None))
    monkeypatch.setattr(runtime, "native_device", lambda d: "emu:0" if d.startswith("cuda") else d)


def _reference(snapshot, seed, **kwargs):
    import torch
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    ref = StableDiffusionPipeline.from_pretrained(snapshot, torch_dtype=torch.float32)
    ref.scheduler = DPMSolverMultistepScheduler.from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    with torch.no_grad():
        return ref(generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs).images


def _within_one_level(ours, ref_np, what):
    ref = np.round(np.asarray(ref_np) * 255).astype(np.uint8)  # diffusers' own "pil" path rounds the same way
    assert ours.shape == ref.shape, f"{what}: {ours.shape} != {ref.shape}"
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert float(np.mean((ref > 0) & (ref < 255))) > 0.5, f"{what}: the reference is mostly saturated"
    assert float(np.mean(diff <= 1)) >= 0.999, f"{what}: max diff {diff.max()}, {np.mean(diff <= 1):.4%} within 1"


@pytest.mark.slow
def test_canonical_snippet_matches_diffusers(snapshot, tmp_path, monkeypatch):
    import torch
    from PIL import Image

    cache, folder = snapshot
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.chdir(tmp_path)
    _fake_cuda(monkeypatch)
    torch.manual_seed(1234)  # diffusers draws from torch's global generator when the snippet passes none
    namespace = {}
    exec(compile(textwrap.dedent(SVDC_SNIPPET), "diffusers_snippet", "exec"), namespace)
    pipe, image = namespace["pipe"], namespace["image"]
    assert isinstance(pipe.scheduler, svdc.DPMSolverMultistepScheduler)
    assert pipe.scheduler.prediction_type == "v_prediction" and pipe.unet.device == "cuda:0"
    assert pipe.unet.dtype == "fp16"  # torch_dtype=torch.float16: fp16 storage, fp32 compute
    assert isinstance(image, Image.Image) and os.path.getsize(tmp_path / "astronaut_rides_horse.png") > 0
    ref = _reference(folder, 1234, prompt="a photo of an astronaut riding a horse on mars")
    _within_one_level(np.asarray(image)[None], ref, "snippet")


def test_snippet_differs_from_diffusers_only_in_its_import():
    changed = [(a, b) for a, b in zip(DIFFUSERS_SNIPPET.splitlines(), SVDC_SNIPPET.splitlines()) if a != b]
    assert changed == [("from diffusers import StableDiffusionPipeline, DPMSolverMultistepScheduler",
                        "from svdc import StableDiffusionPipeline, DPMSolverMultistepScheduler")]


def test_generator_output_types_batches_and_callbacks(snapshot):
    import torch

    _, folder = snapshot
    pipe = svdc.StableDiffusionPipeline.from_pretrained(folder)
    pipe.scheduler = svdc.DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt=["a red fox", "a blue bird"], negative_prompt=["blurry", "dark"], num_images_per_prompt=2,
              num_inference_steps=3, guidance_scale=5.0)
    seen = []
    out = pipe(generator=torch.Generator().manual_seed(7), output_type="np",
               callback_on_step_end=lambda p, i, t, d: seen.append((i, float(t), d["latents"].shape)) or d, **kw)
    assert out.nsfw_content_detected is None and out.images.shape == (4, 64, 64, 3)
    assert [s[0] for s in seen] == [0, 1, 2] and all(s[2] == (4, 4, 8, 8) for s in seen)
    _within_one_level(np.round(out.images * 255).astype(np.uint8), _reference(folder, 7, **kw), "batch")
    pil = pipe(generator=7, **kw).images
    assert len(pil) == 4 and np.array_equal(np.asarray(pil[3]), np.round(out.images[3] * 255).astype(np.uint8))
    latents, nsfw = pipe(generator=7, output_type="latent", return_dict=False, **kw)
    assert latents.shape == (4, 4, 8, 8) and nsfw is None
    with pytest.raises(ValueError, match="eta"):
        pipe("a", eta=0.5)
    with pytest.raises(ValueError, match="prompt_embeds"):
        pipe(prompt_embeds=np.zeros((1, 77, 32), np.float32))
    with pytest.raises(ValueError, match="LMSDiscreteScheduler"):
        pipe.scheduler = {"_class_name": "LMSDiscreteScheduler"}
