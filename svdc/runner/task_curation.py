"""The curation task kind: one manifest row (a video) -> svdc.curation.process_video's rows for it, saved as the
curation manifest's part file parts/<id>.json (the id must be the video's curation id, video_id(path)), so that
svdc.curation rebuilds the same tables whichever backend ran the videos. Stateless: nothing to load."""
from __future__ import annotations

from .tasks import Job, Task


class CurationTask(Task):
    name = "curation"
    columns = {"video": "path"}
    required = ("video",)
    options = {"curation_params": None}  # a svdc.curation.CurationParams (None: the defaults)

    def check_options(self, options: dict) -> dict:
        from ..curation.pipeline import CurationParams

        opts = super().check_options(options)
        params = opts["curation_params"] if opts["curation_params"] is not None else CurationParams()
        if not isinstance(params, CurationParams):
            raise TypeError(f"curation_params: expected a svdc.curation.CurationParams, got "
                            f"{type(params).__name__}")
        params.validate()
        opts["curation_params"] = params
        return opts

    def options_key(self, options: dict):
        return {"curation_params": options["curation_params"].hash()}

    def output_name(self, job: Job, options: dict) -> str:
        return f"parts/{job.id}.json"

    def load(self, options: dict):
        return None

    def run(self, state, job: Job, output_path: str, options: dict) -> dict:
        from ..curation.manifest import part_json
        from ..curation.pipeline import process_video

        rows = process_video(job.args["video"], options["curation_params"])
        with open(output_path, "w", encoding="utf-8") as f:
            f.write(part_json(rows))
        video = rows["videos"][0]
        # an unreadable video is a finished job: its failure is a row of the curation manifest
        return {"video_status": video["status"], "video_error": video.get("error"), "clips": len(rows["clips"])}
