"""Training-crop augmentation (as SiamFC trains): stretch, scale, shift, colour jitter, grayscale, blur.

Crops keep the tracking geometry: the exemplar is the square of side s_z around the target resampled to 127, the
search crop the square of side s_z * S / 127 resampled to S, so one crop pixel spans the same frame distance in
training and in tracking. Stretch scales the two axes independently, so the crop is cut with the affine of
`siamtrack.crops` taken per axis rather than with `crop_numpy`, which is square only.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..crops import _inverse_affine, exemplar_size


@dataclass
class CropParams:
    stretch: float = 0.05       # each axis scaled by a factor in [1 - stretch, 1 + stretch]
    shift: float = 0.0          # target centre moved by up to this many output pixels on each axis
    gray_prob: float = 0.1
    blur_prob: float = 0.1
    color: float = 0.1          # brightness/contrast/saturation jitter amplitude
    # both axes scaled together by a factor log-uniform in [1 / (1 + scale), 1 + scale]: the target's size in the
    # search crop then varies as it does while tracking with a size estimate that is off, so the box regression has
    # to read the size from the image (stretch alone, +-15 % per axis, left it regressing to the prior)
    scale: float = 0.0

    def key(self) -> str:
        """What a trunk-feature bank's fingerprint records of these settings; `scale` only when set, so banks drawn
        before it existed keep their fingerprint."""
        text = repr(self)
        return text.replace(", scale=0.0)", ")") if self.scale == 0 else text


def stretched_crop(frame, cx, cy, size_x, size_y, out_size, pad_color):
    """Crop of frame pixels size_x by size_y centred on (cx, cy), resampled to out_size square (uint8 BGR)."""
    m = np.vstack([_inverse_affine(cx, cy, size_x, out_size)[0], _inverse_affine(cx, cy, size_y, out_size)[1]])
    return cv2.warpAffine(frame, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(c) for c in pad_color))


def augmented_crop(frame, box, out_size, exemplar_out, context, params: CropParams, rng, pad_color=None):
    """Cut an augmented crop around `box` (x, y, w, h) of a BGR frame.

    The crop side is s_z * out_size / exemplar_out (s_z from the box and context), stretched per axis and shifted.
    Returns (crop uint8 out x out x 3 BGR, target box (x, y, w, h) in crop pixels).
    """
    x, y, w, h = (float(v) for v in box)
    tcx, tcy = x + w / 2, y + h / 2
    side = exemplar_size(w, h, context) * out_size / exemplar_out
    fx, fy = 1.0 + rng.uniform(-params.stretch, params.stretch, size=2)
    size_x, size_y = side * fx, side * fy
    dx, dy = rng.uniform(-params.shift, params.shift, size=2) if params.shift > 0 else (0.0, 0.0)
    if params.scale > 0:
        f = float(np.exp(rng.uniform(-np.log1p(params.scale), np.log1p(params.scale))))
        size_x, size_y = size_x * f, size_y * f
    # The crop centre moves opposite to the shift so that the target appears shifted by (dx, dy) in the crop.
    ccx, ccy = tcx - dx * size_x / out_size, tcy - dy * size_y / out_size
    if pad_color is None:
        pad_color = frame.reshape(-1, 3).mean(axis=0)
    crop = stretched_crop(frame, ccx, ccy, size_x, size_y, out_size, pad_color)
    ax, ay = size_x / out_size, size_y / out_size
    bw, bh = w / ax, h / ay
    bcx, bcy = (tcx - ccx) / ax + out_size / 2, (tcy - ccy) / ay + out_size / 2
    return crop, np.array([bcx - bw / 2, bcy - bh / 2, bw, bh], dtype=np.float32)


def color_jitter(crop, params: CropParams, rng):
    """Brightness, contrast and saturation jitter, occasional grayscale and blur; uint8 BGR in, uint8 BGR out."""
    img = crop.astype(np.float32)
    if params.color > 0:
        a = params.color
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - a, 1 + a) + mean * rng.uniform(1 - a, 1 + a)
        gray = img.mean(axis=2, keepdims=True)
        img = gray + (img - gray) * rng.uniform(1 - a, 1 + a)
        img = img * rng.uniform(1 - a / 2, 1 + a / 2, size=3).astype(np.float32)  # per-channel tint
    if rng.random() < params.gray_prob:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < params.blur_prob:
        sigma = rng.uniform(0.5, 1.5)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img
