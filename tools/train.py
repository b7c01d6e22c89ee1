"""Train a tracker: a thin wrapper of `python -m siamtrack.train` (see `--help`)."""
import sys

from siamtrack.train.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
