"""svdc.models._loading.resolve: diffusers/transformers folders written by their own save_pretrained (single file,
fp16 variant, sharded), pipeline folders, single .safetensors files, and refusal of pickle and broken inputs."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import svdc
from svdc import weights as W
from svdc.models._loading import Source, resolve


@pytest.fixture(scope="module")
def models():
    """A tiny VAE (diffusers) and CLIP vision tower (transformers), every parameter perturbed."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    from tests.reference_helpers import perturb_parameters

    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLTemporalDecoder(block_out_channels=(32, 64), layers_per_block=1,
                                                 down_block_types=("DownEncoderBlock2D",) * 2)
    cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, image_size=30, patch_size=15, projection_dim=16)
    clip = transformers.CLIPVisionModelWithProjection(cfg)
    return perturb_parameters(vae.eval()), perturb_parameters(clip.eval(), seed=1)


def state(module):
    return {k: v.detach().float().numpy() for k, v in module.state_dict().items()}


def assert_weights_equal(weights, ref, exact=True):
    assert sorted(weights) == sorted(ref)
    for k, v in ref.items():
        got = weights[k]
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == v.shape, k
        if exact:
            np.testing.assert_array_equal(got, v, err_msg=k)
        else:  # fp16 storage: compare against the fp16-rounded reference
            np.testing.assert_array_equal(got, v.astype(np.float16).astype(np.float32), err_msg=k)


def test_diffusers_component_folder(tmp_path, models):
    vae, _ = models
    vae.save_pretrained(tmp_path / "vae")
    src = resolve(tmp_path / "vae", "vae")
    assert isinstance(src, Source) and src.kind == "folder" and src.file is None
    assert src.path == str(tmp_path / "vae")
    assert src.config["_class_name"] == "AutoencoderKLTemporalDecoder"
    assert src.config["block_out_channels"] == [32, 64] and src.config["layers_per_block"] == 1
    assert_weights_equal(src.weights, state(vae))
    assert src.weights.shape_of("encoder.conv_in.weight") == (32, 3, 3, 3)
    src.close()


def test_transformers_component_folder(tmp_path, models):
    _, clip = models
    clip.save_pretrained(tmp_path / "image_encoder")
    src = resolve(str(tmp_path / "image_encoder"), "image_encoder")
    assert src.kind == "folder" and src.config["hidden_size"] == 32 and src.config["projection_dim"] == 16
    ref = {k: v for k, v in state(clip).items() if k in src.weights}  # non-persistent buffers are not saved
    assert "visual_projection.weight" in ref and len(ref) >= len(list(clip.parameters()))
    assert_weights_equal(src.weights, ref)


def test_fp16_variant_and_preference(tmp_path, models):
    vae, _ = models
    half = type(vae).from_config(vae.config)
    half.load_state_dict(vae.state_dict())
    half = half.half()
    only16 = tmp_path / "only16"
    half.save_pretrained(only16, variant="fp16")
    assert os.listdir(only16) and "diffusion_pytorch_model.fp16.safetensors" in os.listdir(only16)
    # only the variant exists: it is used, with or without variant="fp16"
    for variant in (None, "fp16"):
        src = resolve(only16, "vae", variant=variant)
        assert src.files[0].path.endswith(".fp16.safetensors") and src.files[0].dtype_of("encoder.conv_in.weight") == "F16"
        assert_weights_equal(src.weights, state(vae), exact=False)
    # both exist: fp32 unless fp16 is asked for
    both = tmp_path / "both"
    shutil.copytree(only16, both)
    vae.save_pretrained(both)
    assert resolve(both, "vae").files[0].path.endswith("diffusion_pytorch_model.safetensors")
    assert_weights_equal(resolve(both, "vae").weights, state(vae))
    assert resolve(both, "vae", variant="fp16").files[0].path.endswith(".fp16.safetensors")
    # the variant is required when asked for
    fp32 = tmp_path / "fp32"
    vae.save_pretrained(fp32)
    with pytest.raises(svdc.CheckpointError, match=r"diffusion_pytorch_model\.fp16\.safetensors"):
        resolve(fp32, "vae", variant="fp16")
    with pytest.raises(ValueError):
        resolve(fp32, "vae", variant="../x")


def test_sharded_folders(tmp_path, models):
    vae, clip = models
    vae.save_pretrained(tmp_path / "vae", max_shard_size="100KB")
    clip.save_pretrained(tmp_path / "clip", max_shard_size="20KB")
    assert "diffusion_pytorch_model.safetensors.index.json" in os.listdir(tmp_path / "vae")
    assert "model.safetensors.index.json" in os.listdir(tmp_path / "clip")
    src = resolve(tmp_path / "vae", "vae")
    assert len(src.files) > 1
    assert_weights_equal(src.weights, state(vae))
    src = resolve(tmp_path / "clip", "image_encoder")
    assert len(src.files) > 1
    assert_weights_equal(src.weights, {k: v for k, v in state(clip).items() if k in src.weights})
    # sharded fp16 variant: diffusion_pytorch_model.safetensors.index.fp16.json
    half = type(vae).from_config(vae.config)
    half.load_state_dict(vae.state_dict())
    half.half().save_pretrained(tmp_path / "vae16", max_shard_size="100KB", variant="fp16")
    assert "diffusion_pytorch_model.safetensors.index.fp16.json" in os.listdir(tmp_path / "vae16")
    assert_weights_equal(resolve(tmp_path / "vae16", "vae").weights, state(vae), exact=False)


def test_sharded_index_errors(tmp_path, models):
    vae, _ = models
    folder = tmp_path / "vae"
    vae.save_pretrained(folder, max_shard_size="100KB")
    index_path = folder / "diffusion_pytorch_model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    name = sorted(index["weight_map"])[0]

    def with_map(**changes):
        idx = json.loads(json.dumps(index))
        idx["weight_map"].update(changes)
        index_path.write_text(json.dumps(idx))

    with_map(**{name: "../outside.safetensors"})
    with pytest.raises(svdc.CheckpointError, match="same folder"):
        resolve(folder, "vae")
    with_map(**{name: "missing-00001.safetensors"})
    with pytest.raises(svdc.CheckpointError, match="does not exist"):
        resolve(folder, "vae")
    with_map(**{"not.in.shard": index["weight_map"][name]})
    with pytest.raises(svdc.CheckpointError, match="not.in.shard"):
        resolve(folder, "vae")
    with_map(**{name: "pytorch_model-00001.bin"})
    with pytest.raises(svdc.CheckpointError, match="only safetensors"):
        resolve(folder, "vae")
    index_path.write_text(json.dumps({"weight_map": []}))
    with pytest.raises(svdc.CheckpointError, match="weight_map"):
        resolve(folder, "vae")


def write_model_index(folder, **components):
    index = {"_class_name": "StableVideoDiffusionPipeline", "_diffusers_version": "0.42.1",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"], **components}
    (folder / "model_index.json").write_text(json.dumps(index))


def test_pipeline_folder(tmp_path, models):
    vae, clip = models
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    vae.save_pretrained(pipe / "vae")
    clip.save_pretrained(pipe / "image_encoder")
    write_model_index(pipe, vae=["diffusers", "AutoencoderKLTemporalDecoder"],
                      image_encoder=["transformers", "CLIPVisionModelWithProjection"], unet=[None, None])
    src = resolve(pipe, "vae")
    assert src.kind == "folder" and src.path == str(pipe / "vae")
    assert_weights_equal(src.weights, state(vae))
    src = resolve(pipe, "image_encoder")
    assert src.path == str(pipe / "image_encoder") and src.config["hidden_size"] == 32
    # listed as null, and not listed at all: a clear error that says what the pipeline has
    for component in ("unet", "text_encoder"):
        with pytest.raises(svdc.CheckpointError, match=f"no {component}.*image_encoder, scheduler, vae") as e:
            resolve(pipe, component)
        assert str(pipe) in str(e.value)
    # listed but the subfolder is gone
    shutil.rmtree(pipe / "vae")
    with pytest.raises(svdc.CheckpointError, match="no vae"):
        resolve(pipe, "vae")
    (pipe / "model_index.json").write_text("{broken")
    with pytest.raises(svdc.CheckpointError, match="model_index.json"):
        resolve(pipe, "image_encoder")


def test_wrong_component_folder_is_named(tmp_path, models):
    vae, clip = models
    vae.save_pretrained(tmp_path / "vae")
    clip.save_pretrained(tmp_path / "clip")
    with pytest.raises(svdc.CheckpointError, match="AutoencoderKLTemporalDecoder.*expected a unet"):
        resolve(tmp_path / "vae", "unet")
    with pytest.raises(svdc.CheckpointError, match="CLIPVisionModelWithProjection.*expected a vae"):
        resolve(tmp_path / "clip", "vae")


def test_single_file(tmp_path):
    t = {"model.diffusion_model.input_blocks.0.0.weight": np.ones((2, 3), np.float16),
         "first_stage_model.decoder.conv_in.bias": np.arange(4, dtype=np.float32)}
    p = tmp_path / "svd.safetensors"
    W.save_file(t, p)
    src = resolve(p, "unet")
    assert src.kind == "single_file" and src.path == str(p) and src.config is None and src.weights is None
    assert isinstance(src.file, W.SafetensorsFile) and sorted(src.file.keys()) == sorted(t)
    np.testing.assert_array_equal(src.file["first_stage_model.decoder.conv_in.bias"], np.arange(4))
    src.close()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10" + b"\0" * 7 + b"garbage!")
    with pytest.raises(svdc.CheckpointError, match="bad.safetensors.*header"):
        resolve(bad, "vae")


@pytest.mark.parametrize("name", ["diffusion_pytorch_model.bin", "model.ckpt", "svd.pt", "x.pth"])
def test_pickle_files_are_refused(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"PK\x03\x04 not a real pickle; must never be opened as one")
    with pytest.raises(svdc.CheckpointError, match="only safetensors"):
        resolve(p, "vae")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "config.json").write_text('{"_class_name": "AutoencoderKLTemporalDecoder"}')
    shutil.copy(p, folder / name)
    with pytest.raises(svdc.CheckpointError, match="only safetensors"):
        resolve(folder, "vae")


def test_bad_paths_and_configs(tmp_path):
    with pytest.raises(svdc.CheckpointError, match="no such file or folder") as e:
        resolve(tmp_path / "absent", "unet")
    assert str(tmp_path / "absent") in str(e.value)
    with pytest.raises(svdc.CheckpointError, match="config.json"):
        resolve(tmp_path, "unet")  # empty folder
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(svdc.CheckpointError, match="config.json"):
        resolve(tmp_path, "unet")
    (tmp_path / "config.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(svdc.CheckpointError, match="config.json"):
        resolve(tmp_path, "unet")
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(svdc.CheckpointError, match="JSON object"):
        resolve(tmp_path, "unet")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(svdc.CheckpointError, match="no unet weights found.*config.json"):
        resolve(tmp_path, "unet")
    with pytest.raises(ValueError, match="component"):
        resolve(tmp_path, "decoder")
    with pytest.raises(TypeError):
        resolve(3, "unet")


def test_json_paths(tmp_path, models):
    vae, _ = models
    vae.save_pretrained(tmp_path / "vae")
    with resolve(tmp_path / "vae" / "config.json", "vae") as src:
        assert src.kind == "folder" and src.path == str(tmp_path / "vae")
    (tmp_path / "vae" / "other.json").write_text("{}")
    with pytest.raises(svdc.CheckpointError, match="pass the folder"):
        resolve(tmp_path / "vae" / "other.json", "vae")
