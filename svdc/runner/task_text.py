"""The text task kinds: one manifest row (a prompt and the call's arguments) -> one image made by svdc.TextToImage
(`text_to_image`, <id>.png) or one video made by svdc.TextToVideo (`text_to_video`, <id>.mp4), each pipeline loaded
once per worker from the run's model options (diffusers folders or single files)."""
from __future__ import annotations

from .tasks import AT_LEAST_0, ANY_FLOAT32, COUNT, SEEDS, Job, Task, model_option, seed_from_id

IMAGE_FORMATS = ("png", "jpg", "webp")
VIDEO_FORMATS = ("mp4", "gif", "webp")

# the pipelines' own keyword names, so a row reads like a call
_PROMPT_COLUMNS = {
    "prompt": "str",
    "negative_prompt": "str",
    "seed": "int",
    "num_inference_steps": "int",
    "guidance_scale": "float",
    "height": "int",
    "width": "int",
}
_PROMPT_LIMITS = {"num_inference_steps": COUNT, "guidance_scale": AT_LEAST_0, "height": COUNT, "width": COUNT}


def _format(options: dict, allowed: tuple) -> str:
    if options["format"] not in allowed:
        raise ValueError(f"format: expected one of {allowed}, got {options['format']!r}")
    return options["format"]


class TextToImageTask(Task):
    name = "text_to_image"
    columns = dict(_PROMPT_COLUMNS)
    required = ("prompt",)
    limits = {**_PROMPT_LIMITS, "seed": SEEDS}
    options = {"model": None, "device": "auto", "dtype": None, "format": "png"}

    def check_options(self, options: dict) -> dict:
        opts = super().check_options(options)
        opts["model"] = model_option(opts, "model", "a pipeline folder or a single .safetensors file")
        _format(opts, IMAGE_FORMATS)
        return opts

    def options_key(self, options: dict):
        return {k: v for k, v in options.items() if k != "device"}  # where it runs does not change what it makes

    def output_name(self, job: Job, options: dict) -> str:
        return f"{job.id}.{options['format']}"

    def load(self, options: dict):
        from ..pipelines.text_to_image import TextToImage

        return TextToImage.from_pretrained(options["model"], device=options["device"], dtype=options["dtype"])

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        from ..text_cli import save_image

        kwargs = dict(job.args)
        prompt = kwargs.pop("prompt")
        kwargs.setdefault("seed", seed_from_id(job.id))
        image = state(prompt, progress=False, **kwargs)
        save_image(image, output_path)
        return {"seed": kwargs["seed"], "width": int(image.shape[1]), "height": int(image.shape[0])}


class TextToVideoTask(Task):
    name = "text_to_video"
    columns = {
        **_PROMPT_COLUMNS,
        "num_frames": "int",
        "video_num_inference_steps": "int",
        "fps": "float",
        "motion_bucket_id": "float",
        "noise_aug_strength": "float",
        "min_guidance_scale": "float",
        "max_guidance_scale": "float",
        "decode_chunk_size": "int",
    }
    required = ("prompt",)
    # the seed only feeds stage_seeds (any int >= 0); stage 2's columns take ImageToVideo's ranges
    limits = {**_PROMPT_LIMITS, "seed": (0, None), "num_frames": COUNT, "video_num_inference_steps": COUNT,
              "fps": AT_LEAST_0, "motion_bucket_id": AT_LEAST_0, "noise_aug_strength": AT_LEAST_0,
              "min_guidance_scale": ANY_FLOAT32, "max_guidance_scale": ANY_FLOAT32, "decode_chunk_size": COUNT}
    options = {"image_model": None, "video_model": None, "device": "auto", "dtype": None, "format": "mp4"}

    def check_options(self, options: dict) -> dict:
        opts = super().check_options(options)
        opts["image_model"] = model_option(opts, "image_model", "a pipeline folder or a single .safetensors file")
        opts["video_model"] = model_option(opts, "video_model", "a pipeline folder or a single .safetensors file")
        _format(opts, VIDEO_FORMATS)
        return opts

    def options_key(self, options: dict):
        return {k: v for k, v in options.items() if k != "device"}

    def output_name(self, job: Job, options: dict) -> str:
        return f"{job.id}.{options['format']}"

    def load(self, options: dict):
        from ..pipelines.text_to_video import TextToVideo

        # a worker makes many videos: both stages stay loaded (no reload of the image model per job)
        return TextToVideo.from_pretrained(options["image_model"], options["video_model"], device=options["device"],
                                           dtype=options["dtype"], keep_image_model=True)

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        kwargs = dict(job.args)
        prompt = kwargs.pop("prompt")
        kwargs.setdefault("seed", seed_from_id(job.id))
        out = state(prompt, progress=False, **kwargs)
        out.video.save(output_path)  # Video.save writes a temporary file and renames it
        return {"seed": kwargs["seed"], "image_seed": int(out.image_seed), "video_seed": int(out.video_seed),
                "frames": out.video.num_frames, "width": out.video.width, "height": out.video.height}


TEXT_TO_IMAGE = TextToImageTask()
TEXT_TO_VIDEO = TextToVideoTask()
