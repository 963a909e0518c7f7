"""The text-to-image / text-to-video commands of the `svdc` command line: `svdc txt2img PROMPT --model PATH|tiny -o
out.png`, `svdc txt2vid PROMPT --image-model PATH|tiny --video-model PATH|tiny -o out.mp4` and the txt2vid workflow
of `svdc demo` (registered by svdc/cli.py)."""
from __future__ import annotations

import argparse
import contextlib
import os
import tempfile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _check_image_output(path: str, option: str) -> None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{option}: {path!r}: expected an image file name ending in {', '.join(IMAGE_SUFFIXES)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"{option}: {path!r}: {folder!r} is not a writable folder")


def save_image(image, path: str) -> str:
    """Writes an (H, W, 3) uint8 image under a temporary name, then renames it: never a half-written file."""
    from PIL import Image

    from .video import _atomic

    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(os.path.splitext(path)[1].lower(), "PNG")
    return _atomic(path, lambda tmp: Image.fromarray(image).save(tmp, format=fmt))


def _check_model(model: str, option: str) -> str:
    """svdc/cli.py's model check, its message naming `option`."""
    from .cli import _check_model as check

    try:
        return check(model)
    except ValueError as e:
        raise ValueError(str(e).replace("--model", option, 1)) from None


def _image_options(p: argparse.ArgumentParser, steps_flag: str) -> None:
    p.add_argument("prompt", help="the text prompt")
    p.add_argument("--negative-prompt", default=None, help="what to steer away from (default: none)")
    p.add_argument(steps_flag, type=int, default=None, dest="image_steps",
                   help="text-to-image denoising steps (default 50; tiny model: 4)")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)")


@contextlib.contextmanager
def _image_pipeline(model: str, device: str):
    """A TextToImage for a path or 'tiny' (a tiny random SD 2.x model written to a temporary folder)."""
    from . import tiny
    from .pipelines.text_to_image import TextToImage

    if model != "tiny":
        yield TextToImage.from_pretrained(model, device=device)
        return
    print(tiny.RANDOM_WEIGHTS_NOTICE)
    with tempfile.TemporaryDirectory(prefix="svdc-tiny-sd-") as folder:
        yield tiny.tiny_sd_pipeline(folder)


def _cmd_txt2img(args) -> int:
    from .cli import _Stages, _seed

    _check_image_output(args.output, "-o/--output")
    model = _check_model(args.model, "--model")
    stages = _Stages(args.quiet)
    stages.say(f"loading {args.model}")
    seed = _seed(args)
    with _image_pipeline(model, args.device) as pipe:
        if args.scheduler:  # as diffusers: SchedulerClass.from_config(pipe.scheduler.config)
            from . import schedules

            pipe.scheduler = getattr(schedules, args.scheduler).from_config(pipe.scheduler.config)
        steps = args.image_steps if args.image_steps is not None else (4 if model == "tiny" else 50)
        size = (64, 64) if model == "tiny" else pipe.default_size
        stages.say("denoising")
        image = pipe(args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=steps,
                     guidance_scale=args.guidance, height=args.height or size[0], width=args.width or size[1],
                     seed=seed, progress=not args.quiet)
    path = save_image(image, args.output)
    print(f"wrote {path}: {image.shape[1]}x{image.shape[0]} (seed {seed}) in {stages.total():.1f} s")
    return 0


def _run_txt2vid(pipe, args, size, image_steps, video_steps, stages) -> int:
    from .cli import _seed

    seed = _seed(args)
    kwargs = dict(num_frames=args.frames, decode_chunk_size=args.decode_chunk_size,
                  motion_bucket_id=args.motion_bucket_id, noise_aug_strength=args.noise_aug)
    for key, name in (("fps", "fps"), ("min_guidance_scale", "min_guidance"), ("max_guidance_scale", "max_guidance")):
        if getattr(args, name) is not None:
            kwargs[key] = getattr(args, name)
    stages.say("generating")
    out = pipe(args.prompt, negative_prompt=args.negative_prompt, seed=seed, height=args.height or size[0],
               width=args.width or size[1], num_inference_steps=image_steps, guidance_scale=args.guidance,
               video_num_inference_steps=video_steps, progress=not args.quiet, **kwargs)
    stages.say("writing")
    if args.image_output:
        save_image(out.image, args.image_output)
    path = out.video.save(args.output)
    v = out.video
    print(f"wrote {path}: {v.num_frames} frames, {v.width}x{v.height}, {v.fps:g} fps (seed {seed}: image seed "
          f"{out.image_seed}, video seed {out.video_seed}) in {stages.total():.1f} s")
    return 0


@contextlib.contextmanager
def _tiny_text_to_video(device: str):
    from . import tiny
    from .pipelines.text_to_video import TextToVideo

    print(tiny.RANDOM_WEIGHTS_NOTICE)
    with tempfile.TemporaryDirectory(prefix="svdc-tiny-sd-") as folder:
        yield TextToVideo.from_components(tiny.tiny_sd_pipeline(folder), tiny.tiny_pipeline(device=device))


def _cmd_txt2vid(args) -> int:
    from . import tiny
    from .cli import _Stages, _check_output
    from .pipelines.text_to_video import TextToVideo

    _check_output(args.output)
    if args.image_output:
        _check_image_output(args.image_output, "--image-output")
    image_model = _check_model(args.image_model, "--image-model")
    video_model = _check_model(args.video_model, "--video-model")
    if (image_model == "tiny") != (video_model == "tiny"):
        raise ValueError("--image-model/--video-model: 'tiny' goes with 'tiny' (the tiny models' latent sizes "
                         "match only each other)")
    stages = _Stages(args.quiet)
    if image_model == "tiny":
        with _tiny_text_to_video(args.device) as pipe:
            return _run_txt2vid(pipe, args, (tiny.TINY_HEIGHT, tiny.TINY_WIDTH), args.image_steps or 4,
                                args.steps or tiny.TINY_STEPS, stages)
    pipe = TextToVideo.from_pretrained(image_model, video_model, device=args.device,
                                       keep_image_model=args.keep_image_model)
    return _run_txt2vid(pipe, args, (576, 1024), args.image_steps or 50, args.steps or 25, stages)


def demo_txt2vid(args) -> int:
    """`svdc demo --workflow txt2vid`: the whole text-to-video path on tiny random models."""
    from . import tiny
    from .cli import _Stages, _check_output

    _check_output(args.output)
    stages = _Stages(args.quiet)
    args.prompt = args.prompt or "a red fox running in the snow"
    args.negative_prompt, args.guidance, args.image_output = None, 7.5, None
    with _tiny_text_to_video(args.device) as pipe:
        return _run_txt2vid(pipe, args, (tiny.TINY_HEIGHT, tiny.TINY_WIDTH), 4, args.steps or tiny.TINY_STEPS,
                            stages)


def add_parsers(sub, generation_options) -> None:
    """Registers txt2img and txt2vid; `generation_options` adds svdc img2vid's video options (svdc/cli.py)."""
    p = sub.add_parser("txt2img", help="text-to-image with a Stable Diffusion 2.x model (or --model tiny)")
    _image_options(p, "--steps")
    from .schedules import SUPPORTED_SCHEDULERS

    p.add_argument("--scheduler", choices=SUPPORTED_SCHEDULERS, default=None,
                   help="another diffusers scheduler class, built from the model's scheduler config (default: the "
                        "model's own)")
    p.add_argument("--model", required=True,
                   help="a diffusers SD 2.x pipeline folder, a hub id in the local Hugging Face cache, or 'tiny'")
    p.add_argument("-o", "--output", required=True, help="output image: .png, .jpg or .webp")
    p.add_argument("--seed", type=int, default=None, help="random seed (same noise as torch.manual_seed(seed))")
    p.add_argument("--height", type=int, default=None, help="image height, a multiple of 8 (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="image width, a multiple of 8 (default: the model's)")
    p.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda[:N]"')
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_txt2img)

    p = sub.add_parser("txt2vid", help="text -> image (SD 2.x) -> video (SVD) in one run (or tiny models)")
    _image_options(p, "--image-steps")
    p.add_argument("--image-model", required=True, help="an SD 2.x pipeline folder (as txt2img --model) or 'tiny'")
    p.add_argument("--video-model", required=True, help="an SVD model (as img2vid --model) or 'tiny'")
    p.add_argument("--image-output", default=None, help="also write the intermediate image here (.png, ...)")
    p.add_argument("--keep-image-model", action="store_true",
                   help="keep the image model loaded while the video model runs (more memory)")
    generation_options(p, None)
    p.set_defaults(func=_cmd_txt2vid)
