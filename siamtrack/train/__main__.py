"""`python -m siamtrack.train ...` and `torchrun --nproc_per_node N -m siamtrack.train ...`: the arguments of
`siamtrack train`, with bad input reported as one line and exit code 2 as the CLI does."""
import argparse
import sys

from ..errors import SiamtrackError
from .options import DESCRIPTION, TrainOptions, add_arguments
from .trainer import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m siamtrack.train", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return train(TrainOptions.from_args(args))
    except SiamtrackError as e:
        print(f"siamtrack train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
