"""End to end: svdc.TextToImage against diffusers' StableDiffusionPipeline built from tiny perturbed random
components (diffusers UNet2DConditionModel / AutoencoderKL, transformers CLIPTextModel / CLIPTokenizer), saved with
save_pretrained and loaded by svdc; same prompts, seed and settings: uint8 pixels within one level on >= 99.9 %.
Every scheduler svdc implements (Euler, Euler ancestral with its per-step generator noise, DDIM on every spacing,
DPM-Solver++ 2M, SD-Turbo's one trailing step) with epsilon and v prediction, each timestep spacing, with and
without CFG, a batch of two prompts with negative prompts. Plus the bad inputs."""
import json
import os

import numpy as np
import pytest

import svdc
from svdc import tiny

from tests.reference_helpers import perturb_parameters
from tests.unit._clip_vocab import write_tokenizer_folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(diffusers pipeline, its save_pretrained folder, svdc pipeline loaded from it)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("torch (CPU) is a test dependency")
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    tok_dir = write_tokenizer_folder(tmp_path_factory.mktemp("tok"))
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    te_cfg = tiny.sd_text_encoder_config(len(tokenizer))
    te_cfg = {k: v for k, v in te_cfg.items() if k != "architectures"}
    text_encoder = perturb_parameters(CLIPTextModel(CLIPTextConfig(**te_cfg)).eval(), seed=3)
    unet = perturb_parameters(UNet2DConditionModel(
        **{k: v for k, v in tiny.SD_UNET_CONFIG.items() if not k.startswith("_")}).eval(), seed=1)
    vae = perturb_parameters(AutoencoderKL(
        **{k: v for k, v in tiny.SD_VAE_CONFIG.items() if not k.startswith("_")}).eval(), seed=2)
    sched = {k: v for k, v in tiny.SD_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=EulerDiscreteScheduler(**sched), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    folder = tmp_path_factory.mktemp("sd_tiny")
    pipe.save_pretrained(folder)
    return pipe, folder, svdc.TextToImage.from_pretrained(folder, device="cpu")


def _compare(ours, ref_np, what):
    """ref_np: diffusers output_type='np' (B, H, W, 3) in [0, 1] -> uint8 as its PIL path rounds it."""
    ref = np.round(np.asarray(ref_np) * 255).astype(np.uint8)
    ours = np.stack(ours) if isinstance(ours, list) else ours[None]
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    diff = np.abs(ours.astype(int) - ref.astype(int))
    ok = float(np.mean(diff <= 1))
    informative = float(np.mean((ref > 0) & (ref < 255)))
    assert informative > 0.5, f"{what}: the reference is mostly saturated ({informative:.1%}); the test proves little"
    assert ok >= 0.999, f"{what}: only {ok:.4%} of pixels within one level (max diff {diff.max()})"
    return ok, int(diff.max())


PROMPTS = ["a red fox in the snow!", "an astronaut riding a horse on mars, cinematic"]
NEGATIVES = ["blurry", "low quality, watermark"]

DDIM = {"_class_name": "DDIMScheduler", "clip_sample": False, "set_alpha_to_one": False}
ANCESTRAL = {"_class_name": "EulerAncestralDiscreteScheduler"}
DPM = {"_class_name": "DPMSolverMultistepScheduler"}  # diffusers' defaults: 2M, dpmsolver++, lower_order_final

CASES = {
    # name: (scheduler config overrides, call kwargs)
    "eps-leading-cfg-batch2-neg": (dict(), dict(prompt=PROMPTS, negative_prompt=NEGATIVES, guidance_scale=7.5,
                                                num_inference_steps=4)),
    "eps-trailing-no-cfg": (dict(timestep_spacing="trailing"), dict(prompt=PROMPTS[0], guidance_scale=1.0,
                                                                    num_inference_steps=3)),
    "v-linspace-cfg-batch2-neg": (dict(prediction_type="v_prediction", timestep_spacing="linspace"),
                                  dict(prompt=PROMPTS, negative_prompt=NEGATIVES, guidance_scale=4.0,
                                       num_inference_steps=4)),
    "v-leading-no-cfg-batch2": (dict(prediction_type="v_prediction"),
                                dict(prompt=PROMPTS, guidance_scale=0.0, num_inference_steps=3)),
    "eps-trailing-cfg-default-negative": (dict(timestep_spacing="trailing"),
                                          dict(prompt=PROMPTS[1], guidance_scale=3.0, num_inference_steps=2)),
    # DDIM (eta 0) with SD 2.x's folder settings: clip_sample off, set_alpha_to_one off
    "ddim-eps-leading-cfg-batch2-neg": (DDIM, dict(prompt=PROMPTS, negative_prompt=NEGATIVES, guidance_scale=7.5,
                                                   num_inference_steps=4)),
    "ddim-v-trailing-no-cfg": ({**DDIM, "prediction_type": "v_prediction", "timestep_spacing": "trailing",
                                "set_alpha_to_one": True}, dict(prompt=PROMPTS[0], guidance_scale=1.0,
                                                                 num_inference_steps=4)),
    "ddim-v-leading-cfg": ({**DDIM, "prediction_type": "v_prediction"},
                           dict(prompt=PROMPTS[1], negative_prompt="dark", guidance_scale=5.0,
                                num_inference_steps=3)),
    "ddim-eps-linspace-cfg-batch2-neg": ({**DDIM, "timestep_spacing": "linspace"},
                                         dict(prompt=PROMPTS, negative_prompt=NEGATIVES, guidance_scale=6.0,
                                              num_inference_steps=4)),
    # trailing with 3 steps visits 999, 666, 332 while DDIM steps to t - 333: uneven
    "ddim-v-uneven-trailing-no-cfg": ({**DDIM, "prediction_type": "v_prediction", "timestep_spacing": "trailing"},
                                      dict(prompt=PROMPTS, guidance_scale=1.0, num_inference_steps=3)),
    "ancestral-eps-leading-cfg-batch2-neg": (ANCESTRAL, dict(prompt=PROMPTS, negative_prompt=NEGATIVES,
                                                             guidance_scale=7.5, num_inference_steps=4)),
    "ancestral-v-linspace-no-cfg-batch2": ({**ANCESTRAL, "prediction_type": "v_prediction",
                                            "timestep_spacing": "linspace"},
                                           dict(prompt=PROMPTS, guidance_scale=1.0, num_inference_steps=3)),
    "ancestral-v-trailing-cfg": ({**ANCESTRAL, "prediction_type": "v_prediction", "timestep_spacing": "trailing"},
                                 dict(prompt=PROMPTS[0], negative_prompt="blurry", guidance_scale=4.0,
                                      num_inference_steps=3)),
    "dpm-eps-linspace-cfg-batch2-neg": ({**DPM, "timestep_spacing": "linspace"},
                                        dict(prompt=PROMPTS, negative_prompt=NEGATIVES, guidance_scale=7.5,
                                             num_inference_steps=5)),
    "dpm-v-leading-no-cfg-batch2": ({**DPM, "prediction_type": "v_prediction"},
                                    dict(prompt=PROMPTS, guidance_scale=1.0, num_inference_steps=4)),
    "dpm-eps-trailing-cfg-sigma-min": ({**DPM, "timestep_spacing": "trailing", "final_sigmas_type": "sigma_min"},
                                       dict(prompt=PROMPTS[1], guidance_scale=3.0, num_inference_steps=3)),
    # SD-Turbo: its folder's EulerDiscreteScheduler with trailing spacing, one step at t = 999, no guidance
    "turbo-euler-1-step": ({"timestep_spacing": "trailing"}, dict(prompt=PROMPTS, guidance_scale=0.0,
                                                                  num_inference_steps=1)),
    "turbo-ancestral-1-step": ({**ANCESTRAL, "timestep_spacing": "trailing"},
                               dict(prompt=PROMPTS[0], guidance_scale=0.0, num_inference_steps=1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_diffusers(reference, case):
    import diffusers
    import torch

    pipe, _, ours = reference
    overrides, kwargs = CASES[case]
    sched = {**tiny.SD_SCHEDULER_CONFIG, **overrides}
    if sched["_class_name"] != "EulerDiscreteScheduler":
        sched.pop("interpolation_type", None)
    ref_class = getattr(diffusers, sched["_class_name"])
    pipe.scheduler = ref_class(**{k: v for k, v in sched.items() if not k.startswith("_")})
    ours = svdc.TextToImage.from_components(ours.unet, ours.vae, ours.text_encoder, ours.tokenizer,
                                            scheduler_config=sched)
    seed = 4321
    with torch.no_grad():
        ref = pipe(height=64, width=64, generator=torch.Generator().manual_seed(seed), output_type="np",
                   **kwargs).images
    image = ours(height=64, width=64, seed=seed, progress=False, **kwargs)
    ok, worst = _compare(image, ref, case)
    print(f"{case}: {ok:.5%} of pixels within 1 level, max diff {worst}")


def test_explicit_latents_and_callback(reference):
    import torch
    from diffusers import EulerDiscreteScheduler

    pipe, _, ours = reference
    pipe.scheduler = EulerDiscreteScheduler(**{k: v for k, v in tiny.SD_SCHEDULER_CONFIG.items()
                                               if not k.startswith("_")})
    lat = np.random.default_rng(5).standard_normal((1, 4, 8, 8)).astype(np.float32)
    with torch.no_grad():
        ref = pipe(PROMPTS[0], latents=torch.from_numpy(lat), num_inference_steps=3, height=64, width=64,
                   output_type="np").images
    seen = []
    image = ours(PROMPTS[0], latents=lat, num_inference_steps=3, height=64, width=64, progress=False,
                 callback=lambda i, n, x: seen.append((i, n, x.shape)))
    _compare(image, ref, "explicit latents")
    assert seen == [(i, 3, (1, 4, 8, 8)) for i in range(3)]


def test_same_seed_same_image(reference):
    _, _, ours = reference
    kw = dict(num_inference_steps=2, height=64, width=64, progress=False)
    a = ours(PROMPTS[0], seed=3, **kw)
    np.testing.assert_array_equal(a, ours(PROMPTS[0], seed=3, **kw))
    assert not np.array_equal(a, ours(PROMPTS[0], seed=4, **kw))


def test_over_long_prompt_is_truncated_with_a_warning(reference):
    _, _, ours = reference
    with pytest.warns(UserWarning, match="truncated"):
        ours("fox " * 200, num_inference_steps=1, height=64, width=64, seed=0, progress=False)
    ours("", num_inference_steps=1, height=64, width=64, seed=0, progress=False)  # the empty prompt is legal


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(prompt=["a", "b"], negative_prompt=["x"]), ValueError, "negative_prompt: expected 2"),
    (dict(prompt="a", guidance_scale=-1.0), ValueError, "guidance_scale"),
    (dict(prompt=[]), TypeError, "prompt"),
    (dict(prompt=3), TypeError, "prompt"),
    (dict(prompt="a", height=60), ValueError, "height"),
    (dict(prompt="a", num_inference_steps=0), ValueError, "num_inference_steps"),
    (dict(prompt="a", latents=np.zeros((1, 4, 4, 4), np.float32)), ValueError, "latents"),
])
def test_bad_arguments(reference, kwargs, exc, match):
    _, _, ours = reference
    with pytest.raises(exc, match=match):
        ours(progress=False, **kwargs)


def test_unknown_scheduler_config_is_refused_by_name(reference, tmp_path):
    import shutil

    _, folder, _ = reference
    copy = tmp_path / "sd"
    shutil.copytree(folder, copy)
    cfg_file = copy / "scheduler" / "scheduler_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "_class_name": "LMSDiscreteScheduler"}))
    with pytest.raises(svdc.CheckpointError, match="LMSDiscreteScheduler"):
        svdc.TextToImage.from_pretrained(copy, device="cpu")
    cfg_file.write_text(json.dumps({**cfg, "use_karras_sigmas": True}))
    with pytest.raises(svdc.CheckpointError, match="use_karras_sigmas"):
        svdc.TextToImage.from_pretrained(copy, device="cpu")


def test_tokenizer_folder_without_merges_is_refused(tmp_path):
    copy = tiny.save_sd_pipeline(tmp_path / "sd")  # a tokenizer/ with vocab.json + merges.txt, as on the Hub
    os.remove(os.path.join(copy, "tokenizer", "merges.txt"))
    with pytest.raises(svdc.tokenizer.TokenizerError, match="merges.txt"):
        svdc.TextToImage.from_pretrained(copy, device="cpu")


def test_tiny_pipeline_folder_round_trip(tmp_path):
    pipe = tiny.tiny_sd_pipeline(tmp_path / "sd")
    image = pipe(["a", "b"], negative_prompt="c", num_inference_steps=2, seed=0, progress=False)
    assert len(image) == 2 and image[0].shape == (64, 64, 3) and image[0].dtype == np.uint8
