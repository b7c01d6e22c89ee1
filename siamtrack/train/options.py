"""What a training run is asked to do: the typed options of `siamtrack train` and `python -m siamtrack.train`
(torchrun), and the command-line arguments both entry points build them from."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional

from ..data.datasets import FORMATS

DESCRIPTION = ("train a tracker from an experiment YAML (single process, or under torchrun --nproc_per_node N "
               "-m siamtrack.train with DistributedDataParallel)")


@dataclass
class TrainOptions:
    config: str                              # experiment YAML
    data: Optional[List[str]] = None         # training sequence roots; None: the shared data (sot train + coco128)
    data_split: Optional[str] = None
    data_format: str = "auto"
    coco: Optional[str] = None               # still images with boxes (YOLO or COCO layout)
    val_data: Optional[str] = None
    val_split: Optional[str] = None
    no_val: bool = False
    out: Optional[str] = None                # run folder; None: runs/<config name>
    init: Optional[str] = None               # zoo name or checkpoint whose weights the run starts from
    bank_dir: Optional[str] = None           # root of the trunk-feature banks; None: <cache>/banks
    resume: bool = False
    max_steps: Optional[int] = None
    device: str = "auto"
    threads: Optional[int] = None
    # overrides of the config's train section (None: keep the config's value)
    epochs: Optional[int] = None
    pairs_per_epoch: Optional[int] = None
    batch_size: Optional[int] = None
    val_max_frames: Optional[int] = None
    workers: Optional[int] = None
    seed: Optional[int] = None
    no_bf16: bool = False

    @classmethod
    def from_args(cls, args) -> "TrainOptions":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def add_arguments(p):
    p.add_argument("--config", required=True, help="experiment YAML, e.g. experiments/siamfc_alexnet.yaml")
    p.add_argument("--data", nargs="+", metavar="ROOT",
                   help="training sequence roots (OTB, GOT-10k, LaSOT or UAV123 layout); default: the shared "
                        "data beside the repository (sot, split train, plus coco128)")
    p.add_argument("--data-split", help="split of the --data roots (default: train where the root has splits)")
    p.add_argument("--data-format", default="auto", choices=("auto", *FORMATS))
    p.add_argument("--coco", metavar="DIR", help="static images with boxes: images/<split>/ with YOLO labels/ or "
                                                 "COCO instances json")
    p.add_argument("--val-data", metavar="ROOT", help="validation root (default: shared sot, split val)")
    p.add_argument("--val-split", help="split of the validation root (default: val where the root has splits)")
    p.add_argument("--val-max-frames", dest="val_max_frames", type=int,
                   help="override train.val_max_frames (frames tracked per validation sequence)")
    p.add_argument("--no-val", action="store_true", help="skip the epoch-end validation")
    p.add_argument("--out", metavar="DIR", help="run folder for log.csv, val.csv, last.pth, best.pth "
                                                "(default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pth")
    p.add_argument("--init", metavar="MODEL", help="start from these weights instead of the config's initialisation: "
                                                   "a zoo name (e.g. siamrpn-lite) or a checkpoint of the same "
                                                   "architecture, to fine-tune it on your data")
    p.add_argument("--bank-dir", dest="bank_dir", metavar="DIR",
                   help="where frozen-trunk feature banks are kept and shared between runs (default "
                        "~/.cache/siamtrack/banks, or $SIAMTRACK_CACHE/banks)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--pairs-per-epoch", dest="pairs_per_epoch", type=int, help="override train.pairs_per_epoch")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="override train.batch_size (total over "
                                                                      "processes)")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="stop (and save last.pth) after this many steps "
                                                                    "in total")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="torch threads per process")
    p.add_argument("--workers", type=int, help="data-loading worker processes per training process")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--no-bf16", dest="no_bf16", action="store_true", help="train in float32 even if the config "
                                                                           "asks for bf16 autocast")
