"""svdc.hub: hub ids resolved from a fake Hugging Face cache built offline (blobs + snapshots of relative symlinks +
refs), through HF_HUB_CACHE / HF_HOME / cache_dir; revisions and commits; every broken state (missing repository,
revision or snapshot, broken links, interrupted downloads, partial snapshots) is a CheckpointError that says what
is missing and how to get it; the download happens only when asked for, and fetches only what svdc reads."""
import os
import sys
import types

import numpy as np
import pytest

import svdc
from svdc import hub, tiny
from tests.hub_cache import add_snapshot

REPO = "stabilityai/stable-video-diffusion-img2vid-xt"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny.save_pipeline(tmp_path_factory.mktemp("tiny_pipeline"))


@pytest.fixture
def cache(tmp_path, tiny_folder, monkeypatch):
    root = tmp_path / "hub"
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    snapshot = add_snapshot(str(root), REPO, tiny_folder)
    return str(root), snapshot


def test_is_hub_id(tmp_path, monkeypatch):
    assert hub.is_hub_id("org/name") and hub.is_hub_id("stabilityai/sv3d")
    for not_id in ("name", "a/b/c", "/abs/path", "../x", "org/..", "org/name.safetensors/x", 3, None):
        assert not hub.is_hub_id(not_id)
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not hub.is_hub_id("org/name")  # an existing local folder wins


def test_cache_root_precedence(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub.cache_root() == str(tmp_path / ".cache" / "huggingface" / "hub")
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    assert hub.cache_root() == "/x/huggingface/hub"
    monkeypatch.setenv("HF_HOME", "/h")
    assert hub.cache_root() == "/h/hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", "/legacy")
    assert hub.cache_root() == "/legacy"
    monkeypatch.setenv("HF_HUB_CACHE", "/c")
    assert hub.cache_root() == "/c"
    assert hub.cache_root(tmp_path / "explicit") == str(tmp_path / "explicit")


def test_resolves_and_loads_from_the_cache(cache):
    root, snapshot = cache
    assert hub.resolve_snapshot(REPO) == snapshot
    assert os.path.islink(os.path.join(snapshot, "unet", "config.json"))
    pipe = svdc.StableVideoDiffusionPipeline.from_pretrained(REPO)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(num_frames=2, num_inference_steps=2, height=64, width=64)
    ours = pipe(tiny.test_image(), generator=3, output_type="np", **kw).frames[0]
    native = tiny.tiny_pipeline(device="cpu")(tiny.test_image(), seed=3, progress=False, **kw).frames
    np.testing.assert_array_equal(ours, native / np.float32(255))
    # components take hub ids too (the hook in svdc/models/_loading.py), and so does the native pipeline's CLI
    assert svdc.VAE.from_pretrained(REPO).config["latent_channels"] == 4


def test_hf_home_and_cache_dir(cache, monkeypatch, tmp_path):
    root, snapshot = cache
    monkeypatch.delenv("HF_HUB_CACHE")
    with pytest.raises(svdc.CheckpointError, match="not in the local Hugging Face cache"):
        hub.resolve_snapshot(REPO)
    assert hub.resolve_snapshot(REPO, cache_dir=root) == snapshot
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(root, home / "hub")
    monkeypatch.setenv("HF_HOME", str(home))
    assert os.path.samefile(hub.resolve_snapshot(REPO), snapshot)


def test_revisions_and_commits(cache, tiny_folder, tmp_path):
    root, main = cache
    other = tmp_path / "other"
    tiny.save_pipeline(other, seed=7)
    v1 = add_snapshot(root, REPO, str(other), revision="v1.1")
    assert v1 != main
    assert hub.resolve_snapshot(REPO, revision="v1.1") == v1
    assert hub.resolve_snapshot(REPO) == main
    assert hub.resolve_snapshot(REPO, revision=os.path.basename(v1)) == v1  # a commit hash directly
    with pytest.raises(svdc.CheckpointError, match=r"revision 'v9' is not in the local cache.*main.*v1\.1"):
        hub.resolve_snapshot(REPO, revision="v9")
    with pytest.raises(svdc.CheckpointError, match="snapshot .* is missing"):
        hub.resolve_snapshot(REPO, revision="0" * 40)


def test_missing_repository_says_how_to_get_it(cache):
    with pytest.raises(svdc.CheckpointError) as e:
        svdc.StableVideoDiffusionPipeline.from_pretrained("stabilityai/stable-video-diffusion-img2vid")
    text = str(e.value)
    for needed in ("not in the local Hugging Face cache", "licence", "gated", "huggingface-cli download",
                   "local_files_only=False", "unet/diffusion_pytorch_model.safetensors"):
        assert needed in text, needed


def test_ref_to_a_deleted_snapshot(cache):
    root, snapshot = cache
    import shutil

    shutil.rmtree(snapshot)
    with pytest.raises(svdc.CheckpointError, match="snapshot .* is missing"):
        hub.resolve_snapshot(REPO)


def test_damaged_ref(cache):
    root, _ = cache
    ref = os.path.join(root, "models--" + REPO.replace("/", "--"), "refs", "main")
    with open(ref, "w") as fh:
        fh.write("not a hash")
    with pytest.raises(svdc.CheckpointError, match="40-character commit hash"):
        hub.resolve_snapshot(REPO)


def test_broken_links_and_interrupted_downloads(cache):
    root, snapshot = cache
    link = os.path.join(snapshot, "unet", "diffusion_pytorch_model.safetensors")
    blob = os.path.realpath(link)
    os.rename(blob, blob + ".incomplete")  # what huggingface_hub leaves while (or after) a download breaks off
    with pytest.raises(svdc.CheckpointError, match=r"broken links:\n  unet/diffusion_pytorch_model.safetensors .*"
                                                   r"download interrupted"):
        hub.resolve_snapshot(REPO)
    os.remove(blob + ".incomplete")
    with pytest.raises(svdc.CheckpointError, match="blob missing"):
        svdc.UNet.from_pretrained(REPO)


def test_partial_snapshot(cache):
    root, snapshot = cache
    os.remove(os.path.join(snapshot, "vae", "diffusion_pytorch_model.safetensors"))
    with pytest.raises(svdc.CheckpointError, match=r"incomplete: missing vae/ \(safetensors weights\)"):
        hub.resolve_snapshot(REPO)
    assert svdc.UNet.from_pretrained(REPO).in_channels == 8  # the components present still load on their own
    with pytest.raises(svdc.CheckpointError, match=r"missing unet/ \(fp16 safetensors weights\)"):
        hub.resolve_snapshot(REPO, variant="fp16", components=("unet",))


def test_bad_arguments(cache):
    with pytest.raises(ValueError, match="repo_id"):
        hub.resolve_snapshot("not an id")
    with pytest.raises(ValueError, match="revision"):
        hub.resolve_snapshot(REPO, revision="../../etc")
    with pytest.raises(TypeError, match="local_files_only"):
        hub.resolve_snapshot(REPO, local_files_only="yes")


@pytest.fixture
def fake_huggingface_hub(monkeypatch, tiny_folder):
    """A stand-in huggingface_hub whose snapshot_download records its arguments and fills the cache."""
    calls = []

    def snapshot_download(repo_id, revision=None, cache_dir=None, allow_patterns=None):
        calls.append(dict(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns))
        return add_snapshot(hub.cache_root(cache_dir), repo_id, tiny_folder, revision=revision)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    return calls


def test_download_only_when_asked(cache, fake_huggingface_hub, monkeypatch):
    repo = "stabilityai/not-yet-cached"
    with pytest.raises(svdc.CheckpointError, match="not in the local"):
        hub.resolve_snapshot(repo)  # the default never touches the network
    assert fake_huggingface_hub == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(svdc.CheckpointError, match="HF_HUB_OFFLINE"):
        hub.resolve_snapshot(repo, local_files_only=False)
    assert fake_huggingface_hub == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    snapshot = hub.resolve_snapshot(repo, local_files_only=False)
    assert os.path.isdir(snapshot) and len(fake_huggingface_hub) == 1
    patterns = fake_huggingface_hub[0]["allow_patterns"]
    assert patterns == hub.download_patterns() and "model_index.json" in patterns
    assert not any(p.endswith((".bin", ".ckpt", "*")) for p in patterns)  # safetensors of the components only
    assert hub.resolve_snapshot(repo, local_files_only=False) == snapshot  # cached now: no second download
    assert len(fake_huggingface_hub) == 1


def test_download_patterns_match_diffusers_file_names():
    from fnmatch import fnmatch

    fp32 = hub.download_patterns()
    fp16 = hub.download_patterns("fp16")
    wanted32 = ["unet/diffusion_pytorch_model.safetensors", "image_encoder/model.safetensors",
                "vae/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/config.json",
                "unet/diffusion_pytorch_model.safetensors.index.json", "scheduler/scheduler_config.json"]
    wanted16 = ["unet/diffusion_pytorch_model.fp16.safetensors", "image_encoder/model.fp16.safetensors",
                "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
                "vae/diffusion_pytorch_model.fp16-00001-of-00002.safetensors"]
    unwanted = ["unet/diffusion_pytorch_model.bin", "svd_xt.safetensors", "text_encoder/model.safetensors"]
    assert all(any(fnmatch(f, p) for p in fp32) for f in wanted32)
    assert all(any(fnmatch(f, p) for p in fp16) for f in wanted16)
    assert not any(fnmatch(f, p) for f in wanted16 for p in fp32 if f.endswith(".safetensors"))
    assert not any(fnmatch(f, p) for f in unwanted for p in fp32 + fp16)


def test_native_pipeline_takes_hub_ids(cache):
    pipe = svdc.ImageToVideo.from_pretrained(REPO, device="cpu")
    assert pipe.default_num_frames == tiny.UNET_CONFIG["num_frames"]
