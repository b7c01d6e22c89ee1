"""Run our trackers inside the official got10k toolkit (ExperimentOTB, ExperimentGOT10k, ...).

    from got10k.experiments import ExperimentGOT10k
    from siamtrack.eval.got10k_adapter import Got10kTracker
    tracker = Got10kTracker.from_name("siamfc-alexnet", device="cpu")
    e = ExperimentGOT10k("data/GOT-10k", subset="val"); e.run(tracker); e.report([tracker.name])

The toolkit hands over RGB PIL images and 0-based (x, y, w, h) boxes and wants a box back; our trackers take BGR
numpy frames, so the one conversion lives here. Mind that ExperimentOTB downloads OTB whenever one of its 100
sequences is missing from root_dir: for a partial folder use `siamtrack benchmark`, which writes the same layout.
"""
from __future__ import annotations

import numpy as np
from got10k.trackers import Tracker as _ToolkitTracker


def pil_to_bgr(image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image)
    return np.ascontiguousarray(rgb[:, :, ::-1])


class Got10kTracker(_ToolkitTracker):
    def __init__(self, tracker, name, is_deterministic=True):
        super().__init__(name=name, is_deterministic=is_deterministic)
        self.tracker = tracker

    @classmethod
    def from_name(cls, name_or_path, device="auto", **opencv_files):
        """A zoo name, checkpoint path or OpenCV baseline (opencv_files: nano_backbone, nano_head, vit_net)."""
        from .bench import TrackerSpec, tracker_factory
        spec = TrackerSpec(name_or_path, device, **opencv_files)
        return cls(tracker_factory(spec)(), spec.label)

    def init(self, image, box):
        self.tracker.init(pil_to_bgr(image), np.asarray(box, dtype=np.float64))

    def update(self, image):
        return np.asarray(self.tracker.update(pil_to_bgr(image)).box, dtype=np.float64)
