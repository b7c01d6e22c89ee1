"""`siamtrack distill`: distil a trained tracker's trunk into a student experiment's slimmer trunk."""
from __future__ import annotations

from ..train.distill import DESCRIPTION as HELP, DistillOptions, add_arguments

__all__ = ["HELP", "add_arguments", "run"]


def run(args) -> int:
    from ..train.distill import distill
    return distill(DistillOptions.from_args(args))
