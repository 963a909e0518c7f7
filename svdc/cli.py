"""The `svdc` command line: `svdc info`, `svdc img2vid IMAGE --model PATH|tiny -o out.mp4`,
`svdc multiview IMAGE --model sv3d_p.safetensors|tiny -o out/`, `svdc demo [--workflow img2vid|multiview|txt2vid]`,
`svdc batch JOBS --out DIR` (svdc/runner/cli.py), `svdc txt2img` / `svdc txt2vid` (svdc/text_cli.py)."""
from __future__ import annotations

import argparse
import os
import sys


def _cmd_info(args) -> int:
    from .info_text import render

    print(render())
    return 0


def _seed(args) -> int:
    import os

    return args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")


def _check_output(path: str) -> None:
    """Refuses, before any model loads, an output whose extension svdc cannot write or whose folder cannot be
    written: a temporary file is really created (and removed) in the nearest existing folder on the path."""
    import os
    import tempfile

    from .video import output_kind

    kind = output_kind(path)  # ValueError naming the extension and the ones that work
    target = os.path.abspath(path)
    folder = target if kind == "dir" else os.path.dirname(target)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"-o/--output: {path!r}: {folder!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".svdc-write-check-", dir=folder)
    except OSError as e:
        raise ValueError(f"-o/--output: {path!r}: cannot write in {folder!r} ({e.strerror or e})") from None
    os.close(fd)
    os.remove(probe)


def _check_image(path: str) -> None:
    """The input image exists and its header is an image PIL can decode (the full decode comes with the run)."""
    import os

    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ValueError(f"image: no such image file: {path!r}")
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - the header is parsed by open()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"image: cannot read image file {path!r}: {e}") from None


def _check_model(model: str) -> str:
    """The model path ('tiny', a local file or folder, or a hub id in the local cache) -> the path to load."""
    import os

    from . import hub

    if model == "tiny" or os.path.exists(model):
        return model
    if hub.is_hub_id(model):
        return hub.resolve_snapshot(model, local_files_only=True)
    raise ValueError(f"--model: {model!r}: no such file or folder (expected a diffusers pipeline folder, a "
                     "Stability single .safetensors file, a hub id 'org/name' in the local Hugging Face cache, or "
                     "'tiny')")


class _Stages:
    """Progress lines on stderr for the stages around the per-step bar: loading, denoising, decoding, total."""

    def __init__(self, quiet: bool):
        import time

        self.quiet, self.clock, self.start = quiet, time.perf_counter, time.perf_counter()
        self.last = self.start

    def say(self, text: str) -> None:
        now = self.clock()
        if not self.quiet:
            print(f"[{now - self.start:7.1f}s] {text}", file=sys.stderr, flush=True)
        self.last = now

    def total(self) -> float:
        return self.clock() - self.start


def _run_img2vid(pipe, image, args, default_size, stages: _Stages) -> int:
    seed = _seed(args)
    height = args.height if args.height is not None else default_size[0]
    width = args.width if args.width is not None else default_size[1]

    def on_step(i, total, latents):
        if i == total - 1:
            stages.say("decoding")

    kwargs = dict(num_frames=args.frames, seed=seed, height=height, width=width, decode_chunk_size=args.decode_chunk_size,
                  motion_bucket_id=args.motion_bucket_id, noise_aug_strength=args.noise_aug,
                  progress=not args.quiet, callback=on_step)
    # leave the pipeline's (or the preset's) defaults alone unless given
    for key, name in (("num_inference_steps", "steps"), ("fps", "fps"), ("min_guidance_scale", "min_guidance"),
                      ("max_guidance_scale", "max_guidance")):
        if getattr(args, name) is not None:
            kwargs[key] = getattr(args, name)
    stages.say("denoising")
    video = pipe(image, **kwargs)
    stages.say("writing")
    path = video.save(args.output)
    print(f"wrote {path}: {video.num_frames} frames, {video.width}x{video.height}, {video.fps:g} fps (seed {seed}) "
          f"in {stages.total():.1f} s")
    return 0


def _cmd_img2vid(args) -> int:
    from . import tiny
    from .pipelines.image_to_video import ImageToVideo

    # Everything cheap is checked before the (slow) model load.
    _check_output(args.output)
    model = _check_model(args.model)
    _check_image(args.image)
    stages = _Stages(args.quiet)
    stages.say(f"loading {args.model}")
    if model == "tiny":
        print(tiny.RANDOM_WEIGHTS_NOTICE)
        pipe = tiny.tiny_pipeline(device=args.device)
        size = (tiny.TINY_HEIGHT, tiny.TINY_WIDTH)
        args.steps = tiny.TINY_STEPS if args.steps is None else args.steps
    else:
        pipe = ImageToVideo.from_pretrained(model, device=args.device, dtype=args.dtype, preset=args.preset)
        size = (576, 1024)
    return _run_img2vid(pipe, args.image, args, size, stages)


def _run_multiview(pipe, image, args) -> int:
    seed = _seed(args)
    kwargs = dict(elevations=args.elevation, orbit=args.orbit, seed=seed, image_frame_ratio=args.image_frame_ratio,
                  progress=not args.quiet)
    if args.steps is not None:
        kwargs["num_inference_steps"] = args.steps
    if args.max_guidance is not None:
        kwargs["max_guidance_scale"] = args.max_guidance
    orbit = pipe(image, **kwargs)
    folder = orbit.save(args.output, rgba=not args.no_rgba, video=None if args.video == "none" else args.video)
    print(f"wrote {folder}: {len(orbit)} views {orbit.frames.shape[2]}x{orbit.frames.shape[1]}, transforms.json "
          f"(orbit {args.orbit}, seed {seed})")
    return 0


def _cmd_multiview(args) -> int:
    from . import tiny
    from .pipelines.multiview import MultiView

    if args.model == "tiny":
        print(tiny.RANDOM_WEIGHTS_NOTICE)
        pipe = tiny.tiny_multiview(device=args.device)
        args.steps = tiny.TINY_SV3D_STEPS if args.steps is None else args.steps
    else:
        pipe = MultiView.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    return _run_multiview(pipe, args.image, args)


def _cmd_demo(args) -> int:
    from . import tiny

    if args.workflow == "txt2vid":
        from .text_cli import demo_txt2vid

        return demo_txt2vid(args)
    _check_output(args.output)
    stages = _Stages(args.quiet)
    print(tiny.RANDOM_WEIGHTS_NOTICE)
    if args.workflow == "multiview":
        print("(21 views of a built-in test object; use `svdc multiview IMAGE --model sv3d_p.safetensors` for real "
              "weights)")
        for name, value in (("elevation", 10.0), ("orbit", "static"), ("image_frame_ratio", None),
                            ("no_rgba", False), ("video", "orbit.mp4"), ("max_guidance", None)):
            setattr(args, name, value)
        args.output = "demo_multiview" if args.output == "demo.mp4" else args.output
        args.steps = tiny.TINY_SV3D_STEPS if args.steps is None else args.steps
        return _run_multiview(tiny.tiny_multiview(device=args.device), tiny.test_object(), args)
    print("(generating from a built-in test picture; use `svdc img2vid IMAGE --model PATH` for real weights)")
    stages.say("loading the tiny model")
    pipe = tiny.tiny_pipeline(device=args.device)
    args.image = tiny.test_image(tiny.TINY_HEIGHT, tiny.TINY_WIDTH)
    args.steps = tiny.TINY_STEPS if args.steps is None else args.steps
    return _run_img2vid(pipe, args.image, args, (tiny.TINY_HEIGHT, tiny.TINY_WIDTH), stages)


def _generation_options(p: argparse.ArgumentParser, output_default: str | None) -> None:
    p.add_argument("-o", "--output", default=output_default, required=output_default is None,
                   help="output: .mp4 (H.264), .gif, .webp, a folder or a *.png pattern for PNG frames")
    p.add_argument("--frames", type=int, default=None, help="number of frames (default: the model's, 14 or 25)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps (default 25; sgm preset: 25/30; tiny model: 8)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default 7; fed to the model as fps-1)")
    p.add_argument("--motion-bucket-id", type=float, default=127, help="motion amount conditioning (default 127)")
    p.add_argument("--noise-aug", type=float, default=0.02, help="noise added to the conditioning image (0.02)")
    p.add_argument("--min-guidance", type=float, default=None, help="guidance at the first frame (default 1.0)")
    p.add_argument("--max-guidance", type=float, default=None, help="guidance at the last frame (default 3.0)")
    p.add_argument("--decode-chunk-size", type=int, default=None, help="frames decoded at once (default: all)")
    p.add_argument("--seed", type=int, default=None, help="random seed (same noise as torch.manual_seed(seed))")
    p.add_argument("--height", type=int, default=None, help="output height, a multiple of 8 (default 576)")
    p.add_argument("--width", type=int, default=None, help="output width, a multiple of 8 (default 1024)")
    p.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda[:N]"')
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# Commands whose parsers live in other modules (curation alone costs ~0.5 s of imports): a run of another command
# imports none of them, so its argument errors stay fast; help and unknown commands import them all.
_OTHER_MODULE_COMMANDS = {"txt2img": "text", "txt2vid": "text", "curate": "curate", "batch": "batch"}


def _add_other_module_parsers(sub, command: str | None) -> None:
    wanted = {_OTHER_MODULE_COMMANDS[command]} if command in _OTHER_MODULE_COMMANDS else \
        set() if command in sub.choices else set(_OTHER_MODULE_COMMANDS.values())
    if "text" in wanted:
        from .text_cli import add_parsers as add_text_parsers

        add_text_parsers(sub, _generation_options)
    if "curate" in wanted:
        from .curation.cli import add_parser as add_curate_parser

        add_curate_parser(sub)
    if "batch" in wanted:
        from .runner.cli import add_batch_parser

        add_batch_parser(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; `command` (the first argument) limits the parsers imported from other modules to its own (None:
    all of them)."""
    parser = argparse.ArgumentParser(prog="svdc", description="Stable Video Diffusion in C/CUDA.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="build information and a PASS/FAIL line per backend")
    p_info.set_defaults(func=_cmd_info)

    p_i2v = sub.add_parser("img2vid", help="image-to-video with SVD / SVD-XT weights (or --model tiny)")
    p_i2v.add_argument("image", help="input image file")
    p_i2v.add_argument("--model", required=True,
                       help="a diffusers pipeline folder, a Stability single file (svd*.safetensors), a hub id "
                            "such as stabilityai/stable-video-diffusion-img2vid-xt already in the local Hugging "
                            "Face cache, or 'tiny' (a tiny random-weight model, no download)")
    p_i2v.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"],
                       help="weight storage dtype (computing is in fp32 on the CPU)")
    p_i2v.add_argument("--preset", default=None, choices=["diffusers", "sgm"],
                       help="default settings: diffusers' pipeline (default) or Stability's sgm scripts")
    _generation_options(p_i2v, None)
    p_i2v.set_defaults(func=_cmd_img2vid)

    p_mv = sub.add_parser("multiview", help="SV3D: 21 views around an object + cameras (transforms.json)")
    p_mv.add_argument("image", help="input image: RGBA with a transparent background, or RGB on white")
    p_mv.add_argument("--model", required=True,
                      help="sv3d_p/sv3d_u .safetensors, a diffusers-layout folder, or 'tiny' (random weights)")
    p_mv.add_argument("-o", "--output", required=True, help="output folder (images/, transforms.json, the video)")
    p_mv.add_argument("--elevation", type=float, default=None,
                      help="the input view's elevation in degrees (default 10; sv3d_u: recorded for export only)")
    p_mv.add_argument("--orbit", default="static", choices=["static", "sine", "dynamic", "comfyui"],
                      help="camera orbit (sv3d_p): sgm static default, ±30° sine, sgm dynamic (seeded), ComfyUI's")
    p_mv.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; tiny model: 4)")
    p_mv.add_argument("--max-guidance", type=float, default=None, help="guidance at the middle frame (default 2.5)")
    p_mv.add_argument("--image-frame-ratio", type=float, default=None,
                      help="the object's share of the frame, e.g. 0.917 (default: the sgm script's framing)")
    p_mv.add_argument("--video", default="orbit.mp4", help="orbit video name (.mp4/.gif/.webp) or 'none'")
    p_mv.add_argument("--no-rgba", action="store_true", help="write RGB frames instead of RGBA")
    p_mv.add_argument("--seed", type=int, default=None, help="random seed (sgm's default is 23)")
    p_mv.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="compute dtype")
    p_mv.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda[:N]"')
    p_mv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p_mv.set_defaults(func=_cmd_multiview)

    p_demo = sub.add_parser("demo", help="run the whole pipeline on a built-in picture with a tiny RANDOM model")
    _generation_options(p_demo, "demo.mp4")
    p_demo.add_argument("--workflow", default="img2vid", choices=["img2vid", "multiview", "txt2vid"],
                        help="img2vid (a built-in picture; default), multiview (an output folder, default "
                             "demo_multiview/) or txt2vid (a prompt -> image -> video)")
    p_demo.add_argument("--prompt", default=None, help="the txt2vid workflow's prompt")
    p_demo.set_defaults(func=_cmd_demo)

    _add_other_module_parsers(sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    from . import SvdcError

    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, SvdcError) as e:
        print(f"svdc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a third-party library's own exception type (Pillow, ffmpeg, NumPy...): same contract
        if os.environ.get("SVDC_TRACEBACK"):
            raise
        print(f"svdc {args.command}: error: {type(e).__name__}: {e} (set SVDC_TRACEBACK=1 for the traceback)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"svdc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
