"""The robustness suite: adversarial inputs across model inputs, pipeline arguments, images, checkpoints, outputs,
configs, process-level behaviour and the CLI. Each probe runs in a forked child (timeout, address-space limit) and
must end as a typed error or a correct result: never a crash, a hang, an untyped exception, a wrong result or a
half-written file (tests/robustness/harness.py)."""
from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

import svdc
from svdc import tiny, weights
from tests.robustness.harness import DEFECTS, VERDICTS, Probe, run_probe
from tests.robustness.tiny_folder import write_tiny_pipeline

TMP = tempfile.mkdtemp(prefix="svdc-robustness-")
atexit.register(shutil.rmtree, TMP, True)
S: dict = {}  # the tiny models, built once in the parent so every forked probe shares them
FAST = dict(num_inference_steps=1, num_frames=2, height=64, width=64, progress=False, seed=0)
IMG = tiny.test_image(64, 64)


def _state():
    if not S:
        S["unet"], S["vae"], S["enc"] = tiny.tiny_components(device="cpu")
        S["pipe"] = svdc.ImageToVideo.from_components(S["unet"], S["vae"], S["enc"])
        S["folder"] = write_tiny_pipeline(os.path.join(TMP, "pipe"))
    return S


def path(*parts) -> str:
    p = os.path.join(TMP, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def is_video(v) -> bool:
    f = v.frames
    return f.dtype == np.uint8 and f.shape == (2, 64, 64, 3) and f.min() != f.max()


# --- model inputs --------------------------------------------------------------------------------------------------
def unet_call(sample_shape=(1, 2, 8, 8, 8), t=(1.0,), ctx_shape=(1, 1, 32), ids_shape=(1, 3), dtype=np.float32,
              fill=None):
    s = _state()["unet"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(sample_shape).astype(dtype)
    if fill is not None:
        x.flat[0] = fill
    return s(x, np.asarray(t, np.float32), rng.standard_normal(ctx_shape).astype(np.float32),
             np.zeros(ids_shape, np.float32))


def vae_decode(shape=(2, 4, 8, 8), num_frames=2, chunk=None, dtype=np.float32):
    z = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    return _state()["vae"].decode(z, num_frames=num_frames, chunk_size=chunk)


def finite_shape(shape):
    return lambda r: r.shape == shape and np.isfinite(r).all()


MODEL = [
    Probe("model", "unet wrong channels", lambda: unet_call((1, 2, 5, 8, 8))),
    Probe("model", "unet 4-d sample", lambda: unet_call((2, 8, 8, 8))),
    Probe("model", "unet NaN sample", lambda: unet_call(fill=np.nan)),
    Probe("model", "unet Inf sample", lambda: unet_call(fill=np.inf)),
    Probe("model", "unet int sample (converted)", lambda: unet_call(dtype=np.int32), finite_shape((1, 2, 4, 8, 8)),
          allowed=(TypeError,)),
    Probe("model", "unet float64 sample", lambda: unet_call(dtype=np.float64), finite_shape((1, 2, 4, 8, 8))),
    Probe("model", "unet context width", lambda: unet_call(ctx_shape=(1, 1, 31))),
    Probe("model", "unet ids width", lambda: unet_call(ids_shape=(1, 4))),
    Probe("model", "unet timestep count", lambda: unet_call(t=(1.0, 2.0, 3.0))),
    Probe("model", "unet odd latent size", lambda: unet_call((1, 2, 8, 7, 9)), finite_shape((1, 2, 4, 7, 9)),
          allowed=(ValueError,)),
    Probe("model", "vae frames do not divide", lambda: vae_decode((3, 4, 8, 8), 2)),
    Probe("model", "vae zero chunk", lambda: vae_decode(chunk=0)),
    Probe("model", "vae bool num_frames", lambda: vae_decode(num_frames=True)),
    Probe("model", "vae float16 latents", lambda: vae_decode(dtype=np.float16), finite_shape((2, 3, 64, 64))),
    Probe("model", "vae encode H not multiple", lambda: _state()["vae"].encode(np.zeros((1, 3, 60, 64), np.float32))),
    Probe("model", "vae encode object array", lambda: _state()["vae"].encode(np.array([[None]]))),
    Probe("model", "encoder wrong size", lambda: _state()["enc"](np.zeros((1, 3, 100, 100), np.float32))),
    Probe("model", "encoder empty batch", lambda: _state()["enc"](np.zeros((0, 3, 224, 224), np.float32))),
]


# --- pipeline arguments --------------------------------------------------------------------------------------------
def gen(image=None, **kw):
    return _state()["pipe"](IMG if image is None else image, **dict(FAST, **kw))


def raising_callback(step, total, latents):
    raise ValueError("stop requested by the callback")


PIPELINE = [
    Probe("pipeline", "valid tiny run", lambda: gen(), is_video),
    Probe("pipeline", "steps 0", lambda: gen(num_inference_steps=0)),
    Probe("pipeline", "steps float", lambda: gen(num_inference_steps=1.5)),
    Probe("pipeline", "frames 0", lambda: gen(num_frames=0)),
    Probe("pipeline", "height 63", lambda: gen(height=63)),
    Probe("pipeline", "width negative", lambda: gen(width=-64)),
    Probe("pipeline", "fps 0", lambda: gen(fps=0)),
    Probe("pipeline", "fps NaN", lambda: gen(fps=float("nan"))),
    Probe("pipeline", "motion float32 overflow", lambda: gen(motion_bucket_id=1e39)),
    Probe("pipeline", "noise aug negative", lambda: gen(noise_aug_strength=-0.1)),
    Probe("pipeline", "guidance min > max", lambda: gen(min_guidance_scale=3, max_guidance_scale=1)),
    Probe("pipeline", "guidance overflow", lambda: gen(max_guidance_scale=1e39)),
    Probe("pipeline", "seed string", lambda: gen(seed="abc")),
    Probe("pipeline", "latents wrong shape", lambda: gen(latents=np.zeros((1, 2, 4, 7, 8), np.float32))),
    Probe("pipeline", "latents NaN", lambda: gen(latents=np.full((1, 2, 4, 8, 8), np.nan, np.float32))),
    Probe("pipeline", "callback not callable", lambda: gen(callback=3)),
    Probe("pipeline", "callback raises", lambda: gen(callback=raising_callback)),
    Probe("pipeline", "decode chunk 0", lambda: gen(decode_chunk_size=0)),
    Probe("pipeline", "height 1e6 x width 1e6", lambda: gen(height=10**6 * 8, width=10**6 * 8)),
    Probe("pipeline", "frames 1e8", lambda: gen(num_frames=10**8)),
    Probe("pipeline", "empty image list", lambda: gen(image=[])),
    Probe("pipeline", "preset unknown", lambda: svdc.ImageToVideo.from_pretrained(_state()["folder"], preset="x")),
]


# --- images --------------------------------------------------------------------------------------------------------
def image_file(name, make):
    p = path("images", name)
    if not os.path.exists(p):
        make(p)
    return p


def save_pil(im, **kw):
    return lambda p: im.save(p, **kw)


def write_bytes(data):
    def make(p):
        with open(p, "wb") as f:
            f.write(data)
    return make


def truncated_png(p):
    Image.fromarray(IMG).save(p)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)


def exif_jpeg(p):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(p, exif=exif)


def load(p):
    return svdc.image.load_image(p)


def bomb():
    p = image_file("bomb.png", save_pil(Image.new("RGB", (300, 300))))
    Image.MAX_IMAGE_PIXELS = 1000  # in the child only
    return load(p)


def pa_image():
    px = np.zeros((8, 8, 2), np.uint8)
    px[..., 0] = 1
    px[4:, :, 1] = 255
    im = Image.frombytes("PA", (8, 8), px.tobytes())
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return np.asarray(load(im))


def clip_pixels(shape):
    return svdc.image.clip_preprocess(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))


IMAGES = [
    Probe("image", "missing file", lambda: load(path("images", "nope.png"))),
    Probe("image", "a folder", lambda: load(TMP)),
    Probe("image", "a FIFO", lambda: load(image_file("fifo.png", os.mkfifo))),
    Probe("image", "empty file", lambda: load(image_file("empty.png", write_bytes(b"")))),
    Probe("image", "text named png", lambda: load(image_file("text.png", write_bytes(b"hello")))),
    Probe("image", "truncated png", lambda: load(image_file("trunc.png", truncated_png))),
    Probe("image", "decompression bomb", bomb),
    Probe("image", "EXIF rotated", lambda: load(image_file("exif.jpg", exif_jpeg)).size, lambda s: s == (20, 40)),
    Probe("image", "16-bit png", lambda: np.asarray(load(image_file("16.png", save_pil(Image.fromarray(
        np.full((8, 8), 32896, np.uint16)))))), lambda a: (a == 128).all()),
    Probe("image", "PA on white", pa_image, lambda a: (a[:4] == 255).all() and (a[4:] == [255, 0, 0]).all()),
    Probe("image", "RGBA on white", lambda: np.asarray(load(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))),
          lambda a: (a == 255).all()),
    Probe("image", "float out of range", lambda: load(np.full((8, 8, 3), 2.0))),
    Probe("image", "NaN array", lambda: load(np.full((8, 8, 3), np.nan))),
    Probe("image", "5 channels", lambda: load(np.zeros((8, 8, 5), np.uint8))),
    Probe("image", "RGBA array on white", lambda: np.asarray(load(np.zeros((8, 8, 4), np.uint8))),
          lambda a: (a == 255).all()),
    Probe("image", "2-d array", lambda: load(np.zeros((8, 8), np.uint8))),
    Probe("image", "1x1 pixel clip", lambda: clip_pixels((1, 1, 3)), allowed=(ValueError,)),
    Probe("image", "20000x20 strip clip", lambda: clip_pixels((20, 20000, 3)), finite_shape((1, 3, 224, 224))),
    Probe("image", "24 MP photo clip", lambda: clip_pixels((4000, 6000, 3)), finite_shape((1, 3, 224, 224))),
    Probe("image", "1x1 image through the pipeline", lambda: gen(image=np.zeros((1, 1, 3), np.uint8)),
          is_video, allowed=(ValueError,)),
]


# --- checkpoints ---------------------------------------------------------------------------------------------------
def vae_folder(name, mutate=None, raw=None):
    d = path("ckpt", name, "x")[:-2]
    if not os.path.exists(os.path.join(d, "config.json")):
        w = tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1)
        if mutate:
            mutate(w)
        f = os.path.join(d, "diffusion_pytorch_model.safetensors")
        weights.save_file(w, f)
        if raw:
            raw(f)
        with open(os.path.join(d, "config.json"), "w") as fh:
            json.dump(dict(tiny.VAE_CONFIG, _class_name="AutoencoderKLTemporalDecoder"), fh)
    return d


def set_nan(w):
    k = sorted(w)[5]
    w[k][...] = np.nan


def truncate_half(f):
    with open(f, "r+b") as fh:
        fh.truncate(os.path.getsize(f) // 2)


def header_huge(f):
    with open(f, "r+b") as fh:
        fh.write((2**62).to_bytes(8, "little"))


def load_vae(name, mutate=None, raw=None):
    return svdc.VAE.from_pretrained(vae_folder(name, mutate, raw), device="cpu")


def truncated_while_open():
    f = os.path.join(vae_folder("ok"), "diffusion_pytorch_model.safetensors")
    copy = path("ckpt", "trunc-open.safetensors")
    shutil.copy(f, copy)
    sf = weights.SafetensorsFile(copy)
    os.truncate(copy, 200)
    return [float(np.sum(sf[k])) for k in sf.keys()]


def big_endian():
    w = tiny.random_weights(svdc.VAE.weight_shapes(tiny.VAE_CONFIG), 1)
    z = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    a = svdc.VAE.from_config(tiny.VAE_CONFIG, w, device="cpu").decode(z, 2)
    b = svdc.VAE.from_config(tiny.VAE_CONFIG, {k: v.astype(">f4") for k, v in w.items()}, device="cpu").decode(z, 2)
    return a, b


CHECKPOINTS = [
    Probe("checkpoint", "valid folder", lambda: load_vae("ok").num_parameters, lambda n: n > 0),
    Probe("checkpoint", "NaN tensor", lambda: load_vae("nan", set_nan)),
    Probe("checkpoint", "missing tensor", lambda: load_vae("missing", lambda w: w.pop(sorted(w)[0]))),
    Probe("checkpoint", "extra tensor", lambda: load_vae("extra", lambda w: w.update(junk=np.zeros(3, np.float32)))),
    Probe("checkpoint", "wrong shape", lambda: load_vae("shape", lambda w: w.update(
        {sorted(w)[0]: np.zeros((1, 2), np.float32)}))),
    Probe("checkpoint", "int tensor", lambda: load_vae("int", lambda w: w.update(
        {k: v.astype(np.int32) for k, v in list(w.items())[:1]}))),
    Probe("checkpoint", "truncated file", lambda: load_vae("trunc", raw=truncate_half)),
    Probe("checkpoint", "huge header length", lambda: load_vae("hdr", raw=header_huge)),
    Probe("checkpoint", "truncated while open", truncated_while_open),
    Probe("checkpoint", "big-endian weights", big_endian, lambda ab: np.array_equal(ab[0], ab[1])),
    Probe("checkpoint", "pickle file", lambda: svdc.VAE.from_pretrained(
        image_file("model.bin", write_bytes(b"\x80\x04junk")), device="cpu")),
    Probe("checkpoint", "garbage single file", lambda: svdc.UNet.from_pretrained(
        image_file("garbage.safetensors", write_bytes(os.urandom(4096))), device="cpu")),
    Probe("checkpoint", "F64 beyond float32", lambda: weights.to_float32(np.array([1e300]), "F64")),
]


# --- outputs -------------------------------------------------------------------------------------------------------
def video(n=2, h=16, w=16):
    return svdc.Video(np.random.default_rng(n).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


def out_dir(name):
    d = path("out", name, "x")[:-2]
    return d


def existing(name, content=b"old video"):
    p = os.path.join(out_dir(name), "target" + os.path.splitext(name)[1])
    with open(p, "wb") as f:
        f.write(content)
    return p


def mp4_over_limit():
    import resource

    p = os.path.join(out_dir("fsize"), "target.mp4")
    resource.setrlimit(resource.RLIMIT_FSIZE, (10000, 10000))
    return video(6, 128, 128).save(p)


def over_fifo():
    p = os.path.join(out_dir("fifo"), "pipe.mp4")
    if not os.path.exists(p):
        os.mkfifo(p)
    return video().save(p)


def over_dev_null():
    p = os.path.join(out_dir("null"), "null.gif")
    if not os.path.lexists(p):
        os.symlink("/dev/null", p)
    return video().save(p)


def folder_with_longer_video():
    d = os.path.join(out_dir("frames"), "f")
    video(5).save(d)
    video(2).save(d)
    return sorted(os.listdir(d))


def private_file():
    p = existing("private.webp")
    os.chmod(p, 0o600)
    video().save(p)
    return os.stat(p).st_mode & 0o777


def through_symlink():
    d = out_dir("link")
    real = os.path.join(d, "real.gif")
    link = os.path.join(d, "link.gif")
    with open(real, "wb") as f:
        f.write(b"old")
    if not os.path.lexists(link):
        os.symlink(real, link)
    video().save(link)
    return os.path.islink(link), os.path.getsize(real)


def keep(name):
    return os.path.join(out_dir(name), "target" + os.path.splitext(name)[1])


existing("refused.mp4")
existing("fsize.mp4")
OUTPUTS = [
    Probe("output", "mp4 refused frame size", lambda: svdc.Video(np.zeros((1, 2, 40000, 3), np.uint8)).save(
        keep("refused.mp4")), folder=out_dir("refused.mp4"), keep=keep("refused.mp4")),
    Probe("output", "mp4 file-size limit", mp4_over_limit, folder=out_dir("fsize.mp4"), keep=keep("fsize.mp4")),
    Probe("output", "over a FIFO", over_fifo, folder=out_dir("fifo")),
    Probe("output", "over /dev/null", over_dev_null, folder=out_dir("null")),
    Probe("output", "folder holding a longer video", folder_with_longer_video,
          lambda names: names == ["frame_00000.png", "frame_00001.png"]),
    Probe("output", "private file stays private", private_file, lambda mode: mode == 0o600),
    Probe("output", "through a symlink", through_symlink, lambda r: r[0] and r[1] > 3),
    Probe("output", "unknown extension", lambda: video().save(os.path.join(out_dir("ext"), "x.avi"))),
    Probe("output", "pattern naming one file twice", lambda: video().save(os.path.join(out_dir("pat"), "a%0.0s.png"))),
    Probe("output", "file where a folder is wanted", lambda: video().save(existing("notdir") + "/")),
    Probe("output", "export_to_video NaN frames", lambda: svdc.export_to_video(
        [np.full((8, 8, 3), np.nan)], os.path.join(out_dir("exp"), "e.mp4")), folder=out_dir("exp")),
]


# --- configs -------------------------------------------------------------------------------------------------------
def folder_with(name, component_file, content):
    d = write_tiny_pipeline(path("cfg", name, "x")[:-2]) if not os.path.exists(path("cfg", name, "model_index.json")) \
        else path("cfg", name, "x")[:-2]
    os.makedirs(os.path.dirname(os.path.join(d, component_file)), exist_ok=True)
    with open(os.path.join(d, component_file), "w") as f:
        f.write(content)
    return d


def pipe_from(name, component_file, content):
    return svdc.ImageToVideo.from_pretrained(folder_with(name, component_file, content), device="cpu")


CONFIGS = [
    Probe("config", "unet int beyond int32", lambda: svdc.UNet.weight_shapes(dict(tiny.UNET_CONFIG,
                                                                                num_attention_heads=2**31))),
    Probe("config", "unet channels string", lambda: svdc.UNet.weight_shapes(dict(tiny.UNET_CONFIG,
                                                                               in_channels="8x"))),
    Probe("config", "vae latent 0", lambda: svdc.VAE.weight_shapes(dict(tiny.VAE_CONFIG, latent_channels=0))),
    Probe("config", "encoder heads 0", lambda: svdc.ImageEncoder.weight_shapes(dict(tiny.IMAGE_ENCODER_CONFIG,
                                                                                  num_attention_heads=0))),
    Probe("config", "scheduler 1e400", lambda: pipe_from("s1", "scheduler/scheduler_config.json",
                                                         '{"sigma_max": 1e400}')),
    Probe("config", "config.json broken", lambda: pipe_from("c1", "unet/config.json", "{broken")),
    Probe("config", "config.json a list", lambda: pipe_from("c2", "vae/config.json", "[1, 2]")),
    Probe("config", "model_index broken", lambda: pipe_from("c3", "model_index.json", "{")),
    Probe("config", "preprocessor broken", lambda: svdc.image.read_clip_normalisation(
        folder_with("p1", "image_encoder/preprocessor_config.json", "{bad") + "/image_encoder")),
]


# --- process level -------------------------------------------------------------------------------------------------
_FORK_POOL_SCRIPT = """
import multiprocessing as mp, sys
{torch_import}
import numpy as np
sys.path[:0] = [{root!r}, {here!r}]
import svdc
from test_robustness import vae_decode

def torch_sum():
    return float((torch.ones(2_000_000) * 2 + 1).sum()) if {with_torch} else 0.0

def work(_):
    return vae_decode(), torch_sum()

if __name__ == "__main__":
    if {with_torch}:
        torch.set_num_threads(2)
    svdc._C.set_num_threads(2)
    expected = vae_decode(), torch_sum()  # the parent's OpenMP pool now has 2 threads
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map_async(work, range(2)).get(timeout=40)
    print(all(np.allclose(g[0], expected[0], atol=1e-5) and g[1] == expected[1] for g in got))
"""


def fork_pool(with_torch=False):
    """A fresh interpreter runs svdc (and torch's elementwise ops, imported first, when `with_torch`) on 2 threads,
    then a fork-start Pool runs the same in its children. torch's wheels ship their own libgomp.so.1, the same
    soname as the GNU OpenMP svdc links, so one runtime serves both and svdc's fork handler (one thread in the
    child) keeps torch's parallel regions from hanging too. (Fresh, because the probe itself is a forked child, and
    a fork child that asks for 2 OpenMP threads again is the documented unsupported case.)"""
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    script = _FORK_POOL_SCRIPT.format(root=os.path.dirname(os.path.dirname(here)), here=here, with_torch=with_torch,
                                      torch_import="import torch" if with_torch else "")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=55)
    return out.returncode == 0 and out.stdout.strip().endswith("True")


def threads_share_a_model():
    import concurrent.futures as cf

    expected = vae_decode()
    with cf.ThreadPoolExecutor(3) as ex:
        got = list(ex.map(lambda _: vae_decode(), range(3)))
    # in a forked child the calling thread runs OpenMP on 1 thread, new threads on the default count: the summation
    # order may differ, so equal to float32 rounding rather than bit for bit
    return all(np.allclose(g, expected, rtol=1e-5, atol=1e-5) for g in got)


PROCESS = [
    Probe("process", "fork pool after a model call", fork_pool, lambda ok: ok is True),
    Probe("process", "fork pool after torch and svdc threads", lambda: fork_pool(with_torch=True),
          lambda ok: ok is True),
    Probe("process", "threads share a model", threads_share_a_model, lambda ok: ok is True),
]


# --- CLI -----------------------------------------------------------------------------------------------------------
def cli(*argv, patch=None):
    import contextlib
    import io

    from svdc.cli import main

    if patch:
        patch()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's own usage errors
            code = e.code
    return code, err.getvalue()


def exit_2(r):
    code, err = r
    return code == 2 and "error" in err and "Traceback" not in err


def third_party_failure():
    def boom(*a, **k):
        import struct

        raise struct.error("unpack requires a buffer of 4 bytes")

    svdc.pipelines.image_to_video.ImageToVideo.__call__ = boom


IN = image_file("in.png", save_pil(Image.fromarray(IMG)))
CLI = [
    Probe("cli", "missing image", lambda: cli("img2vid", path("none.png"), "--model", "tiny", "-o", path("c.mp4")),
          exit_2),
    Probe("cli", "missing model", lambda: cli("img2vid", IN, "--model", path("nomodel"), "-o", path("c.mp4")), exit_2),
    Probe("cli", "bad suffix", lambda: cli("demo", "-o", path("c.avi"), "--steps", "1", "--frames", "2", "-q"),
          exit_2),
    Probe("cli", "height 63", lambda: cli("demo", "-o", path("c.mp4"), "--height", "63", "-q"), exit_2),
    Probe("cli", "height 1e6", lambda: cli("demo", "-o", path("c.mp4"), "--height", "8000000", "--width", "8000000",
                                           "-q"), exit_2),
    Probe("cli", "steps not a number", lambda: cli("demo", "-o", path("c.mp4"), "--steps", "abc"), exit_2),
    Probe("cli", "third-party exception", lambda: cli("demo", "-o", path("c.mp4"), "-q", patch=third_party_failure),
          exit_2),
    Probe("cli", "bomb image", lambda: cli("img2vid", image_file("bomb.png", save_pil(Image.new("RGB", (300, 300)))),
                                           "--model", "tiny", "-o", path("c.mp4"), "-q",
                                           patch=lambda: setattr(Image, "MAX_IMAGE_PIXELS", 1000)), exit_2),
]

# --- new workflows: orbits, batch manifests, the tokenizer, curation tables -----------------------------------------
def manifest(name, text):
    p = path("manifests", name)
    with open(p, "w") as f:
        f.write(text)
    from svdc.runner.manifest import read_manifest

    return read_manifest(p)


def tokenizer_files(vocab_text, merges_text):
    from svdc.tokenizer import CLIPTokenizer

    d = path("tok", "x")[:-2]
    with open(os.path.join(d, "vocab.json"), "w") as f:
        f.write(vocab_text)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write(merges_text)
    return CLIPTokenizer.from_pretrained(d)


def orbit(*args, **kwargs):
    from svdc.orbits import build_orbit

    return build_orbit(*args, **kwargs)


WORKFLOWS = [
    Probe("workflow", "orbit unknown name", lambda: orbit("spiral")),
    Probe("workflow", "orbit NaN elevation", lambda: orbit("static", elevations=float("nan"))),
    Probe("workflow", "orbit 20 azimuths", lambda: orbit("static", azimuths=list(range(20)))),
    Probe("workflow", "orbit string elevation", lambda: orbit("sine", elevations="high")),
    Probe("workflow", "orbit static default", lambda: orbit("static"),
          lambda r: len(r) == 2 and np.shape(r[0]) == np.shape(r[1]) and np.isfinite(r[0]).all()),
    Probe("workflow", "manifest empty csv", lambda: manifest("empty.csv", "")),
    Probe("workflow", "manifest ragged csv", lambda: manifest("ragged.csv", "image,seed\na.png,1,extra\n")),
    Probe("workflow", "manifest broken jsonl", lambda: manifest("broken.jsonl", '{"image": "a.png"\n')),
    Probe("workflow", "manifest jsonl not objects", lambda: manifest("list.jsonl", "[1, 2]\n")),
    Probe("workflow", "manifest unknown suffix", lambda: manifest("jobs.txt", "x")),
    Probe("workflow", "manifest bad seed", lambda: manifest("seed.jsonl", '{"image": "a.png", "seed": "abc"}\n')),
    Probe("workflow", "manifest duplicate ids", lambda: manifest(
        "dup.jsonl", '{"id": "a", "image": "a.png"}\n{"id": "a", "image": "b.png"}\n')),
    Probe("workflow", "tokenizer broken vocab", lambda: tokenizer_files("{", "#version: 0.2\n")),
    Probe("workflow", "tokenizer vocab a list", lambda: tokenizer_files("[]", "#version: 0.2\n")),
    Probe("workflow", "curation table missing", lambda: __import__("svdc.curation.manifest", fromlist=["x"])
          .read_table(path("curation-none", "x")[:-2], "clips")),
]


# --- text prompts: TextToImage and TextToVideo ------------------------------------------------------------------
def text_state():
    s = _state()
    if "t2i" not in s:
        s["t2i"] = tiny.tiny_sd_pipeline(path("sd", "x")[:-2])
        s["t2v"] = svdc.TextToVideo.from_components(s["t2i"], s["pipe"])
    return s


TEXT_FAST = dict(num_inference_steps=1, height=64, width=64, progress=False, seed=0)


def txt2img(prompt="a red fox", **kw):
    return text_state()["t2i"](prompt, **dict(TEXT_FAST, **kw))


def txt2vid(prompt="a red fox", **kw):
    return text_state()["t2v"](prompt, **dict(dict(TEXT_FAST, video_num_inference_steps=1, num_frames=2), **kw))


def is_image(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == (64, 64, 3) and a.min() != a.max()


class StageOneRan(Exception):
    pass


def stop_at_stage_one(stage, *args):
    raise StageOneRan(f"stage {stage!r} ran before the arguments were checked")


TEXT = [
    Probe("text", "txt2img valid tiny run", lambda: txt2img(), is_image),
    Probe("text", "txt2img 100k-word prompt (truncated)", lambda: txt2img("fox " * 100000), is_image),
    Probe("text", "txt2img guidance NaN", lambda: txt2img(guidance_scale=float("nan"))),
    Probe("text", "txt2img guidance inf", lambda: txt2img(guidance_scale=float("inf"))),
    Probe("text", "txt2img guidance float32 overflow", lambda: txt2img(guidance_scale=1e39)),
    Probe("text", "txt2img guidance overflowing the sampling", lambda: txt2img(num_inference_steps=2,
                                                                                guidance_scale=3e38)),
    Probe("text", "txt2img guidance negative", lambda: txt2img(guidance_scale=-1.0)),
    Probe("text", "txt2img guidance string", lambda: txt2img(guidance_scale="7.5")),
    Probe("text", "txt2img 8e6 x 8e6", lambda: txt2img(height=8 * 10**6, width=8 * 10**6)),
    Probe("text", "txt2img height 63", lambda: txt2img(height=63)),
    Probe("text", "txt2img steps 1e9", lambda: txt2img(num_inference_steps=10**9)),
    Probe("text", "txt2img prompt empty list", lambda: txt2img([])),
    Probe("text", "txt2img prompt None", lambda: txt2img(None)),
    Probe("text", "txt2img prompt list with an int", lambda: txt2img(["a fox", 3])),
    Probe("text", "txt2img negative list too short", lambda: txt2img(["a", "b"], negative_prompt=["x"])),
    Probe("text", "txt2img negative list of None", lambda: txt2img("a", negative_prompt=[None])),
    Probe("text", "txt2img negative an int", lambda: txt2img("a", negative_prompt=3)),
    Probe("text", "txt2img latents NaN", lambda: txt2img(latents=np.full((1, 4, 8, 8), np.nan))),
    Probe("text", "txt2vid valid tiny run", lambda: txt2vid().video, is_video),
    Probe("text", "txt2vid video steps 0 before stage 1", lambda: txt2vid(video_num_inference_steps=0,
                                                                          callback=stop_at_stage_one)),
    Probe("text", "txt2vid frames 0 before stage 1", lambda: txt2vid(num_frames=0, callback=stop_at_stage_one)),
    Probe("text", "txt2vid guidance NaN", lambda: txt2vid(guidance_scale=float("nan"))),
    Probe("text", "txt2vid max guidance overflow", lambda: txt2vid(max_guidance_scale=1e39,
                                                                   callback=stop_at_stage_one)),
    Probe("text", "txt2vid 8e6 x 8e6", lambda: txt2vid(height=8 * 10**6, width=8 * 10**6)),
    Probe("text", "txt2vid negative list too short", lambda: txt2vid(["a", "b"], negative_prompt=["x"])),
    Probe("text", "txt2vid seed negative", lambda: txt2vid(seed=-1)),
]


# --- orbits: MultiView's camera arguments -----------------------------------------------------------------------
def multiview(kind="sv3d_p", **kw):
    s = _state()
    if kind not in s:
        s[kind] = tiny.tiny_multiview(kind, device="cpu")
    return s[kind](tiny.test_object(), **dict(num_inference_steps=1, progress=False, seed=0, **kw))


def is_orbit(o) -> bool:
    return len(o) == 21 and o.frames.shape == (21, 64, 64, 3) and np.isfinite(o.cameras).all()


ORBITS = [
    Probe("orbit", "static tiny run", lambda: multiview(), is_orbit),
    Probe("orbit", "21 elevations and azimuths", lambda: multiview(elevations=list(range(21)),
                                                                   azimuths=list(range(0, 420, 20))), is_orbit),
    Probe("orbit", "5 elevations", lambda: multiview(elevations=[0, 10, 20, 30, 40])),
    Probe("orbit", "20 azimuths", lambda: multiview(azimuths=list(range(20)))),
    Probe("orbit", "NaN azimuths", lambda: multiview(azimuths=[float("nan")] * 21)),
    Probe("orbit", "elevation 100", lambda: multiview(elevations=100)),
    Probe("orbit", "elevation 1e39", lambda: multiview(elevations=1e39)),
    Probe("orbit", "elevations 2-d", lambda: multiview(elevations=np.zeros((21, 2)))),
    Probe("orbit", "azimuths strings", lambda: multiview(azimuths=["a"] * 21)),
    Probe("orbit", "azimuths None entries", lambda: multiview(azimuths=[None] * 21)),
    Probe("orbit", "orbit name an int", lambda: multiview(orbit=3)),
    Probe("orbit", "sv3d_u with azimuths", lambda: multiview("sv3d_u", azimuths=list(range(21)))),
    Probe("orbit", "latents of 20 frames", lambda: multiview(latents=np.zeros((1, 20, 4, 8, 8), np.float32))),
    Probe("orbit", "image_frame_ratio 0", lambda: multiview(image_frame_ratio=0)),
    Probe("orbit", "size 8e5", lambda: svdc.MultiView.from_components(
        *tiny.tiny_multiview_components(device="cpu"), size=8 * 10**5)(tiny.test_object(), num_inference_steps=1,
                                                                        progress=False)),
    Probe("orbit", "save into a file path", lambda: svdc.Orbit(np.zeros((21, 8, 8, 3), np.uint8), 0.0, np.zeros(21))
          .save(existing("orbit.png")), folder=out_dir("orbit.png")),
]


# --- curation manifests -------------------------------------------------------------------------------------------
def curation_table(name, filename, data):
    from svdc.curation.manifest import read_table

    d = path("curation", name, "x")[:-2]
    with open(os.path.join(d, filename), "wb") as f:
        f.write(data)
    return read_table(d, filename.split(".")[0])


try:
    import pyarrow as pa
    import pyarrow.parquet as pq  # imported once here, so the forked probes do not each pay for it
except ImportError:  # the parquet probes need it (pip install 'svdc[curation]')
    pa = pq = None


def parquet_bytes(truncate=False):
    import io

    buf = io.BytesIO()
    pq.write_table(pa.table({"clip_id": ["a", "b"], "start": [0.0, 1.0]}), buf)
    data = buf.getvalue()
    return data[: len(data) // 2] if truncate else data


CURATION = [
    Probe("curation", "valid jsonl table", lambda: curation_table("ok", "clips.jsonl", b'{"clip_id": "a"}\n'),
          lambda rows: rows == [{"clip_id": "a"}]),
    Probe("curation", "jsonl broken line", lambda: curation_table("j1", "clips.jsonl", b'{"a": 1}\n{broken\n')),
    Probe("curation", "jsonl a list per line", lambda: curation_table("j2", "clips.jsonl", b"[1, 2]\n")),
    Probe("curation", "jsonl binary", lambda: curation_table("j3", "clips.jsonl", bytes(range(128, 256)))),
    Probe("curation", "parquet garbage", lambda: curation_table("p1", "clips.parquet", os.urandom(512))),
    Probe("curation", "parquet truncated", lambda: curation_table("p2", "clips.parquet", parquet_bytes(True))),
    Probe("curation", "parquet empty file", lambda: curation_table("p3", "clips.parquet", b"")),
    Probe("curation", "unknown table", lambda: curation_table("t1", "shots.jsonl", b"{}\n")),
    Probe("curation", "run with params an int", lambda: __import__("svdc.curation.runner", fromlist=["x"]).run(
        [IN], path("curation-run", "x")[:-2], params=3, progress=False)),
    Probe("curation", "run on no videos", lambda: __import__("svdc.curation.runner", fromlist=["x"]).run(
        [], path("curation-run", "x")[:-2], progress=False)),
]


# --- batch manifests ----------------------------------------------------------------------------------------------
def manifest_bytes(name, data):
    from svdc.runner.manifest import read_manifest

    p = path("manifests", name)
    with open(p, "wb") as f:
        f.write(data)
    return read_manifest(p)


BATCH = [
    Probe("batch", "parquet garbage", lambda: manifest_bytes("g.parquet", os.urandom(512))),
    Probe("batch", "parquet truncated", lambda: manifest_bytes("t.parquet", parquet_bytes(True))),
    Probe("batch", "parquet without an id column", lambda: manifest_bytes("n.parquet", parquet_bytes())),
    Probe("batch", "csv duplicate column", lambda: manifest_bytes("dup.csv", b"id,image,id\na,a.png,b\n")),
    Probe("batch", "csv not UTF-8", lambda: manifest_bytes("latin.csv", b"id,image\na,\xe9.png\n")),
    Probe("batch", "jsonl NaN seed", lambda: manifest_bytes(
        "nan.jsonl", b'{"id": "a", "image": "a.png", "seed": NaN}\n')),
    Probe("batch", "jsonl bool frames", lambda: manifest_bytes(
        "bool.jsonl", b'{"id": "a", "image": "a.png", "num_frames": true}\n')),
    Probe("batch", "jsonl image a list", lambda: manifest_bytes("list.jsonl", b'{"id": "a", "image": ["a.png"]}\n')),
    Probe("batch", "jsonl id with a slash", lambda: manifest_bytes(
        "slash.jsonl", b'{"id": "../a", "image": "a.png"}\n')),
    Probe("batch", "jsonl unknown workflow", lambda: manifest_bytes(
        "wf.jsonl", b'{"id": "a", "image": "a.png", "workflow": "x"}\n')),
    Probe("batch", "valid jsonl", lambda: [j.id for j in manifest_bytes(
        "ok.jsonl", b'{"id": "a", "image": "a.png"}\n{"id": "b", "image": "b.png", "seed": 3}\n')],
          lambda ids: ids == ["a", "b"]),
]

if importlib.util.find_spec("torch") is None:  # the test extra installs torch; without it that case is moot
    PROCESS = [p for p in PROCESS if "torch" not in p.name]
if pq is None:
    CURATION = [p for p in CURATION if "parquet" not in p.name]
    BATCH = [p for p in BATCH if "parquet" not in p.name]

ALL = (WORKFLOWS + TEXT + ORBITS + CURATION + BATCH + MODEL + PIPELINE + IMAGES + CHECKPOINTS + OUTPUTS + CONFIGS
       + PROCESS + CLI)


@pytest.mark.parametrize("probe", ALL, ids=[p.id for p in ALL])
def test_probe(probe):
    _state()
    verdict, detail = run_probe(probe)
    VERDICTS[verdict] += 1
    assert verdict not in DEFECTS, f"{probe.id}: {verdict}: {detail}"
