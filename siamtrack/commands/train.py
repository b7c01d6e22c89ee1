"""`siamtrack train`: train a model from an experiment config on sequence datasets and static images."""
from __future__ import annotations

from ..train.options import DESCRIPTION as HELP, TrainOptions, add_arguments

__all__ = ["HELP", "add_arguments", "run"]


def run(args) -> int:
    from ..train.trainer import train
    return train(TrainOptions.from_args(args))
