"""Video curation as in the SVD paper's data pipeline: cascaded cut detection, keyframe-aware clipping and
Farnebäck motion scores over a resumable manifest. `svdc curate run VIDEOS... --out DIR` from the command line."""
from .clips import Clip, ClipParams, export, make_clips
from .cuts import Cut, CutParams, detect_cuts
from .io import SmallFrames, VideoInfo, VideoReadError, probe
from .manifest import Manifest, read_table
from .motion import MotionBucketMap, MotionParams
from .pipeline import CurationParams, process_video
from .runner import run

__all__ = ["Clip", "ClipParams", "export", "make_clips", "Cut", "CutParams", "detect_cuts", "SmallFrames",
           "VideoInfo", "VideoReadError", "probe", "Manifest", "read_table", "MotionBucketMap", "MotionParams",
           "CurationParams", "process_video", "run"]
