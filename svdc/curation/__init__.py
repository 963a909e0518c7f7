"""Video curation as in the SVD paper's data pipeline: cascaded cut detection, keyframe-aware clipping and
Farnebäck motion scores over a resumable manifest (`svdc curate run VIDEOS... --out DIR`), then CLIP similarity,
aesthetics and OCR text-area scores (`curate score`), percentile/absolute filters (`curate filter`), Elo calibration
(`curate elo`) and webdataset shard export (`curate export --shards`)."""
from .clips import Clip, ClipParams, export, make_clips
from .cuts import Cut, CutParams, detect_cuts
from .io import SmallFrames, VideoInfo, VideoReadError, probe
from .manifest import Manifest, read_table
from .motion import MotionBucketMap, MotionParams
from .pipeline import CurationParams, process_video
from .runner import run
from .aesthetics import AestheticHead
from .captions import SVD_CAPTION_WEIGHTS, Captioner, CaptionSampler, read_captions
from .elo import EloResult, elo_ratings, read_votes
from .embeddings import ClipProvider, EmbeddingProvider
from .shards import Conditioners, ExportParams, export_dataset
from .filters import SVD_RULES, FilterRule, apply_filters, filter_manifest
from .ocr import RapidOCRDetector, TextDetector, text_area_ratio
from .scores import ScoreParams, Scorers, score_manifest, score_video

__all__ = ["Clip", "ClipParams", "export", "make_clips", "Cut", "CutParams", "detect_cuts", "SmallFrames",
           "VideoInfo", "VideoReadError", "probe", "Manifest", "read_table", "MotionBucketMap", "MotionParams",
           "CurationParams", "process_video", "run", "AestheticHead", "SVD_CAPTION_WEIGHTS", "Captioner",
           "CaptionSampler", "read_captions", "EloResult", "elo_ratings", "read_votes", "ClipProvider",
           "EmbeddingProvider", "Conditioners", "ExportParams", "export_dataset", "SVD_RULES", "FilterRule",
           "apply_filters", "filter_manifest", "RapidOCRDetector", "TextDetector", "text_area_ratio", "ScoreParams",
           "Scorers", "score_manifest", "score_video"]
