"""The image-to-video task kind: one manifest row (an image and the pipeline's per-call arguments) -> one video
made by svdc.ImageToVideo, loaded once per worker from the run's `model` option (a path, or "tiny")."""
from __future__ import annotations

from .tasks import AT_LEAST_0, ANY_FLOAT32, COUNT, SEEDS, Job, Task, model_option, seed_from_id

# Output formats a job may be written in (Video.save picks the writer from the suffix).
FORMATS = ("mp4", "gif", "webp")


class ImageToVideoTask(Task):
    name = "image_to_video"
    # the pipeline's own keyword names, so a row reads like a call
    columns = {
        "image": "path",
        "seed": "int",
        "num_frames": "int",
        "num_inference_steps": "int",
        "fps": "float",
        "motion_bucket_id": "float",
        "noise_aug_strength": "float",
        "min_guidance_scale": "float",
        "max_guidance_scale": "float",
        "decode_chunk_size": "int",
        "height": "int",
        "width": "int",
    }
    required = ("image",)
    limits = {"seed": SEEDS, "num_frames": COUNT, "num_inference_steps": COUNT, "fps": AT_LEAST_0,
              "motion_bucket_id": AT_LEAST_0, "noise_aug_strength": AT_LEAST_0, "min_guidance_scale": ANY_FLOAT32,
              "max_guidance_scale": ANY_FLOAT32, "decode_chunk_size": COUNT, "height": COUNT, "width": COUNT}
    options = {"model": None, "device": "auto", "dtype": None, "preset": None, "format": "mp4"}

    def check_options(self, options: dict) -> dict:
        opts = super().check_options(options)
        opts["model"] = model_option(opts, "model", "a pipeline folder, a single .safetensors file or 'tiny'",
                                     allow_tiny=True)
        if opts["format"] not in FORMATS:
            raise ValueError(f"format: expected one of {FORMATS}, got {opts['format']!r}")
        from ..pipelines.image_to_video import PRESETS

        if opts["preset"] not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {opts['preset']!r}")
        return opts

    def options_key(self, options: dict):
        return {k: v for k, v in options.items() if k != "device"}  # where it runs does not change what it makes

    def output_name(self, job: Job, options: dict) -> str:
        return f"{job.id}.{options['format']}"

    def load(self, options: dict):
        if options["model"] == "tiny":
            from .. import tiny

            return tiny.tiny_pipeline(device=options["device"])
        from ..pipelines.image_to_video import ImageToVideo

        return ImageToVideo.from_pretrained(options["model"], device=options["device"], dtype=options["dtype"],
                                            preset=options["preset"])

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        kwargs = dict(job.args)
        image = kwargs.pop("image")
        kwargs.setdefault("seed", seed_from_id(job.id))
        if options["model"] == "tiny":  # the tiny model's own size, not SVD's 576x1024
            from .. import tiny

            kwargs.setdefault("height", tiny.TINY_HEIGHT)
            kwargs.setdefault("width", tiny.TINY_WIDTH)
        video = state(image, progress=False, **kwargs)
        video.save(output_path)  # Video.save writes a temporary file and renames it
        return {"seed": kwargs["seed"], "frames": video.num_frames, "width": video.width, "height": video.height}


TASK = ImageToVideoTask()
