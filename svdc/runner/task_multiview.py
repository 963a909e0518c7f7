"""The multi-view task kind: one manifest row (an object image, an orbit and the call's arguments) -> one folder
<id>/ with the 21 views (images/000.png ...), transforms.json (the cameras) and the orbit video, made by
svdc.MultiView (SV3D), loaded once per worker from the run's `model` option. The folder is written whole in the
worker's staging folder and renamed into place, so it appears complete or not at all."""
from __future__ import annotations

import os

from .tasks import ANY_FLOAT32, COUNT, SEEDS, Job, Task, model_option, seed_from_id

VIDEO_SUFFIXES = (".mp4", ".gif", ".webp")


class MultiViewTask(Task):
    name = "multiview"
    # the pipeline's own keyword names, so a row reads like a call
    columns = {
        "image": "path",
        "seed": "int",
        "orbit": "str",
        "elevations": "floats",
        "azimuths": "floats",
        "num_inference_steps": "int",
        "min_guidance_scale": "float",
        "max_guidance_scale": "float",
        "image_frame_ratio": "float",
        "decode_chunk_size": "int",
    }
    required = ("image",)
    # elevations/azimuths (their count and range depend on the orbit) and image_frame_ratio (> 0, and the object
    # must fit) are checked when the row runs: a bad orbit fails its row
    limits = {"seed": SEEDS, "num_inference_steps": COUNT, "min_guidance_scale": ANY_FLOAT32,
              "max_guidance_scale": ANY_FLOAT32, "decode_chunk_size": COUNT}
    options = {"model": None, "device": "auto", "dtype": None, "video": "orbit.mp4", "rgba": True}

    def check_options(self, options: dict) -> dict:
        opts = super().check_options(options)
        opts["model"] = model_option(opts, "model", "sv3d_p/sv3d_u .safetensors, a pipeline folder or 'tiny'",
                                     allow_tiny=True)
        video = opts["video"]
        if video is not None and (not isinstance(video, str) or os.path.basename(video) != video
                                  or not video.lower().endswith(VIDEO_SUFFIXES)):
            raise ValueError(f"video: expected a file name ending in one of {VIDEO_SUFFIXES}, or None for no video, "
                             f"got {video!r}")
        if not isinstance(opts["rgba"], bool):
            raise TypeError(f"rgba: expected True or False, got {opts['rgba']!r}")
        return opts

    def options_key(self, options: dict):
        return {k: v for k, v in options.items() if k != "device"}  # where it runs does not change what it makes

    def output_name(self, job: Job, options: dict) -> str:
        return job.id  # a folder

    def load(self, options: dict):
        if options["model"] == "tiny":
            from .. import tiny

            return tiny.tiny_multiview("sv3d_p", device=options["device"])
        from ..pipelines.multiview import MultiView

        return MultiView.from_pretrained(options["model"], device=options["device"], dtype=options["dtype"])

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        kwargs = dict(job.args)
        image = kwargs.pop("image")
        kwargs.setdefault("seed", seed_from_id(job.id))
        if options["model"] == "tiny":  # the tiny model's few steps, as `svdc multiview --model tiny`
            from .. import tiny

            kwargs.setdefault("num_inference_steps", tiny.TINY_SV3D_STEPS)
        orbit = state(image, progress=False, **kwargs)
        orbit.save(output_path, rgba=options["rgba"], video=options["video"])
        height, width = orbit.frames.shape[1:3]
        return {"seed": kwargs["seed"], "views": len(orbit), "width": int(width), "height": int(height)}


TASK = MultiViewTask()
