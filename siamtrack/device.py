"""Pick the compute device once; everything else moves tensors with the device it is handed. Also what the CPU is
(its name and the instruction sets that decide which kernels run), for speed reports and int8 quantization."""
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


# The instruction sets that decide which kernels torch, onnxruntime and OpenCV run.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
             "amx_bf16")


# The libraries whose kernels decide our numbers: OpenCV's resampling feeds every crop (4.14 and 5.0 differ by a grey
# level on ~5 % of crop pixels, enough to flip a sequence on the edge of failure) and runs the OpenCV peers.
LIBRARIES = ("torch", "cv2", "onnxruntime", "numpy")


def library_versions() -> dict:
    """{"torch": "2.13.0+cpu", "cv2": ..., ...}: the versions of LIBRARIES, None for one that is not installed."""
    import importlib
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = None
    return out


def cpu_info() -> dict:
    """{"model": the CPU's name, "flags": the ISA_FLAGS it has} from /proc/cpuinfo (platform's guess elsewhere)."""
    import platform
    name, flags = None, set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name is None:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": name or platform.processor() or platform.machine(),
            "flags": [f for f in ISA_FLAGS if f in flags]}
