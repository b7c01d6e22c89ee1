"""One-shot detection: an exemplar, boxed once in one frame, searched for over whole other images.

The exemplar is embedded once (the tracker's own `init`). A query image is searched at several scales; scale s means
"the object appears s times its template size", so the search side there is s times the template's search side and
the object lands in the 255 crop at the size the network saw it in the exemplar. At each scale the frame is covered by
search crops whose centres are `tile_step` x the search side apart (the response covers only the middle ~0.5-0.7 of a
crop), all crops of an image go through the network in batches, and every crop's output is decoded by the model's own
head: RPN anchors + offsets for SiamRPN, the response peak at the scale's size for SiamFC. Candidates from all tiles
and scales then go through one greedy non-maximum suppression, best first.

Boxes are (x, y, w, h), 0-based pixels, top-left corner (siamtrack.boxes); frames are BGR uint8 HxWx3.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from . import boxes as B
from .crops import as_bgr_uint8
from .errors import BoxError, ConfigError

# Scales 2^(k/2), k = -2..2: half to twice the template size, a factor sqrt(2) apart. The RPN regresses the size within
# a step; SiamFC's box is the scale's size, so its IoU loses up to ~0.7 between steps.
DEFAULT_SCALES = (0.5, 0.71, 1.0, 1.41, 2.0)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: score = sigmoid(slope * logit(raw) + bias), raw the head's score (RPN softmax, SiamFC sigmoid,
    opencv correlation clipped to [0, 1]). Fitted by `tools/match_eval.py --fit-calibration` on the train split's
    protocol (siamtrack/eval/matching.py: as many images without the object as with it), so a calibrated score is
    the probability that the match is in an image that holds the object at even prior odds: min_score 0.5 means
    "more likely there than not". Monotone, so it never reorders matches within an image."""
    slope: float = 1.0
    bias: float = 0.0

    def __call__(self, raw):
        p = np.clip(np.asarray(raw, dtype=np.float64), 1e-6, 1 - 1e-6)
        return 1.0 / (1.0 + np.exp(-(self.slope * (np.log(p) - np.log1p(-p)) + self.bias)))


IDENTITY = Calibration()
# Fitted (siamtrack.eval.matching.fit_calibration) on the raw-score records of `python tools/match_eval.py --root
# ../sot-all --split train --max-seqs N --json ...` with the default options, one thread: N = 20 sequences (160
# queries) for siamrpn-lite, siamrpn-lite-s8 (two threads), siamrpn-lite-pw (session 30) and opencv, 16 (128) for
# siamfc-alexnet.
# `--fit-calibration` refits and prints these.
# Another checkpoint's scores keep their raw meaning (IDENTITY) until calibrated the same way.
CALIBRATIONS = {
    "siamrpn-lite": Calibration(slope=0.8205, bias=-4.3299),   # refitted for the session-7 weights
    "siamrpn-lite-s8": Calibration(slope=0.7748, bias=-4.5637),
    "siamrpn-lite-pw": Calibration(slope=0.6765, bias=-3.6818),
    "siamfc-alexnet": Calibration(slope=0.2071, bias=-0.6157),
    "opencv": Calibration(slope=1.1953, bias=-0.1318),
}


@dataclass(frozen=True)
class MatchOptions:
    top_k: int = 5                 # matches returned per image, best first
    min_score: float = 0.0         # matches scoring below this are dropped ("not in this image")
    scales: tuple = DEFAULT_SCALES
    # Tile spacing as a share of the search side. None: the share the response covers, R * stride / search_size
    # (17 * 8 / 255 = 0.53 for SiamFC-AlexNet, 11 * 16 / 255 = 0.69 for siamrpn-lite), so tiles' responses abut.
    tile_step: float = None
    nms_iou: float = 0.3           # a candidate overlapping a better one by more than this is suppressed
    per_crop: int = 4              # candidates each search crop contributes before the NMS
    batch_size: int = 32           # search crops per forward pass
    min_side: float = 8.0          # scales where the object would be smaller than this (pixels) are skipped
    # At most this many search crops per image: where the scales' tiles would need more (a small object in a large
    # frame: tiles grow with 1 / (object side)^2), every scale's tiles are spread out by the same factor. 96 crops
    # cost ~1.7 s (siamrpn-lite) / ~3.7 s (siamfc-alexnet) on one CPU thread.
    max_crops: int = 96
    calibration: Calibration = None   # None: the model's entry in CALIBRATIONS (IDENTITY where it has none)

    def __post_init__(self):
        if min(self.top_k, self.per_crop, self.batch_size, self.max_crops) < 1:
            raise ConfigError("match: top_k, per_crop, batch_size and max_crops must be >= 1")
        if not self.scales or any(not np.isfinite(s) or s <= 0 for s in self.scales):
            raise ConfigError(f"match: scales must be positive numbers, got {self.scales!r}")
        if (self.tile_step is not None and self.tile_step <= 0) or not 0 < self.nms_iou <= 1:
            raise ConfigError("match: need tile_step > 0 and 0 < nms_iou <= 1")


@dataclass
class Match:
    box: np.ndarray        # (x, y, w, h), 0-based pixels
    score: float           # in [0, 1], comparable across images (see `calibrate`)

    def to_dict(self):
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4)}


@dataclass
class _Candidates:
    """Boxes (N, 4) xywh in frame pixels and their scores (N,), before suppression."""
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def nms(boxes, scores, iou_above, keep):
    """Indices of at most `keep` boxes, best score first, none overlapping a kept one by IoU > `iou_above`."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while len(order) and len(kept) < keep:
        i = order[0]
        kept.append(i)
        rest = order[1:]
        order = rest[B.iou(boxes[i][None], boxes[rest]) <= iou_above]
    return np.array(kept, dtype=np.int64)


# `siamtrack match`'s default. siamrpn-lite-s8 and siamrpn-lite-pw find the object more often on val (top-1 0.734
# and 0.781 against 0.711, README) but rank a look-alike first on the generated scene of tests/test_match.py, where
# the template object reappears rotated, scaled and recoloured among others of its kind.
MATCH_MODEL = "siamrpn-lite"


def default_match_model():
    """MATCH_MODEL where its weights are shipped, else the first shipped zoo model (in zoo order) whose scores have a
    calibration, so that a match's score is a probability; else the tracking default."""
    from .zoo import MODELS, default_model, weights_path
    for name in (MATCH_MODEL, *MODELS):
        if name in CALIBRATIONS and weights_path(name).is_file():
            return name
    return default_model()


def calibration_of(model_name, options):
    if options.calibration is not None:
        return options.calibration
    return CALIBRATIONS.get(model_name, IDENTITY)


def tile_centers(width, height, step):
    """(T, 2) centres covering a width x height frame, at most `step` pixels apart, symmetric about its middle."""
    nx, ny = max(1, int(np.ceil(width / step))), max(1, int(np.ceil(height / step)))
    xs = (np.arange(nx) + 0.5) * (width / nx)
    ys = (np.arange(ny) + 0.5) * (height / ny)
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def top_matches(cands, width, height, options, calibration=IDENTITY) -> list:
    """The candidates after NMS, clipped to the frame, calibrated, above min_score, best first."""
    scores = calibration(cands.scores)
    ok = scores >= options.min_score
    boxes, scores = B.clip_xywh(cands.boxes[ok], width, height), scores[ok]
    keep = nms(boxes, scores, options.nms_iou, options.top_k)
    return [Match(box=boxes[i], score=float(scores[i])) for i in keep]


class SiameseMatcher:
    """`set_template(frame, box)` once, then `find(image)` per query image -> list of Match, best first."""

    method = "siamese"

    def __init__(self, model=None, device="auto", backend="torch", precision="fp32", options=MatchOptions()):
        from .api import load_tracker
        self.model_name = str(model) if model is not None else default_match_model()
        # The tracker is used for what it shares with matching: the exemplar embedding (init), cropping and the
        # network; its frame-to-frame post-processing never runs here.
        self.tracker = load_tracker(self.model_name, device=device, backend=backend, precision=precision)
        self.options = options
        self.kind = self.tracker.name        # "siamfc", "siamrpn" or "siamban": which head decodes the output

    def set_template(self, frame, box):
        self.tracker.init(frame, box)        # validates the box, embeds the exemplar once
        self.template_size = np.asarray(box, dtype=np.float64)[2:4].copy()
        t = self.tracker.cfg
        from .crops import exemplar_size
        self.search_side = exemplar_size(*self.template_size, t.context_amount) * t.search_size / t.exemplar_size
        # One crop on the template itself: the response size (for the tile step) and the score the exemplar gets
        # where it was boxed, the reference a calibration can compare other images' scores with.
        frame = as_bgr_uint8(frame)
        center = np.asarray(box, dtype=np.float64)[:2] + self.template_size / 2
        boxes, scores, r = self._run(frame, center[None], np.array([1.0]))
        self.response_size = r
        self.reference_score = float(scores.max())

    @torch.inference_mode()
    def find(self, image) -> list:
        frame = as_bgr_uint8(image)
        h, w = frame.shape[:2]
        return top_matches(self.candidates(frame), w, h, self.options, calibration_of(self.model_name, self.options))

    def _crops_per_scale(self, width, height):
        """[(scale, (T, 2) tile centres)] for the scales at which the object is at least min_side pixels."""
        o = self.options
        scales = [s for s in o.scales if min(self.template_size) * s >= o.min_side]
        spread = 1.0
        while True:
            out = [(s, tile_centers(width, height, spread * self.tile_step * self.search_side * s)) for s in scales]
            if sum(len(c) for _, c in out) <= o.max_crops:
                return out
            spread *= 1.1

    @property
    def tile_step(self):
        if self.options.tile_step is not None:
            return self.options.tile_step
        return self.response_size * self.tracker.model.stride / self.tracker.cfg.search_size

    def candidates(self, frame) -> _Candidates:
        h, w = frame.shape[:2]
        plan = self._crops_per_scale(w, h)
        if not plan:
            return _Candidates()
        centers = np.concatenate([c for _, c in plan])
        scales = np.concatenate([np.full(len(c), s) for s, c in plan])
        boxes, scores, _ = self._run(frame, centers, scales)
        return _Candidates(boxes, scores)

    @torch.inference_mode()
    def _run(self, frame, centers, scales):
        """Search crops at `centers` (N, 2) and `scales` (N,) through the network in batches -> the best `per_crop`
        candidates of each crop: boxes (M, 4) xywh frame pixels, scores (M,), and the response size."""
        t, o, tr = self.tracker.cfg, self.options, self.tracker
        sides = self.search_side * scales
        prepared, pad = tr._prepare_frame(frame), tr._frame_mean(frame)
        boxes, scores = [], []
        for lo in range(0, len(sides), o.batch_size):
            sl = slice(lo, lo + o.batch_size)
            x = tr._crop(prepared, centers[sl], sides[sl], t.search_size, pad)
            crop_boxes, crop_scores, r = self._decode(tr.model.track(x, tr.kernels))
            # crop pixels (cxcywh about the crop's top-left) -> frame pixels
            per_px = (sides[sl] / t.search_size)[:, None, None]
            c = centers[sl][:, None, :] + (crop_boxes[..., :2] - t.search_size / 2) * per_px
            frame_boxes = B.cxcywh_to_xywh(np.concatenate([c, crop_boxes[..., 2:] * per_px], axis=-1))
            best = np.argsort(-crop_scores, axis=1)[:, :o.per_crop]
            rows = np.arange(len(best))[:, None]
            boxes.append(frame_boxes[rows, best].reshape(-1, 4))
            scores.append(crop_scores[rows, best].reshape(-1))
        return np.concatenate(boxes), np.concatenate(scores), r

    def _decode(self, output):
        """-> boxes (N, C, 4) cxcywh in search-crop pixels, scores (N, C) in [0, 1] (C candidates per crop) and the
        response size R."""
        tr, t = self.tracker, self.tracker.cfg
        if self.kind in ("siamrpn", "siamban"):
            # the tracker's own decoding: its anchors or points, the layout its head was trained on
            score, boxes, r = tr.candidates(output)
            return boxes, score, r
        if self.kind == "siamfc":
            raw = output[:, 0].float().cpu().numpy().astype(np.float64)      # (N, R, R)
            n, r = raw.shape[0], raw.shape[-1]
            # response cell i looks at search-crop pixel search_size / 2 + (i - (R - 1) / 2) * stride
            offs = t.search_size / 2 + (np.arange(r) - (r - 1) / 2) * tr.model.stride
            cy, cx = np.meshgrid(offs, offs, indexing="ij")
            # the object at the crop's scale has its template size in crop pixels: the crop is s x the template's
            size = self.template_size * t.search_size / self.search_side
            boxes = np.empty((n, r * r, 4))
            boxes[..., 0], boxes[..., 1] = cx.reshape(-1), cy.reshape(-1)
            boxes[..., 2:] = size
            return boxes, 1.0 / (1.0 + np.exp(-raw.reshape(n, -1))), r
        raise ConfigError(f"match: no decoder for tracker type {self.kind!r}")


class OpenCVMatcher:
    """The baseline users have today: cv2.matchTemplate with normalised correlation (TM_CCOEFF_NORMED) of the boxed
    patch, resized to each scale, over the whole image. Score: the correlation clipped to [0, 1]."""

    method = "opencv"

    def __init__(self, options=MatchOptions()):
        self.options = options
        self.model_name = "opencv"

    def set_template(self, frame, box):
        from .trackers.base import check_box
        frame = as_bgr_uint8(frame)
        b = np.round(check_box(box, frame.shape[1], frame.shape[0])).astype(int)
        x0, y0 = max(b[0], 0), max(b[1], 0)
        x1, y1 = min(b[0] + b[2], frame.shape[1]), min(b[1] + b[3], frame.shape[0])
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise BoxError(f"box {np.asarray(box).tolist()} holds no pixels of the template")
        self.patch = frame[y0:y1, x0:x1]

    def find(self, image) -> list:
        frame = as_bgr_uint8(image)
        h, w = frame.shape[:2]
        o = self.options
        boxes, scores = [], []
        for s in o.scales:
            pw, ph = int(round(self.patch.shape[1] * s)), int(round(self.patch.shape[0] * s))
            if min(pw, ph) < o.min_side or pw > w or ph > h:
                continue
            patch = cv2.resize(self.patch, (pw, ph), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            resp = cv2.matchTemplate(frame, patch, cv2.TM_CCOEFF_NORMED)
            resp = np.nan_to_num(resp, nan=-1.0)
            # local maxima only (3x3), the strongest few per scale
            peaks = np.flatnonzero((resp >= cv2.dilate(resp, np.ones((3, 3), np.uint8))).ravel())
            peaks = peaks[np.argsort(-resp.ravel()[peaks])[:o.per_crop * 8]]
            ys, xs = np.unravel_index(peaks, resp.shape)
            boxes.append(np.stack([xs, ys, np.full(len(xs), pw), np.full(len(xs), ph)], axis=1).astype(np.float64))
            scores.append(np.clip(resp.ravel()[peaks], 0.0, 1.0).astype(np.float64))
        if not boxes:
            return []
        return top_matches(_Candidates(np.concatenate(boxes), np.concatenate(scores)), w, h, o,
                           calibration_of(self.model_name, o))


METHODS = ("siamese", "opencv")


def make_matcher(method="siamese", model=None, device="auto", backend="torch", precision="fp32",
                 options=MatchOptions()):
    """A matcher for `method`: "siamese" (a zoo model or checkpoint, default the best shipped one) or "opencv"."""
    if method == "siamese":
        return SiameseMatcher(model, device=device, backend=backend, precision=precision, options=options)
    if method == "opencv":
        return OpenCVMatcher(options)
    raise ConfigError(f"unknown match method {method!r}: use one of {', '.join(METHODS)}")


def read_frame(image):
    """A frame, or the path of an image file, -> BGR uint8 frame."""
    if isinstance(image, np.ndarray):
        return as_bgr_uint8(image)
    from .data.sources import read_image
    from .errors import SourceError
    from pathlib import Path
    if not Path(image).is_file():
        raise SourceError(f"image not found: {image}")
    frame = read_image(image)
    if frame is None:
        raise SourceError(f"cannot decode image {image}")
    return as_bgr_uint8(frame)


def match(template, box, images, model=None, top_k=5, min_score=0.0, scales=DEFAULT_SCALES, method="siamese",
          device="auto", **options):
    """Find the object boxed in `template` (a BGR frame or image path; `box` x, y, w, h, 0-based pixels) in
    `images`: one frame or path -> a list of Match, best first; a list of them -> one such list per image.

    `model`: a zoo name, a checkpoint path or a matcher from `make_matcher` (reused, no reloading); default the best
    shipped model. `method="opencv"`: the cv2.matchTemplate baseline at the same scales. Other keyword arguments
    are MatchOptions fields (tile_step, nms_iou, max_crops, ...)."""
    opts = MatchOptions(top_k=top_k, min_score=min_score, scales=tuple(scales), **options)
    if isinstance(model, (SiameseMatcher, OpenCVMatcher)):
        matcher = model
        matcher.options = opts
    else:
        matcher = make_matcher(method, model, device=device, options=opts)
    matcher.set_template(read_frame(template), box)
    single = isinstance(images, (np.ndarray, str)) or hasattr(images, "__fspath__")
    found = [matcher.find(read_frame(im)) for im in ([images] if single else images)]
    return found[0] if single else found
