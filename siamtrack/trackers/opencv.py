"""OpenCV's own trackers behind our contract (`init_many(frame, boxes)`, `update_many(frame)` and their one-target
views `init` / `update`), as baselines. cv2 trackers follow one target each: K targets are K cv2 trackers.

OpenCV trackers answer ok=False on a frame they cannot follow instead of raising: that maps to state "lost" with the
last good box kept, which is also what a user of ours would expect on screen. Model files of the DNN trackers (Nano,
ViT) are never shipped with siamtrack: the caller names them, by argument or environment variable.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import cv2
import numpy as np

from ..crops import as_bgr_uint8
from ..errors import BoxError, CheckpointError, ConfigError
from .base import LOST, TRACKING, TrackResult, check_box

NANO_ENV = ("SIAMTRACK_NANO_BACKBONE", "SIAMTRACK_NANO_HEAD")
VIT_ENV = "SIAMTRACK_VIT_NET"
CONTRIB_ONLY = {"opencv-kcf": "TrackerKCF", "opencv-csrt": "TrackerCSRT"}
NAMES = ("opencv-mil", "opencv-nano", "opencv-vit", "opencv-kcf", "opencv-csrt")


def is_opencv_name(name) -> bool:
    return str(name) in NAMES


class OpenCVTracker:
    """Wraps a factory of cv2 trackers; fresh cv2 objects on every init, since cv2 trackers cannot be re-initialised
    reliably across versions."""

    def __init__(self, name, factory, seed=0):
        self.name = name
        self.seed = seed
        self._factory = factory
        self._cv = []
        self._boxes = []

    def init(self, frame, box) -> TrackResult:
        return self.init_many(frame, [box])[0]

    def update(self, frame) -> TrackResult:
        return self.update_many(frame)[0]

    def init_many(self, frame, boxes) -> list:
        frame = as_bgr_uint8(frame)
        h, w = frame.shape[:2]
        if len(boxes) == 0:
            raise BoxError("no initial box given")
        checked = [check_box(b, w, h) for b in boxes]
        # MIL draws its Haar features with the C library's rand(): reseeding it first makes a result independent of
        # what ran before in the process (so --workers N matches --workers 1, and reruns match).
        _seed_c_rand(self.seed)
        self._cv = [self._factory() for _ in checked]
        for cv, b in zip(self._cv, checked):
            # cv2 trackers take integer pixel rectangles.
            cv.init(frame, tuple(int(round(v)) for v in b))
        self._boxes = checked
        return [TrackResult(b.copy(), 1.0) for b in checked]

    def update_many(self, frame) -> list:
        if not self._cv:
            raise RuntimeError("update() called before init()")
        frame = as_bgr_uint8(frame)
        return [self._update_one(i, frame) for i in range(len(self._cv))]

    def _update_one(self, i, frame) -> TrackResult:
        ok, rect = self._cv[i].update(frame)
        if not ok:
            return TrackResult(self._boxes[i].copy(), 0.0, LOST)
        self._boxes[i] = np.asarray(rect, dtype=np.float64).reshape(4)
        get = getattr(self._cv[i], "getTrackingScore", None)
        return TrackResult(self._boxes[i].copy(), float(get()) if get is not None else 1.0, TRACKING)


def _seed_c_rand(seed):
    try:
        ctypes.CDLL(None).srand(int(seed))
    except (OSError, AttributeError):  # no C library symbols to reach (some Windows builds): stay unseeded
        pass


def _model_file(path, what, env):
    if not path:
        raise ConfigError(f"{what} needs its ONNX file: pass it on the command line or set ${env}")
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what} model file not found: {p}")
    return str(p)


def _nano_files(backbone, head):
    return (_model_file(backbone or os.environ.get(NANO_ENV[0]), "opencv-nano backbone", NANO_ENV[0]),
            _model_file(head or os.environ.get(NANO_ENV[1]), "opencv-nano head", NANO_ENV[1]))


def _vit_file(net):
    return _model_file(net or os.environ.get(VIT_ENV), "opencv-vit", VIT_ENV)


def model_files(name, nano_backbone=None, nano_head=None, vit_net=None) -> tuple:
    """The ONNX files baseline `name` reads, resolved as make_opencv_tracker resolves them (none for MIL, KCF,
    CSRT)."""
    if name == "opencv-nano":
        return _nano_files(nano_backbone, nano_head)
    if name == "opencv-vit":
        return (_vit_file(vit_net),)
    return ()


def _nano_factory(backbone, head):
    backbone, head = _nano_files(backbone, head)

    def make():
        p = cv2.TrackerNano_Params()
        p.backbone, p.neckhead = backbone, head
        return cv2.TrackerNano_create(p)
    make()  # fail now, with the file names, rather than on the first sequence
    return make


def _vit_factory(net):
    net = _vit_file(net)

    def make():
        p = cv2.TrackerVit_Params()
        p.net = net
        return cv2.TrackerVit_create(p)
    make()
    return make


def make_opencv_tracker(name, nano_backbone=None, nano_head=None, vit_net=None) -> OpenCVTracker:
    """An OpenCV baseline by name: opencv-mil, opencv-nano, opencv-vit, opencv-kcf, opencv-csrt."""
    if name == "opencv-mil":
        return OpenCVTracker(name, cv2.TrackerMIL_create)
    if name == "opencv-nano":
        return OpenCVTracker(name, _nano_factory(nano_backbone, nano_head))
    if name == "opencv-vit":
        return OpenCVTracker(name, _vit_factory(vit_net))
    if name in CONTRIB_ONLY:
        cls = CONTRIB_ONLY[name]
        factory = getattr(cv2, cls + "_create", None) or getattr(getattr(cv2, "legacy", None), cls + "_create", None)
        if factory is None:
            raise ConfigError(f"{name} needs cv2.{cls}, which only opencv-contrib-python provides (OpenCV "
                              f"{cv2.__version__} here lacks it; replace opencv-python with opencv-contrib-python, "
                              f"never install both)")
        return OpenCVTracker(name, factory)
    raise ConfigError(f"unknown OpenCV tracker {name!r}; known: {', '.join(NAMES)}")
