"""`siamtrack` command line. Each sub-command lives in siamtrack/commands/<name>.py and provides
`HELP`, `add_arguments(parser)` and `run(args) -> int`.

Every SiamtrackError (bad input of any kind) becomes one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import SiamtrackError

COMMANDS = ["track", "models", "demo", "benchmark", "train", "distill", "speed", "export", "tune", "match"]


def build_parser():
    from . import __version__
    parser = argparse.ArgumentParser(prog="siamtrack", description="Siamese visual object tracking.")
    parser.add_argument("--version", action="version", version=f"siamtrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = importlib.import_module(f"siamtrack.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser




def main(argv=None) -> int:
    # FFmpeg and OpenCV write their own warnings straight to stderr ("moov atom not found"); we report every
    # failure ourselves in one line, so keep theirs quiet unless the user set a level.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if "OPENCV_LOG_LEVEL" not in os.environ:
        import cv2
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SiamtrackError as e:
        print(f"siamtrack {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"siamtrack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
