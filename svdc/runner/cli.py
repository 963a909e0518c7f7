"""`svdc batch JOBS --out DIR [--backend local|ray] ...`: the command-line face of svdc.runner.run_batch."""
from __future__ import annotations

import argparse

from .run import BACKENDS


def add_batch_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("batch", help="run a manifest of jobs (CSV/JSONL/Parquet) into a folder, resumably, "
                                     "on local processes or on Ray")
    p.add_argument("jobs", help="the job manifest: .csv, .jsonl or .parquet with an 'id' column, the task's input "
                                "column ('image' relative to the manifest, or 'prompt') and optional per-job "
                                "arguments (seed, num_frames, orbit, ...)")
    p.add_argument("--out", required=True, help="output folder: one file per job plus results.jsonl")
    p.add_argument("--backend", default="local", choices=BACKENDS, help="local process pool (default) or Ray")
    p.add_argument("--address", default=None,
                   help="Ray: the cluster's address (host:port, ray://host:port or 'auto'); default a local Ray")
    p.add_argument("--workers", type=int, default=None,
                   help="processes / Ray actors (default: one per CPU core; Ray: per GPU with --gpus-per-worker)")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="CPU threads of each worker (default: the cores divided among the workers; Ray: its CPUs)")
    p.add_argument("--cpus-per-worker", type=float, default=None, help="Ray: CPUs each actor asks for (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray: GPUs each actor asks for (default 0)")
    p.add_argument("--retries", type=int, default=1, help="extra attempts for a failed job (default 1; bad input "
                                                          "such as an unreadable image is not retried)")
    p.add_argument("--workflow", default="image_to_video",
                   help="task kind of rows without a 'workflow' column: image_to_video (default), multiview, "
                        "text_to_image, text_to_video, curation")
    p.add_argument("--model", default=None, help="image_to_video, multiview, text_to_image: a diffusers folder, a "
                                                 "single .safetensors file, or 'tiny' (not for text_to_image)")
    p.add_argument("--image-model", default=None, help="text_to_video: the text-to-image (SD 2.x) pipeline folder")
    p.add_argument("--video-model", default=None, help="text_to_video: the image-to-video (SVD) folder or file")
    p.add_argument("--device", default=None, help='"auto", "cpu" or "cuda[:N]" (Ray GPU actors: "auto")')
    p.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="compute dtype")
    p.add_argument("--preset", default=None, choices=["diffusers", "sgm"], help="default settings preset")
    p.add_argument("--format", default=None, choices=["mp4", "gif", "webp", "png", "jpg"],
                   help="output format: videos mp4 (default), gif, webp; text_to_image png (default), jpg, webp")
    p.add_argument("--orbit-video", default=None,
                   help="multiview: the orbit video's file name in each folder (default orbit.mp4; 'none': no video)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_batch_command)
    return p


def run_batch_command(args) -> int:
    from .run import run_batch

    given = {"model": args.model, "image_model": args.image_model, "video_model": args.video_model,
             "device": args.device, "dtype": args.dtype, "preset": args.preset, "format": args.format,
             "video": args.orbit_video}
    options = {k: v for k, v in given.items() if v is not None}  # the task's defaults for the rest
    if options.get("video") == "none":
        options["video"] = None
    summary = run_batch(args.jobs, args.out, backend=args.backend, workers=args.workers, retries=args.retries,
                        workflow=args.workflow, options=options, threads_per_worker=args.threads_per_worker,
                        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
                        address=args.address, progress=not args.quiet)
    print(summary)
    return 0 if summary.failed == 0 else 1
