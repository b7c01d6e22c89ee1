"""Command-line options that several sub-commands share."""
from __future__ import annotations

from ..trackers.opencv import NANO_ENV, VIT_ENV


def add_opencv_files(p):
    """The model files of the OpenCV DNN baselines (never shipped with siamtrack)."""
    p.add_argument("--nano-backbone", default=None, help=f"NanoTrack backbone ONNX (or ${NANO_ENV[0]})")
    p.add_argument("--nano-head", default=None, help=f"NanoTrack head ONNX (or ${NANO_ENV[1]})")
    p.add_argument("--vit-net", default=None, help=f"OpenCV ViT tracker ONNX (or ${VIT_ENV})")


def opencv_files(args) -> dict:
    return {"nano_backbone": args.nano_backbone, "nano_head": args.nano_head, "vit_net": args.vit_net}
