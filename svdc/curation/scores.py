"""The quality-score stage (Curation II): for every clip, its first, middle and last frames -> CLIP text-image
similarity per caption, an aesthetic score and the OCR text-area ratio. `score_video(video_row, clip_rows,
scorers)` is the pure per-video stage (one decoding pass for all of a video's clips; returns score rows, writes
nothing); `SCORING` is it as a svdc.runner stage (one video per job, models loaded once per worker), which
`score_manifest` runs over a manifest of `curate run` on the local pool or Ray, resumable per video.

How the three frames are combined is ours (the paper does not say): aesthetic and similarity are the means over
the frames; the text ratio is the largest of the three (text in any of them is unwanted). `clip_sim` is the mean
over the clip's captions of the per-caption similarity (each also kept as clip_sim_<role>)."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..runner.stage import Stage
from .aesthetics import AestheticHead
from .captions import Captioner, read_captions
from .embeddings import EmbeddingProvider, l2_normalize
from .ocr import TextDetector, text_area_ratio

QUALITY = "quality"  # the table (and <table>_parts folder) of this stage

__all__ = ["ScoreParams", "Scorers", "SCORING", "score_video", "score_item", "score_manifest", "clip_frame_indices",
           "iter_frames", "read_frames"]


@dataclass
class ScoreParams:
    """What the CLI (and a runner) needs to build the scorers in any process; all optional."""

    clip_model: str | None = None  # ClipProvider.from_pretrained folder: enables similarity (and aesthetics)
    image_encoder: str | None = None  # or the towers apart (ClipProvider.from_components): all three together
    text_encoder: str | None = None
    tokenizer: str | None = None
    aesthetic_head: str | None = None  # .npz / .safetensors head over clip_model's image embeddings
    aesthetic_activation: str = "none"
    ocr: str = "none"  # "rapidocr" or "none"
    ocr_limit_side_len: int = 736
    ocr_limit_type: str = "min"
    captions: str | None = None  # JSON Lines of captions per clip or video (svdc.curation.captions.read_captions)
    device: str = "cpu"

    def validate(self) -> None:
        if self.ocr not in ("none", "rapidocr"):
            raise ValueError(f"ocr: expected 'none' or 'rapidocr', got {self.ocr!r}")
        parts = [getattr(self, n) is not None for n in _COMPONENTS]
        if any(parts) and (not all(parts) or self.clip_model is not None):
            raise ValueError("image_encoder/text_encoder/tokenizer: give all three (instead of clip_model), got "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in ("clip_model", *_COMPONENTS)))
        if self.aesthetic_head is not None and not self.has_clip:
            raise ValueError("aesthetic_head: needs a CLIP model (the head scores its image embeddings)")
        for name in _PATHS:
            value = getattr(self, name)
            if value is not None and not os.path.exists(value):
                raise FileNotFoundError(f"{name}: no such file or folder: {value!r}")
        if self.aesthetic_head is not None:
            width = AestheticHead.from_file(self.aesthetic_head).input_dim  # a few KB: cheap before any model
            model = self.clip_model or self.image_encoder
            dim = _projection_dim(model)
            if dim is not None and dim != width:
                raise ValueError(f"aesthetic_head: {self.aesthetic_head!r} expects embeddings of width {width}, but "
                                 f"the CLIP model {model!r} gives {dim} (the LAION heads need OpenAI CLIP ViT-L/14, "
                                 f"width 768)")

    @property
    def has_clip(self) -> bool:
        return self.clip_model is not None or self.image_encoder is not None

    def hash(self) -> str:
        d = asdict(self)
        d.pop("device")  # where, not what
        for name in _PATHS:  # a changed file is a changed parameter
            if d[name] is not None:
                d[name] = [os.path.abspath(d[name]), _mtime(d[name])]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


_COMPONENTS = ("image_encoder", "text_encoder", "tokenizer")
_PATHS = ("clip_model", *_COMPONENTS, "aesthetic_head", "captions")


def _projection_dim(clip_model: str) -> int | None:
    """The embedding width a ClipProvider folder declares (CLIPModel config or image_encoder/config.json)."""
    if not os.path.isdir(clip_model):
        return None  # a single file: checked once the model is loaded
    for config in (os.path.join(clip_model, "config.json"), os.path.join(clip_model, "image_encoder", "config.json")):
        if os.path.isfile(config):
            with open(config) as f:
                return int(json.load(f).get("projection_dim", 512))
    return None


def _mtime(path: str) -> float:
    if os.path.isdir(path):
        return max((os.path.getmtime(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs), default=0.0)
    return os.path.getmtime(path)


@dataclass
class Scorers:
    """The models of the stage. embeddings: an EmbeddingProvider (needed for similarity and aesthetics);
    aesthetic: a head over its image embeddings; detector: a TextDetector; captioners run in order on each clip
    (later ones see earlier captions); captions: {clip_id or video_id: {role: text}} given up front."""

    embeddings: EmbeddingProvider | None = None
    aesthetic: AestheticHead | None = None
    detector: TextDetector | None = None
    captioners: list = field(default_factory=list)
    captions: dict = field(default_factory=dict)
    source_hash: str | None = None  # the ScoreParams hash when built by from_params

    def check(self) -> None:
        """Cheap consistency checks before any decoding."""
        if self.embeddings is not None and not isinstance(self.embeddings, EmbeddingProvider):
            raise TypeError(f"embeddings: expected an EmbeddingProvider, got {type(self.embeddings).__name__}")
        if self.aesthetic is not None:
            if self.embeddings is None:
                raise ValueError("aesthetic: needs an embedding provider (the head scores its image embeddings)")
            if self.aesthetic.input_dim != self.embeddings.dim:
                raise ValueError(f"aesthetic: the head {self.aesthetic.name!r} expects embeddings of width "
                                 f"{self.aesthetic.input_dim}, but the provider {self.embeddings.name!r} gives "
                                 f"{self.embeddings.dim} (the LAION heads need OpenAI CLIP ViT-L/14, width 768)")
        if self.detector is not None and not isinstance(self.detector, TextDetector):
            raise TypeError(f"detector: expected a TextDetector, got {type(self.detector).__name__}")
        for c in self.captioners:
            if not isinstance(c, Captioner):
                raise TypeError(f"captioners: expected Captioner objects, got {type(c).__name__}")

    @classmethod
    def from_params(cls, params: ScoreParams) -> "Scorers":
        params.validate()
        embeddings = aesthetic = detector = None
        if params.has_clip:
            from .embeddings import ClipProvider

            embeddings = (ClipProvider.from_pretrained(params.clip_model, device=params.device)
                          if params.clip_model is not None else
                          ClipProvider.from_components(params.image_encoder, params.text_encoder, params.tokenizer,
                                                       device=params.device))
        if params.aesthetic_head is not None:
            aesthetic = AestheticHead.from_file(params.aesthetic_head, activation=params.aesthetic_activation)
        if params.ocr == "rapidocr":
            from .ocr import RapidOCRDetector

            detector = RapidOCRDetector(params.ocr_limit_side_len, params.ocr_limit_type)
        captions = read_captions(params.captions) if params.captions else {}
        scorers = cls(embeddings, aesthetic, detector, [], captions, source_hash=params.hash())
        scorers.check()
        return scorers


def clip_frame_indices(row: dict) -> tuple[int, int, int]:
    """The first, middle and last frame of a clips row (end_frame inclusive)."""
    a, b = int(row["start_frame"]), int(row["end_frame"])
    if b < a:
        raise ValueError(f"clip {row.get('clip_id')!r}: expected end_frame >= start_frame, got {a}..{b}")
    return a, (a + b) // 2, b


def iter_frames(path: str, indices):
    """One decoding pass up to the largest index, yielding (frame index, RGB uint8 (H, W, 3)) for the requested
    indices in order (counted in presentation order from 0, as `curate run` counts them). A requested index past
    the end raises VideoReadError."""
    import av

    from .io import VideoReadError

    wanted = set(int(i) for i in indices)
    if not wanted:
        return
    last, found = max(wanted), set()
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    found.add(index)
                    yield index, frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
    except av.error.FFmpegError as e:
        raise VideoReadError(f"path: cannot decode {path!r}: {e}") from e
    missing = sorted(wanted - found)
    if missing:
        raise VideoReadError(f"path: {path!r} has no frame(s) {missing[:5]} (the manifest does not match the file)")


def read_frames(path: str, indices) -> dict[int, np.ndarray]:
    """{frame index: RGB uint8 (H, W, 3)} for the requested indices (see iter_frames)."""
    return dict(iter_frames(path, indices))


def _clip_captions(scorers: Scorers, clip_id: str, video_id: str) -> dict[str, str]:
    return dict(scorers.captions.get(clip_id) or scorers.captions.get(video_id) or {})


def score_video(video_row: dict, clip_rows: list[dict], scorers: Scorers) -> list[dict]:
    """Quality-score rows of one video's clips (see the module docstring for the columns)."""
    scorers.check()
    needs_captions = scorers.embeddings is not None and not scorers.captioners
    if needs_captions:
        missing = [r["clip_id"] for r in clip_rows if not _clip_captions(scorers, r["clip_id"], r["video_id"])]
        if missing:
            raise ValueError(f"captions: CLIP similarity needs captions, but clip(s) {missing[:5]} of video "
                             f"{video_row['video_id']!r} have none (give a captions file or a Captioner)")
    # Decode once; a clip is scored as soon as its last frame arrives, so only the frames of clips still open are
    # held (full-size RGB frames of a long video would not fit in memory all at once).
    indices = [clip_frame_indices(r) for r in clip_rows]
    users: dict[int, list[int]] = {}  # frame index -> the clips (positions in clip_rows) that use it
    for k, trio in enumerate(indices):
        for i in trio:
            users.setdefault(i, []).append(k)
    held: dict[int, np.ndarray] = {}
    rows: list[dict | None] = [None] * len(clip_rows)
    for index, frame in iter_frames(video_row["path"], users):
        held[index] = frame
        for k in users[index]:
            if indices[k][2] == index:  # the clip's last frame: all three are here
                rows[k] = _score_clip(clip_rows[k], np.stack([held[i] for i in indices[k]]), indices[k], scorers)
        for i in [i for i in held if all(rows[k] is not None for k in users[i])]:
            del held[i]
    return rows


def _score_clip(row: dict, frames: np.ndarray, indices, scorers: Scorers) -> dict:
    """frames: (3, H, W, 3) uint8, the clip's first/middle/last frames."""
    out = {"clip_id": row["clip_id"], "video_id": row["video_id"], "score_frames": list(indices)}
    captions = _clip_captions(scorers, row["clip_id"], row["video_id"])
    for captioner in scorers.captioners:
        text = captioner(frames, dict(captions))
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"captioner {captioner.name!r}: expected a non-empty string for clip "
                             f"{row['clip_id']!r}, got {text!r}")
        captions[captioner.name] = text
    for role, text in sorted(captions.items()):
        out[f"caption_{role}"] = text
    if scorers.embeddings is not None:
        if not captions:
            raise ValueError(f"captions: clip {row['clip_id']!r} has none (CLIP similarity needs at least one)")
        image = l2_normalize(scorers.embeddings.embed_images(frames), "image embeddings")  # (3, D)
        roles = sorted(captions)
        text = l2_normalize(scorers.embeddings.embed_texts([captions[r] for r in roles]), "text embeddings")
        sims = image @ text.T  # (3 frames, R captions) cosine similarities
        for k, role in enumerate(roles):
            out[f"clip_sim_{role}"] = float(sims[:, k].mean())
        out["clip_sim"] = float(sims.mean())
        out["embedding_model"] = scorers.embeddings.name
        if scorers.aesthetic is not None:
            per_frame = scorers.aesthetic(image)
            out["aesthetic"] = float(per_frame.mean())
            out["aesthetic_frames"] = [float(x) for x in per_frame]
            out["aesthetic_head"] = scorers.aesthetic.name
    if scorers.detector is not None:
        h, w = frames.shape[1:3]
        ratios = [text_area_ratio(scorers.detector.detect(f), h, w) for f in frames]
        out["text_ratio"] = float(max(ratios))
        out["text_ratio_frames"] = ratios
        out["text_detector"] = scorers.detector.name
    return out


def _stage_hash(params: ScoreParams, scorers: Scorers) -> str:
    """What identifies a video's score rows: the params hash when the scorers were built from the params (in any
    process), else the params hash plus the names of the Python plugins (which cannot be hashed by content)."""
    if scorers.source_hash is not None:
        return scorers.source_hash
    names = [getattr(scorers.embeddings, "name", None), getattr(scorers.aesthetic, "name", None),
             getattr(scorers.detector, "name", None), *(f"{type(c).__name__}:{c.name}" for c in scorers.captioners)]
    return hashlib.sha1(json.dumps([params.hash(), names]).encode()).hexdigest()[:16]


def _scored_part(scorers: Scorers, params: ScoreParams, video_row: dict, clip_rows: list[dict]) -> dict:
    """One video's part of the quality table: {"params_hash", "rows"} (rows stamped with version and hash)."""
    from .. import __version__

    phash = _stage_hash(params, scorers)
    common = {"svdc_version": __version__, "params_hash": phash, "stage": "score"}
    return {"params_hash": phash, "rows": [{**r, **common} for r in score_video(video_row, clip_rows, scorers)]}


# ---- the runner stage ------------------------------------------------------------------------------------------
def load_scorers(params: ScoreParams) -> Scorers:
    """Once per worker process / Ray actor: the models `params` names."""
    return Scorers.from_params(params)


def score_item(scorers: Scorers, item: dict, params: ScoreParams) -> dict:
    """The stage function: item {"id": video_id, "video": its path, "manifest": the manifest folder} -> the video's
    quality part (its clip rows come from the video's Curation I part in the manifest)."""
    from .manifest import Manifest

    rows = Manifest(item["manifest"], "jsonl").rows([item["id"]])
    if not rows["videos"]:
        raise ValueError(f"manifest: no part for video {item['id']!r} in {item['manifest']!r}")
    video = {**rows["videos"][0], "path": item["video"]}
    return _scored_part(scorers, params, video, rows["clips"])


def _item_summary(output: dict) -> dict:
    return {"clips": len(output["rows"])}


SCORING = Stage(name="curation_scores", process=score_item, load=load_scorers,
                columns={"video": "path", "manifest": "path"}, folder=f"{QUALITY}_parts", params_type=ScoreParams,
                summary=_item_summary)


def score_manifest(root, params: ScoreParams | None = None, scorers: Scorers | None = None, fmt: str = "auto",
                   progress: bool = True, backend: str = "local", workers: int = 1, **runner_settings) -> dict:
    """Scores every clip of the manifest folder `root` into its `quality` table. With `params` alone the videos run
    through svdc.runner (backend "local": `workers` processes; "ray": Ray actors, runner_settings as for
    svdc.curation.run), each worker loading the models `params` names once. `scorers` (Python objects: a custom
    embedding provider, captioners) runs in this process instead, since objects do not travel to workers. Videos
    whose part has the same hash are skipped. Returns {"done", "skipped", "failed", "clips", "table"}."""
    from .manifest import read_table
    from .stages import StageParts, write_table

    params = params or ScoreParams()
    params.validate()
    videos = [v for v in read_table(root, "videos") if v.get("status") == "ok"]
    clips = read_table(root, "clips")
    if not clips:
        raise ValueError(f"manifest: {str(root)!r} has no clips to score (did `curate run` find any?)")
    if scorers is None and params.has_clip:  # cheap check before any model or worker starts
        captions = read_captions(params.captions) if params.captions else {}
        missing = [c["clip_id"] for c in clips if not (captions.get(c["clip_id"]) or captions.get(c["video_id"]))]
        if missing:
            raise ValueError(f"captions: CLIP similarity needs captions, but {len(missing)} clip(s) have none in "
                             f"{params.captions!r} (e.g. {missing[:3]})")
    if scorers is not None:
        scorers.check()
        if backend != "local" or workers != 1 or runner_settings:
            raise ValueError("scorers: Python scorer objects run in this process; leave backend/workers/runner "
                             "settings at their defaults, or describe the models with params instead")
    phash = _stage_hash(params, scorers) if scorers is not None else params.hash()
    by_video: dict[str, list[dict]] = {}
    for c in clips:
        by_video.setdefault(c["video_id"], []).append(c)
    scored = [v for v in videos if v["video_id"] in by_video]
    parts = StageParts(root, QUALITY)
    todo = [v for v in scored if not parts.finished(v["video_id"], phash)]
    stats = {"done": 0, "skipped": len(scored) - len(todo), "failed": 0}
    if scorers is not None:
        from tqdm import tqdm

        for v in tqdm(todo, unit="video", desc="score", disable=not progress):
            part = _scored_part(scorers, params, v, by_video[v["video_id"]])
            parts.write(v["video_id"], part["params_hash"], part["rows"])
            stats["done"] += 1
    elif todo:
        from ..runner.stage import run_stage

        items = [{"id": v["video_id"], "video": v["path"], "manifest": os.path.abspath(root)} for v in todo]
        summary = run_stage(SCORING, items, root, params, backend=backend, workers=workers, progress=progress,
                            **runner_settings)
        stats.update(done=len(summary.ran) - summary.failed, failed=summary.failed)
        errors = [(i, summary.results[i].get("error")) for i in summary.ran if summary.results[i]["status"] != "ok"]
    rows = parts.rows(sorted(v["video_id"] for v in scored))
    stats["clips"] = len(rows)
    stats["table"] = str(write_table(root, QUALITY, rows, fmt))
    if stats["failed"]:  # the table holds the other videos; a rerun retries only the failed ones
        raise RuntimeError(f"curate score: {stats['failed']} video(s) failed (see {root}/results.jsonl); first: "
                           f"{errors[0][0]}: {errors[0][1]}")
    return stats
