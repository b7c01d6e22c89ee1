"""Thin wrapper: `python tools/benchmark.py ARGS` is `siamtrack benchmark ARGS`.

    python tools/benchmark.py --root ../shared/data/sot --split val --trackers opencv-mil --json val.json
"""
import sys

from siamtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
