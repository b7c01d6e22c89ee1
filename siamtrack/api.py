"""Build trackers from zoo names, checkpoint files or export folders."""
from __future__ import annotations

from . import zoo
from .errors import ConfigError
from .loader import load_model
from .trackers.opencv import is_opencv_name, make_opencv_tracker


def make_tracker(model, cfg, device, **kwargs):
    """A tracker of the type the config names, over an already-built model in eval mode on `device`."""
    kind = cfg.tracker.type
    if kind == "siamfc":
        from .trackers.siamfc import SiamFCTracker
        return SiamFCTracker(model, cfg.tracker, device, **kwargs)
    if kind == "siamrpn":
        from .trackers.siamrpn import SiamRPNTracker
        return SiamRPNTracker(model, cfg.tracker, device, **kwargs)
    if kind == "siamban":
        from .trackers.siamban import SiamBANTracker
        return SiamBANTracker(model, cfg.tracker, device, **kwargs)
    raise ConfigError(f"unknown tracker type {kind!r}")


def load_tracker(name_or_path=None, device="auto", backend="auto", precision="auto", **kwargs):
    """A ready tracker: `load_tracker("siamfc-alexnet")` or `load_tracker("run/best.pth", device="cpu")`.
    With no name, the default shipped model. `backend` "auto" (onnxruntime int8 on a CPU where onnxruntime is
    installed, else torch fp32: runtime.resolve_backend), "torch" (BatchNorm folded, channels-last; `precision`
    fp32 or bf16) or "onnxruntime" (fp32 or int8; exports, and quantizes, into a cache the first time; also accepts
    a `siamtrack export` folder).
    An OpenCV baseline name (opencv-mil, opencv-nano, ...) gives that baseline; `kwargs` then name its model files
    (nano_backbone, nano_head, vit_net) and the model arguments do not apply."""
    if is_opencv_name(name_or_path):
        return make_opencv_tracker(name_or_path, **kwargs)
    net, cfg, _ = load_model(name_or_path or zoo.default_model(), device, backend, precision)
    return make_tracker(net, cfg, net.device, **kwargs)


__all__ = ["load_model", "load_tracker", "make_tracker"]
