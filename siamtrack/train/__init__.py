"""Training: `train(TrainOptions(config="experiments/siamfc_alexnet.yaml", ...))` runs what `siamtrack train` and
`torchrun -m siamtrack.train` run, in one process or as one rank of DistributedDataParallel."""
from .options import TrainOptions


def train(options: TrainOptions) -> int:
    from .trainer import train as run
    return run(options)


__all__ = ["TrainOptions", "train"]
