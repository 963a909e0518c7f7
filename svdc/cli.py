"""The `svdc` command line: `svdc info` (and later `svdc img2vid`, `svdc demo`)."""
from __future__ import annotations

import argparse
import sys


def _cmd_info(args) -> int:
    from .runtime import format_info, info

    print(format_info(info()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svdc", description="Stable Video Diffusion in C/CUDA.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="build information and a PASS/FAIL line per backend")
    p_info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
