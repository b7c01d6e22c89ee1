"""A generated one-shot matching scene (no data needed): an object in a template frame, and a query frame where the
same object appears rotated, scaled and recoloured at a known place among distractor objects."""
from __future__ import annotations

import cv2
import numpy as np


def _background(rng, h, w):
    # smooth low-contrast clutter: upsampled noise, so the objects, not the background, hold the texture
    small = rng.integers(60, 160, size=(h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_object(rng, size=64):
    """A distinctive object: a few bright shapes of random colours on a dark disc."""
    obj = np.zeros((size, size, 3), np.uint8)
    cv2.circle(obj, (size // 2, size // 2), size // 2 - 1, (30, 30, 30), -1)
    for _ in range(5):
        colour = tuple(int(c) for c in rng.integers(40, 255, size=3))
        c = tuple(int(v) for v in rng.integers(size // 5, 4 * size // 5, size=2))
        if rng.random() < 0.5:
            cv2.circle(obj, c, int(rng.integers(4, size // 5)), colour, -1)
        else:
            d = rng.integers(4, size // 4, size=2)
            cv2.rectangle(obj, (c[0] - int(d[0]), c[1] - int(d[1])), (c[0] + int(d[0]), c[1] + int(d[1])), colour, -1)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), size // 2 - 1, 255, -1)
    return obj, mask


def paste(frame, obj, mask, cx, cy, angle=0.0, scale=1.0):
    """Paste `obj` rotated by `angle` degrees and scaled, centred at (cx, cy); returns its (x, y, w, h) box."""
    s = obj.shape[0]
    out = int(np.ceil(s * scale))
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
    m[:, 2] += (out - s) / 2
    o = cv2.warpAffine(obj, m, (out, out), flags=cv2.INTER_LINEAR)
    k = cv2.warpAffine(mask, m, (out, out), flags=cv2.INTER_LINEAR) > 127
    x0, y0 = int(round(cx - out / 2)), int(round(cy - out / 2))
    region = frame[y0:y0 + out, x0:x0 + out]
    region[k] = o[k]
    return np.array([x0, y0, out, out], dtype=np.float64)


def recolour(obj, gain=(1.3, 0.8, 1.1), offset=-20):
    return np.clip(obj.astype(np.float32) * np.array(gain, np.float32) + offset, 0, 255).astype(np.uint8)


def make_scene(seed=0, size=(240, 320)):
    """-> template frame, template box, query frame, true box of the object in the query."""
    rng = np.random.default_rng(seed)
    h, w = size
    obj, mask = make_object(rng, 56)
    template = _background(rng, h, w)
    tbox = paste(template, obj, mask, 90, 110)
    query = _background(rng, h, w)
    for cx, cy in ((60, 60), (260, 190), (70, 190)):        # distractors: other objects of the same kind
        d, dm = make_object(rng, 56)
        paste(query, d, dm, cx, cy, angle=float(rng.uniform(0, 360)))
    truth = paste(query, recolour(obj), mask, 225, 80, angle=35.0, scale=1.35)
    return template, tbox, query, truth
