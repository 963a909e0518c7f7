"""End to end: svdc.MultiView on a tiny random SV3D-like model against a reference loop written here from Stability's
scripts/sampling/simple_video_sample.py and the sgm modules it runs (ConcatTimestepEmbedderND vectors, EDM sigmas in
float32, VScalingWithEDMcNoise, TrianglePredictionGuider, Euler-EDM, the 2-D decoder without post_quant_conv), with
diffusers' UNetSpatioTemporalConditionModel blocks fed per-frame embedding rows, diffusers' AutoencoderKL and
transformers' CLIP. Same seed: uint8 views within one level on >= 99.9 % of pixels; the last view is the
preprocessed input bit for bit. Plus loading (folder, single file), kind detection and bad input."""
import json
import os

import numpy as np
import pytest

import svdc
from svdc import orbits, tiny
from svdc.image import CLIP_MEAN, CLIP_STD, sv3d_preprocess
from svdc.pipelines.multiview import MultiView

from tests.parity._unet_reference import reference_with_emb

SIZE = tiny.TINY_SV3D_SIZE
SEED = 23


def _torch():
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("torch (CPU) is a test dependency")
    torch.set_num_threads(2)
    return torch


def _weights(kind):
    """The tiny model's weights under diffusers/transformers names, as tiny.tiny_multiview_components draws them."""
    unet_cfg = tiny.sv3d_unet_config(kind)
    return (tiny.random_weights(svdc.UNet.weight_shapes(unet_cfg), 0),
            tiny.identity_temporal_decoder(tiny.random_weights(svdc.VAE.weight_shapes(tiny.SV3D_VAE_CONFIG), 1)),
            tiny.random_weights(svdc.ImageEncoder.weight_shapes(tiny.IMAGE_ENCODER_CONFIG), 2))


def _load(torch, module, weights, allowed_missing=()):
    missing, unexpected = module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    assert not unexpected, unexpected[:5]
    assert all(k.startswith(allowed_missing) for k in missing), missing[:5]
    return module.eval()


@pytest.fixture(scope="module", params=["sv3d_p", "sv3d_u"])
def models(request):
    """(kind, svdc MultiView, torch reference models (unet, autoencoder_kl, clip))."""
    torch = _torch()
    from diffusers import AutoencoderKL, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    kind = request.param
    unet_w, vae_w, clip_w = _weights(kind)
    cfg = {k: v for k, v in tiny.sv3d_unet_config(kind).items() if k != "added_id_widths"}
    unet = _load(torch, UNetSpatioTemporalConditionModel(**cfg), unet_w)
    # SV3D decodes with a plain 2-D decoder: AutoencoderKL's, fed the spatial halves of the tiny VAE's res blocks
    n = len(tiny.SV3D_VAE_CONFIG["block_out_channels"])
    ae = AutoencoderKL(block_out_channels=tiny.SV3D_VAE_CONFIG["block_out_channels"], layers_per_block=2,
                       latent_channels=4,
                       down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n)
    plain = {k.replace(".spatial_res_block.", "."): v for k, v in vae_w.items()
             if ".temporal_res_block." not in k and "time_mixer" not in k and "time_conv_out" not in k}
    _load(torch, ae, plain, allowed_missing=("post_quant_conv.",))
    clip = _load(torch, CLIPVisionModelWithProjection(CLIPVisionConfig(**tiny.IMAGE_ENCODER_CONFIG)), clip_w)
    return kind, tiny.tiny_multiview(kind, device="cpu"), (unet, ae, clip)


def _vector_rows(torch, kind, elev, azim):
    """(21, n) sgm vector rows: [E256(cond_aug) | E512(polar) | E512(azimuth)] (sv3d_p) or E256(cond_aug)."""
    from diffusers.models.embeddings import get_timestep_embedding

    def emb(values, dim):  # ConcatTimestepEmbedderND: float32, cos first, max period 10000
        return get_timestep_embedding(torch.tensor(values, dtype=torch.float32), dim, flip_sin_to_cos=True,
                                      downscale_freq_shift=0)

    parts = [emb([1e-5] * 21, 256)]
    if kind == "sv3d_p":
        parts += [emb([np.deg2rad(90 - e) for e in elev], 512), emb([np.deg2rad(a) for a in azim], 512)]
    return torch.cat(parts, dim=1)


def sgm_reference(torch, ref_models, kind, rgb, elev, azim, steps, seed, max_scale=2.5):
    """The sgm script's loop, written out with torch on the CPU."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    unet, ae, clip = ref_models
    with torch.no_grad():
        torch.manual_seed(seed)
        clean = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous().float().div(255) * 2.0 - 1.0  # ToTensor()·2 − 1
        noisy = clean + 1e-5 * torch.randn_like(clean)
        x = torch.randn(21, 4, SIZE // 8, SIZE // 8)
        pix = (_resize_with_antialiasing(clean, (224, 224)) + 1.0) / 2.0
        pix = (pix - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
        ctx = clip(pixel_values=pix).image_embeds[:, None]  # (1, 1, D)
        cond = ae.encode(noisy).latent_dist.mode()  # (1, 4, h, w), unscaled
        vec = _vector_rows(torch, kind, elev, azim)
        ramp = torch.linspace(0, 1, steps)  # EDMDiscretization in float32
        lo, hi = 0.002 ** (1 / 7.0), 700.0 ** (1 / 7.0)
        sigmas = torch.cat([(hi + ramp * (lo - hi)) ** 7.0, torch.zeros(1)])
        x = x * torch.sqrt(1.0 + sigmas[0] ** 2.0)
        v = torch.linspace(0, 1, 21)
        scale = (1.0 + (max_scale - 1.0) * 2 * torch.abs(v - torch.floor(v + 0.5)))[:, None, None, None]
        aug = unet.add_embedding(vec)  # (21, 4·C0)
        for i in range(steps):
            s = sigmas[i]
            c_in, c_out, c_skip = 1 / (s ** 2 + 1) ** 0.5, -s / (s ** 2 + 1) ** 0.5, 1 / (s ** 2 + 1)
            c_noise = 0.25 * s.log()
            temb = unet.time_embedding(unet.time_proj(c_noise.reshape(1)))  # (1, 4·C0)
            rows = (temb + aug).repeat(2, 1)  # [uncond; cond] share the vector
            inp = torch.stack([torch.cat([x * c_in, torch.zeros_like(x)], 1),
                               torch.cat([x * c_in, cond.expand(21, -1, -1, -1)], 1)])
            ctx2 = torch.cat([torch.zeros_like(ctx), ctx])
            out = torch.from_numpy(reference_with_emb(torch, unet, inp.numpy(), ctx2.numpy(), rows.numpy()))
            d_u, d_c = out[0] * c_out + x * c_skip, out[1] * c_out + x * c_skip
            denoised = d_u + scale * (d_c - d_u)
            x = x + (x - denoised) / s * (sigmas[i + 1] - s)
        img = ae.decoder(x / 0.18215)  # no post_quant_conv
        img[-1:] = clean
        return (torch.clamp((img + 1.0) / 2.0, 0.0, 1.0) * 255).permute(0, 2, 3, 1).numpy().astype(np.uint8)


def _compare(ours, ref, what):
    diff = np.abs(ours.astype(int) - ref.astype(int))
    ok = float(np.mean(diff <= 1))
    informative = float(np.mean((ref > 0) & (ref < 255)))
    assert informative > 0.5, f"{what}: the reference is mostly saturated ({informative:.1%})"
    assert ok >= 0.999, f"{what}: only {ok:.4%} of pixels within one level (max diff {diff.max()})"
    return ok


def test_matches_sgm_reference(models):
    torch = _torch()
    kind, pipe, ref_models = models
    image = tiny.test_object()
    steps = 3
    if kind == "sv3d_p":
        kw = dict(orbit="dynamic", elevations=5.0)
        elev, azim = orbits.dynamic_orbit(5.0, SEED)
    else:
        kw = dict(elevations=15.0)
        elev, azim = orbits.static_orbit(15.0)
    orbit = pipe(image, num_inference_steps=steps, seed=SEED, progress=False, **kw)
    rgb, alpha = sv3d_preprocess(image, SIZE)
    ref = sgm_reference(torch, ref_models, kind, rgb, elev, azim, steps, SEED)
    ok = _compare(orbit.frames, ref, kind)
    assert np.array_equal(orbit.frames[20], rgb)  # the input view, bit for bit
    assert np.array_equal(orbit.alpha[20], alpha)
    assert np.array_equal(orbit.elevations, elev) and np.array_equal(orbit.azimuths, azim)
    print(f"{kind}: {ok:.5%} of pixels within one level")


def test_embedding_rows_match_diffusers(models):
    """The per-frame vector: each added id through the C sinusoid equals diffusers' get_timestep_embedding (<= 1e-6),
    and the UNet's whole conditioning rows (time + add_embedding(vector)) match diffusers' modules."""
    torch = _torch()
    from svdc._native import testing_ops

    kind, pipe, (unet, _, _) = models
    elev, azim = orbits.dynamic_orbit(20.0, seed=3)
    ids = pipe.added_ids(elev, azim)  # (2, 21, n)
    assert ids.shape == (2, 21, 3 if kind == "sv3d_p" else 1) and np.array_equal(ids[0], ids[1])
    widths = [256, 512, 512][: ids.shape[-1]]
    ours = np.concatenate([testing_ops().timestep_embedding(np.ascontiguousarray(ids[1, :, j]), w)
                           for j, w in enumerate(widths)], axis=1)
    ref = _vector_rows(torch, kind, elev, azim).numpy()
    assert ours.shape == ref.shape == (21, sum(widths))
    assert np.abs(ours - ref).max() <= 1e-6
    t = np.array([1.234], np.float32)
    rows = pipe.unet.embedding(t, ids[1:], 21)
    with torch.no_grad():
        temb = unet.time_embedding(unet.time_proj(torch.from_numpy(t)))
        expected = (temb + unet.add_embedding(torch.from_numpy(ref))).numpy()
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_reproducible_and_callback(models):
    kind, pipe, _ = models
    if kind != "sv3d_p":
        pytest.skip("once is enough")
    seen = []
    kw = dict(num_inference_steps=2, seed=5, progress=False, orbit="sine")
    a = pipe(tiny.test_object(), callback=lambda i, n, lat: seen.append((i, n, lat.shape)), **kw)
    b = pipe(tiny.test_object(), **kw)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.alpha, b.alpha)
    assert seen == [(i, 2, (1, 21, 4, 8, 8)) for i in range(2)]
    assert not np.array_equal(a.frames[:20], pipe(tiny.test_object(), **{**kw, "seed": 6}).frames[:20])
    hooked = pipe(tiny.test_object(), matting=lambda rgb: np.full(rgb.shape[:2], 0.5), **kw)
    assert np.all(hooked.alpha[:20] == 128) and np.array_equal(hooked.frames, a.frames)


# ---- loading --------------------------------------------------------------------------------------------------
def _write_component(folder, config, weights):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    name = "model.safetensors" if "architectures" in config else "diffusion_pytorch_model.safetensors"
    svdc.weights.save_file(weights, folder / name)


def test_from_pretrained_folder_and_single_file(tmp_path):
    from svdc.naming import clip as clip_naming
    from svdc.naming import unet as unet_naming
    from svdc.naming import vae as vae_naming

    unet_w, vae_w, clip_w = _weights("sv3d_p")
    cfg = {k: v for k, v in tiny.sv3d_unet_config("sv3d_p").items() if k != "added_id_widths"}
    root = tmp_path / "sv3d_p_tiny"
    _write_component(root / "unet", {"_class_name": "UNetSpatioTemporalConditionModel", **cfg}, unet_w)
    _write_component(root / "vae", {"_class_name": "AutoencoderKLTemporalDecoder", **tiny.SV3D_VAE_CONFIG}, vae_w)
    _write_component(root / "image_encoder", {"architectures": ["CLIPVisionModelWithProjection"],
                                              **tiny.IMAGE_ENCODER_CONFIG}, clip_w)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "SV3DPipeline",
                                                       "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
                                                       "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
                                                       "image_encoder": ["transformers", "CLIPVisionModelWithProjection"]}))
    kw = dict(num_inference_steps=2, seed=1, progress=False)
    expected = tiny.tiny_multiview("sv3d_p", device="cpu")(tiny.test_object(), **kw)
    folder = MultiView.from_pretrained(root, device="cpu", size=SIZE)
    assert folder.kind == "sv3d_p"  # a 1280-wide projection is read as sv3d_p's [256, 512, 512] ids
    assert np.array_equal(folder(tiny.test_object(), **kw).frames, expected.frames)

    # a Stability single file with a plain 2-D first-stage decoder, as the SV3D files have
    single = unet_naming.to_single_file(unet_w, {**tiny.sv3d_unet_config("sv3d_p")})
    sv3d_vae = {k: v for k, v in vae_w.items()  # the temporal VAE minus its temporal parts
                if ".temporal_res_block." not in k and "time_mixer" not in k and "time_conv_out" not in k}
    single.update(vae_naming.to_single_file(sv3d_vae, len(tiny.SV3D_VAE_CONFIG["block_out_channels"]),
                                            encoder_prefix="conditioner.embedders.1.encoder."))
    single.update(clip_naming.to_single_file(clip_w))
    path = tmp_path / "sv3d_p_tiny.safetensors"
    svdc.weights.save_file(single, path)
    configs = {"unet": {**tiny.sv3d_unet_config("sv3d_p"), "resnet_eps": "diffusers"},
               "vae": dict(tiny.SV3D_VAE_CONFIG),
               "image_encoder": dict(tiny.IMAGE_ENCODER_CONFIG)}
    from_file = MultiView.from_pretrained(path, device="cpu", configs=configs, size=SIZE)
    assert from_file.kind == "sv3d_p"
    assert np.array_equal(from_file(tiny.test_object(), **kw).frames, expected.frames)


def test_non_sv3d_checkpoints_are_refused(tmp_path):
    unet, vae, enc = tiny.tiny_components(device="cpu")  # an SVD-like UNet: ids [fps, motion, cond_aug]
    with pytest.raises(ValueError, match="not an SV3D UNet"):
        MultiView.from_components(unet, vae, enc, size=SIZE)
    path = tmp_path / "svd.safetensors"
    svdc.weights.save_file({"model.diffusion_model.label_emb.0.0.weight": np.zeros((4, 768), np.float32)}, path)
    with pytest.raises(svdc.CheckpointError, match="not an SV3D checkpoint"):
        MultiView.from_pretrained(path, device="cpu")
    with pytest.raises(svdc.CheckpointError, match="no such file"):
        MultiView.from_pretrained(tmp_path / "missing.safetensors", device="cpu")


# ---- bad input ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_p():
    return tiny.tiny_multiview("sv3d_p", device="cpu")


BASE = dict(num_inference_steps=1, seed=0, progress=False)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(elevations=[10.0] * 20), ValueError, "elevations: expected 1 value or 21"),
    (dict(elevations=[10.0] * 22), ValueError, "elevations: expected 1 value or 21"),
    (dict(elevations=float("nan")), ValueError, "finite"),
    (dict(elevations=10.0, azimuths=[float("nan")] * 21), ValueError, "azimuths: expected finite"),
    (dict(elevations=95.0), ValueError, r"\[-90, 90\]"),
    (dict(elevations=-91.0), ValueError, r"\[-90, 90\]"),
    (dict(azimuths=list(range(20))), ValueError, "azimuths: expected 21"),
    (dict(orbit="spiral"), ValueError, "orbit"),
    (dict(num_inference_steps=0), ValueError, "num_inference_steps"),
    (dict(max_guidance_scale=0.5), ValueError, "min_guidance_scale"),
    (dict(image_frame_ratio=0.0), ValueError, "image_frame_ratio"),
    (dict(matting="rembg"), TypeError, "matting"),
    (dict(latents=np.zeros((1, 20, 4, 8, 8), np.float32)), ValueError, "latents"),
    (dict(callback=3), TypeError, "callback"),
])
def test_bad_arguments(tiny_p, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        tiny_p(tiny.test_object(), **{**BASE, **kwargs})


def test_bad_images(tiny_p):
    with pytest.raises(ValueError, match="fully transparent"):
        tiny_p(np.zeros((32, 32, 4), np.uint8), **BASE)
    dark = np.full((32, 32, 3), 40, np.uint8)  # an RGB photo with no white background
    with pytest.raises(ValueError, match="no white background"):
        tiny_p(dark, **BASE)
    wide = np.zeros((20, 60, 4), np.uint8)
    wide[5:15, 2:58] = 200
    with pytest.raises(ValueError, match="image_frame_ratio"):
        tiny_p(wide, **BASE)


def test_sv3d_u_takes_no_camera_input():
    pipe = tiny.tiny_multiview("sv3d_u", device="cpu")
    for kwargs in (dict(orbit="sine"), dict(azimuths=list(range(21))), dict(elevations=[5.0] * 21)):
        with pytest.raises(ValueError, match="sv3d_u takes no camera input"):
            pipe(tiny.test_object(), **{**BASE, **kwargs})


def test_cli_multiview_and_demo(tmp_path, capsys):
    from PIL import Image

    from svdc.cli import main

    Image.fromarray(tiny.test_object()).save(tmp_path / "obj.png")
    out = tmp_path / "views"
    assert main(["multiview", str(tmp_path / "obj.png"), "--model", "tiny", "--device", "cpu", "--steps", "1",
                 "--orbit", "sine", "--seed", "2", "-o", str(out), "-q", "--video", "none"]) == 0
    doc = json.loads((out / "transforms.json").read_text())
    assert len(doc["frames"]) == 21 and (out / "images" / "020.png").is_file()
    assert main(["multiview", str(tmp_path / "obj.png"), "--model", "tiny", "--device", "cpu", "--elevation", "100",
                 "-o", str(tmp_path / "bad"), "-q"]) == 2
    assert "[-90, 90]" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    demo = tmp_path / "demo"
    assert main(["demo", "--workflow", "multiview", "--device", "cpu", "--steps", "1", "-o", str(demo), "-q"]) == 0
    assert (demo / "orbit.mp4").is_file() and (demo / "transforms.json").is_file()
