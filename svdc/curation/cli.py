"""`svdc curate run VIDEOS... --out DIR [--workers N] [--backend local|ray]`, `svdc curate score|filter --out DIR`,
`svdc curate export --out DIR --clips-dir DIR [--shards DIR]` and `svdc curate elo VOTES.csv`: the command line of
svdc.curation (registered by svdc.cli through `add_parser`)."""
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
    if args.shards is not None:
        return _cmd_export_shards(args)
    if args.clips_dir is None:
        raise ValueError("curate export: give --clips-dir (clip files) and/or --shards (webdataset shards)")
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


def _cmd_export_shards(args) -> int:
    from .shards import Conditioners, ExportParams, export_dataset

    cond = Conditioners()
    if args.vae is not None:
        from .. import VAE

        cond.vae = VAE.from_pretrained(args.vae, device=args.device)
    if args.image_encoder is not None:
        from .. import ImageEncoder

        cond.image_encoder = ImageEncoder.from_pretrained(args.image_encoder, device=args.device)
    params = ExportParams(shard_size=args.shard_size, kept_only=not args.all_clips, reencode=args.reencode,
                          caption_seed=args.caption_seed, latent_size=args.latent_size)
    stats = export_dataset(args.out, args.shards, params, sampler=False if args.no_captions else None,
                           conditioners=cond, fmt=args.format, progress=not args.quiet)
    print(f"curate export: {stats['samples']} samples in {stats['shards']} new shard(s) "
          f"({stats['skipped_shards']} already there); index {stats['index']}")
    return 0


def _cmd_score(args) -> int:
    from .scores import ScoreParams, score_manifest

    params = ScoreParams(clip_model=args.clip_model, image_encoder=args.image_encoder,
                         text_encoder=args.text_encoder, tokenizer=args.tokenizer, aesthetic_head=args.aesthetic_head,
                         aesthetic_activation=args.aesthetic_activation, ocr=args.ocr,
                         ocr_limit_side_len=args.ocr_side, ocr_limit_type=args.ocr_limit_type,
                         captions=args.captions, device=args.device)
    if not params.has_clip and params.ocr == "none" and params.captions is None:
        raise ValueError("curate score: nothing to score; give --clip-model (or --image-encoder, --text-encoder and "
                         "--tokenizer) and/or --ocr rapidocr")
    ray_settings = {} if args.backend == "local" else \
        {k: v for k, v in (("address", args.address), ("cpus_per_worker", args.cpus_per_worker),
                           ("gpus_per_worker", args.gpus_per_worker)) if v is not None}
    stats = score_manifest(args.out, params, fmt=args.format, progress=not args.quiet, backend=args.backend,
                           workers=args.workers, **ray_settings)
    print(f"curate score: {stats['done']} video(s) scored, {stats['skipped']} already done; {stats['clips']} clips "
          f"in {stats['table']}")
    return 0


def _rule_items(items, kind: str) -> list:
    """["motion=0.25", ...] -> [(score, value)] with a clear error for anything else."""
    out = []
    for item in items or []:
        score, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not score or number is None or not math.isfinite(number):
            raise ValueError(f"curate filter: --{kind} expects SCORE=NUMBER such as motion=0.25, got {item!r}")
        out.append((score, number))
    return out


def _cmd_filter(args) -> int:
    from .filters import SVD_RULES, FilterRule, filter_manifest

    rules = list(SVD_RULES) if args.svd else []
    for flag, field in (("min", "min"), ("max", "max"), ("drop-lowest", "drop_lowest"),
                        ("drop-highest", "drop_highest")):
        for score, value in _rule_items(getattr(args, field), flag):
            rules.append(FilterRule(score, **{field: value}))
    if not rules:
        raise ValueError("curate filter: no rules; give --svd and/or --min/--max/--drop-lowest/--drop-highest")
    report = filter_manifest(args.out, rules, on_missing=args.on_missing, fmt=args.format, plots=not args.no_plots)
    for r in report["rules"]:
        print(f"  {r['name']:<40} removes {r['removed']:>6} ({r['removed_fraction']:.1%})")
    print(f"curate filter: kept {report['kept']} of {report['clips']} clips "
          f"(removed {report['removed_fraction']:.1%}); "
          f"report in {os.path.join(args.out, 'filter_report.json')}")
    return 0


def _cmd_elo(args) -> int:
    import csv

    from .elo import elo_ratings, read_votes

    result = elo_ratings(read_votes(args.votes), k=args.k, initial=args.initial, orderings=args.orderings,
                         seed=args.seed)
    rows = result.rows()
    for r in rows:
        print(f"{r['rank']:>3}  {r['model']:<30} {r['elo']:8.2f}  [{r['low']:.2f}, {r['high']:.2f}]")
    if args.output:
        with open(args.output, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def _latent_size(text: str) -> tuple:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 576x1024, got {text!r}") from None
    return h, w


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
    e = csub.add_parser("export", help="cut the manifest's clips out of their videos (--clips-dir) and/or write "
                                       "the kept clips as webdataset tar shards with an index (--shards)")
    e.add_argument("--out", required=True, help="the manifest folder of `curate run`")
    e.add_argument("--clips-dir", default=None, help="folder for the clip files")
    e.add_argument("--shards", default=None, help="folder for {shard:05d}.tar shards + index (after `curate filter`)")
    e.add_argument("--shard-size", type=int, default=100, help="samples per shard (default 100)")
    e.add_argument("--all-clips", action="store_true", help="shards: every clip, not only those the filters keep")
    e.add_argument("--no-captions", action="store_true", help="shards: no caption per sample")
    e.add_argument("--caption-seed", type=int, default=0, help="seed of the 0.5/0.25/0.25 caption choice")
    e.add_argument("--vae", default=None, help="shards: precompute first-frame VAE latents with this VAE folder")
    e.add_argument("--latent-size", type=_latent_size, default=None, help="HEIGHTxWIDTH of the latent input")
    e.add_argument("--image-encoder", default=None,
                   help="shards: precompute first-frame CLIP image embeddings with this image encoder folder")
    e.add_argument("--device", default="cpu", help="device of --vae / --image-encoder (default cpu)")
    e.add_argument("--format", default="auto", choices=["auto", "parquet", "jsonl"], help="index table format")
    e.add_argument("--reencode", action="store_true", help="re-encode (H.264) instead of stream copy")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_export)

    s = csub.add_parser("score", help="CLIP text-image similarity, aesthetics and OCR text area on each clip's "
                                      "first/middle/last frames (resumable)")
    s.add_argument("--out", required=True, help="the manifest folder of `curate run`")
    s.add_argument("--clip-model", default=None,
                   help="a transformers CLIPModel folder, or a folder with image_encoder/ text_encoder/ tokenizer/")
    s.add_argument("--image-encoder", default=None,
                   help="instead of --clip-model: an image encoder svdc loads (e.g. an SVD checkpoint: ViT-H/14)")
    s.add_argument("--text-encoder", default=None,
                   help="with --image-encoder: a text tower with its projection (e.g. an SD 2.x single file)")
    s.add_argument("--tokenizer", default=None, help="with --image-encoder: a CLIP tokenizer folder")
    s.add_argument("--aesthetic-head", default=None, help=".npz/.safetensors aesthetic head over --clip-model")
    s.add_argument("--aesthetic-activation", default="none", choices=["none", "relu"],
                   help="activation between the head's layers (none for the LAION heads)")
    s.add_argument("--captions", default=None, help="JSON Lines: {clip_id|video_id, captions: {role: text}}")
    s.add_argument("--ocr", default="none", choices=["none", "rapidocr"], help="text detector (svdc[ocr])")
    s.add_argument("--ocr-side", type=int, default=736, help="text detector input side length (default 736)")
    s.add_argument("--ocr-limit-type", default="min", choices=["min", "max"],
                   help="--ocr-side applies to the short (min) or long (max) side")
    s.add_argument("--device", default="cpu", help="device of the CLIP model (default cpu)")
    s.add_argument("--workers", type=int, default=1, help="processes (or Ray actors), one video each (default 1)")
    s.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local process pool (default) or Ray actors through svdc.runner (svdc[ray])")
    s.add_argument("--address", default=None, help="Ray: the cluster's address (default: a local Ray)")
    s.add_argument("--cpus-per-worker", type=_float, default=None, help="Ray: CPUs per actor (default 1)")
    s.add_argument("--gpus-per-worker", type=_float, default=None, help="Ray: GPUs per actor (default 0)")
    s.add_argument("--format", default="auto", choices=["auto", "parquet", "jsonl"], help="table format")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_score)

    f = csub.add_parser("filter", help="absolute and percentile thresholds per score -> decisions + report")
    f.add_argument("--out", required=True, help="the manifest folder")
    f.add_argument("--svd", action="store_true", help="the SVD paper's cuts: motion 25 %%, aesthetic 25 %%, "
                                                      "clip_sim 50 %% lowest, text_ratio 25 %% highest")
    f.add_argument("--min", action="append", metavar="SCORE=VALUE", help="keep clips with SCORE >= VALUE")
    f.add_argument("--max", action="append", metavar="SCORE=VALUE", help="keep clips with SCORE <= VALUE")
    f.add_argument("--drop-lowest", action="append", metavar="SCORE=FRACTION", help="drop the lowest fraction")
    f.add_argument("--drop-highest", action="append", metavar="SCORE=FRACTION", help="drop the highest fraction")
    f.add_argument("--on-missing", default="raise", choices=["raise", "drop", "keep"],
                   help="clips without a finite score: error (default), drop or keep them")
    f.add_argument("--no-plots", action="store_true", help="no PNG histograms (they need matplotlib)")
    f.add_argument("--format", default="auto", choices=["auto", "parquet", "jsonl"], help="table format")
    f.set_defaults(func=_cmd_filter)

    o = csub.add_parser("elo", help="Elo ratings with bootstrap intervals from pairwise votes (CSV: model_a, "
                                    "model_b, winner)")
    o.add_argument("votes", help="CSV with model_a, model_b, winner (a, b, tie or a model name)")
    o.add_argument("--k", type=_float, default=1.0, help="Elo K factor (default 1, as in the SVD paper)")
    o.add_argument("--initial", type=_float, default=1000.0, help="initial rating (default 1000)")
    o.add_argument("--orderings", type=int, default=1000, help="bootstrap orderings of the votes (default 1000)")
    o.add_argument("--seed", type=int, default=0, help="seed of the orderings")
    o.add_argument("--output", default=None, help="write the ratings as CSV here")
    o.set_defaults(func=_cmd_elo)
