"""The pipelines' stage release (ImageToVideo(release_stages=True) and the models' release_memory): the same frames on
a first and a second call as with every component kept whole, the packed weights freed and rebuilt, and the
borrowed checkpoint pages dropped from the process (the file's resident pages in /proc/self/smaps)."""
import os

import numpy as np
import pytest

import svdc
from svdc import tiny


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny.save_pipeline(tmp_path_factory.mktemp("release") / "pipe")


def _frames(pipe):
    return pipe(tiny.test_image(), num_inference_steps=3, height=tiny.TINY_HEIGHT, width=tiny.TINY_WIDTH, seed=7,
                progress=False).frames


def _resident_bytes_of(path: str) -> int:
    """The process's resident bytes of every mapping of `path` (Rss lines of /proc/self/smaps)."""
    real = os.path.realpath(path)
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's header line
                inside = len(head) >= 6 and head[-1] == real
            elif inside and line.startswith("Rss:"):
                total += int(head[1]) * 1024
    return total


def test_release_gives_the_same_frames_on_first_and_second_call(folder):
    kept = svdc.ImageToVideo.from_pretrained(folder, device="cpu", release_stages=False)
    released = svdc.ImageToVideo.from_pretrained(folder, device="cpu")
    assert released.release_stages and not kept.release_stages
    want = _frames(kept)
    np.testing.assert_array_equal(_frames(released), want)
    np.testing.assert_array_equal(_frames(released), want)  # after the release/re-map of the first call
    np.testing.assert_array_equal(_frames(kept), want)


def test_release_memory_frees_packed_weights_and_rebuilds_them(folder):
    vae = svdc.VAE.from_pretrained(folder, device="cpu")
    z = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    want = vae.decode(z, num_frames=2)
    packed = vae.packed_weight_bytes
    vae.release_memory()
    assert vae.packed_weight_bytes == 0
    np.testing.assert_array_equal(vae.decode(z, num_frames=2), want)
    assert vae.packed_weight_bytes == packed  # packed again by the call, the same layouts
    vae.release_memory(keep_packed=True)
    assert vae.packed_weight_bytes == packed
    np.testing.assert_array_equal(vae.decode(z, num_frames=2), want)


def test_release_memory_drops_the_borrowed_pages(folder):
    path = os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors")
    unet = svdc.UNet.from_pretrained(folder, device="cpu")
    f = tiny.TINY_FRAMES
    x = np.random.default_rng(1).standard_normal((1, f, unet.in_channels, 8, 8)).astype(np.float32)
    ctx = np.zeros((1, 1, unet.config["cross_attention_dim"]), np.float32)
    ids = np.zeros((1, unet.num_added_ids), np.float32)
    weights = unet.weight_bytes
    assert _resident_bytes_of(path) <= 0.1 * weights  # the load's pages are dropped: the call reads what it needs
    want = unet(x, 1.0, ctx, ids)
    used = _resident_bytes_of(path)
    assert used >= 0.5 * weights  # the borrowed weights the call read: the file's pages
    unet.release_memory(keep_packed=True)
    assert _resident_bytes_of(path) <= 0.1 * weights
    np.testing.assert_array_equal(unet(x, 1.0, ctx, ids), want)  # faulted back in from the page cache
    assert _resident_bytes_of(path) == used


def test_release_stages_must_be_a_bool(folder):
    unet, vae, enc = tiny.tiny_components(device="cpu")
    with pytest.raises(TypeError, match="release_stages"):
        svdc.ImageToVideo.from_components(unet, vae, enc, scheduler_config=tiny.SCHEDULER_CONFIG,
                                          release_stages="yes")
