"""`svdc curate run VIDEOS... --out DIR [--workers N] [--backend local|ray]` and `svdc curate export --out DIR
--clips-dir DIR`: the command line of svdc.curation (registered by svdc.cli through `add_parser`)."""
from __future__ import annotations

import argparse
import glob
import math
import os


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _fps_levels(text: str) -> tuple:
    try:
        levels = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 8,4,2, got {text!r}") from None
    if not levels or any(not math.isfinite(x) or x <= 0 for x in levels):
        raise argparse.ArgumentTypeError(f"expected frame rates > 0 such as 8,4,2, got {text!r}")
    return levels


def _expand(videos: list[str]) -> list[str]:
    """Folders become the video files inside them (sorted); other arguments stay as given."""
    out = []
    for v in videos:
        if os.path.isdir(v):
            found = sorted(p for p in glob.glob(os.path.join(v, "**", "*"), recursive=True)
                           if os.path.isfile(p) and p.lower().endswith(
                               (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".mpg", ".mpeg")))
            out.extend(found)
        else:
            out.append(v)
    return out


def _cmd_run(args) -> int:
    from .cuts import CutParams
    from .clips import ClipParams
    from .motion import MotionBucketMap, MotionParams
    from .pipeline import CurationParams
    from .runner import run

    cuts = CutParams()
    if args.fps_levels is not None:
        cuts.levels_fps = args.fps_levels
        cuts.hist_thresholds = tuple(cuts.hist_thresholds[:1]) * len(args.fps_levels)
    params = CurationParams(cuts=cuts, clips=ClipParams(min_seconds=args.min_seconds),
                            motion=MotionParams(sample_fps=args.motion_fps),
                            buckets=MotionBucketMap(scale=args.bucket_scale))
    videos = _expand(args.videos)
    # Ray settings given with --backend local are refused by run(), as by `svdc batch`
    ray_settings = {k: v for k, v in (("address", args.address), ("cpus_per_worker", args.cpus_per_worker))
                    if v is not None}
    stats = run(videos, args.out, params, workers=args.workers, fmt=args.format, progress=not args.quiet,
                backend=args.backend, **ray_settings)
    print(f"curate: {stats['done']} processed ({stats['failed']} failed), {stats['skipped']} already done; "
          f"manifest in {args.out}")
    return 0


def _cmd_export(args) -> int:
    from tqdm import tqdm

    from .clips import Clip, export
    from .manifest import read_table

    videos = {r["video_id"]: r["path"] for r in read_table(args.out, "videos") if r.get("status") == "ok"}
    clips = read_table(args.out, "clips")
    os.makedirs(args.clips_dir, exist_ok=True)
    for row in tqdm(clips, unit="clip", disable=args.quiet):
        clip = Clip.from_row(row)
        ext = os.path.splitext(videos[row["video_id"]])[1] or ".mp4"
        target = os.path.join(args.clips_dir, f"{row['clip_id']}{ext}")
        if not os.path.exists(target):
            export(videos[row["video_id"]], clip, target, reencode=args.reencode)
    print(f"curate export: {len(clips)} clips in {args.clips_dir}")
    return 0


def add_parser(sub) -> None:
    """Adds `curate` with its subcommands to the `svdc` subparsers."""
    p = sub.add_parser("curate", help="video curation: cut detection, clips, motion scores (svdc[curation])")
    csub = p.add_subparsers(dest="curate_command", required=True)
    r = csub.add_parser("run", help="decode + cuts + clips + motion for each video into a resumable manifest")
    r.add_argument("videos", nargs="+", help="video files or folders of videos")
    r.add_argument("--out", required=True, help="manifest folder (created; rerun to resume)")
    r.add_argument("--workers", type=int, default=1,
                   help="processes (local) or Ray actors, one video each (default 1)")
    r.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="where svdc.runner runs the videos: local processes (default) or Ray actors (svdc[ray])")
    r.add_argument("--address", default=None, help="Ray: the cluster's address (default: a local Ray)")
    r.add_argument("--cpus-per-worker", type=_float, default=None, help="Ray: CPUs per actor (default 1)")
    r.add_argument("--format", default="auto", choices=["auto", "parquet", "jsonl"],
                   help="table format (auto: parquet when pyarrow is installed)")
    r.add_argument("--fps-levels", type=_fps_levels, default=None,
                   help="coarse cascade levels in frames per second (default 8,4,2)")
    r.add_argument("--min-seconds", type=_float, default=1.0, help="shortest clip kept (default 1 s)")
    r.add_argument("--motion-fps", type=_float, default=2.0, help="optical-flow sampling rate (default 2)")
    r.add_argument("--bucket-scale", type=_float, default=64.0,
                   help="motion_bucket_id = round(score * scale), clipped to 0..255 (default 64)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)
    e = csub.add_parser("export", help="cut the manifest's clips out of their videos by stream copy")
    e.add_argument("--out", required=True, help="the manifest folder of `curate run`")
    e.add_argument("--clips-dir", required=True, help="folder for the clip files")
    e.add_argument("--reencode", action="store_true", help="re-encode (H.264) instead of stream copy")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_export)
