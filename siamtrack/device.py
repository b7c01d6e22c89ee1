"""Pick the compute device once; everything else moves tensors with the device it is handed."""
from __future__ import annotations

import torch

from .errors import SiamtrackError


def pick_device(name="auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SiamtrackError("device 'cuda' was asked for but no CUDA device is available (use --device cpu)")
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise SiamtrackError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
