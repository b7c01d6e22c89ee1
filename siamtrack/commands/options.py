"""Command-line options that several sub-commands share."""
from __future__ import annotations

from ..errors import ConfigError
from ..eval.runner import SRE_JITTERS
from ..runtime import BACKENDS, PRECISIONS
from ..trackers.opencv import NANO_ENV, VIT_ENV


def add_backend_options(p):
    """--backend and --precision of our models (`runtime.resolve_backend` says what "auto" runs)."""
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend: auto (default: onnxruntime int8 on a CPU where onnxruntime is installed, "
                        "else torch fp32), torch or onnxruntime")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (the backend's default: int8 for the auto backend on onnxruntime, else fp32); fp32; "
                        "bf16 (torch, where the hardware has native bf16); int8 (onnxruntime, statically quantized)")


def add_init_jitter(p, help):
    """--init-jitter K: K more runs from OTB's SRE starts (benchmark and tune score them alike); `runs_of` reads it."""
    p.add_argument("--init-jitter", type=int, default=0, metavar="K", help=help)


def runs_of(args) -> int:
    """The runs --init-jitter asks for: the one-pass run and K SRE starts."""
    if not 0 <= args.init_jitter <= len(SRE_JITTERS):
        raise ConfigError(f"--init-jitter must be between 0 and {len(SRE_JITTERS)}")
    return 1 + args.init_jitter


def add_opencv_files(p):
    """The model files of the OpenCV DNN baselines (never shipped with siamtrack)."""
    p.add_argument("--nano-backbone", default=None, help=f"NanoTrack backbone ONNX (or ${NANO_ENV[0]})")
    p.add_argument("--nano-head", default=None, help=f"NanoTrack head ONNX (or ${NANO_ENV[1]})")
    p.add_argument("--vit-net", default=None, help=f"OpenCV ViT tracker ONNX (or ${VIT_ENV})")


def opencv_files(args) -> dict:
    return {"nano_backbone": args.nano_backbone, "nano_head": args.nano_head, "vit_net": args.vit_net}
