"""Render the demo clip that `siamtrack demo` tracks, with exact ground truth.

All images ship with matplotlib (mpl-data/sample_data): the portrait of Grace Hopper (US Navy photograph, public
domain) is the background, seen through a slowly panning 320x240 camera; the blue gift box (Minduka_Present_Blue_Pack)
is the target; a hue-shifted (pink) copy of the box is a distractor and the matplotlib logo (logo2.png) an occluder.

The clip is built so that its score separates trained weights from untrained ones. A distinctive sprite on a smooth
path is found by plain template matching even with random features (a random-init SiamFC-AlexNet beat the trained
model on an earlier, easy version of this clip), so here the target's appearance keeps changing in the ways that
learned, augmentation-trained features tolerate and raw template matching does not:

- in-plane rotation of the target up to +-35 degrees and scale from 0.6x to 1.8x of its first-frame size;
- strong global light and colour changes (dim and warm, then bright and cold);
- a soft shadow that drifts across the view and darkens the target to about 40 % for a stretch: the one change that
  random features fail on reliably (each random seed tried lost the target there, for most of the rest of the clip);
- motion blur on the fast segments (the target is averaged over the exposure);
- the logo sweeping across the lower part of the box for 20 frames (a partial occlusion; the box stays visible);
- the pink copy of the box passing near the target late in the clip.

The target stays inside the frame throughout. The ground truth is the axis-aligned box of the rotated target's alpha
mask (before blur and occlusion), so it is exact. Deterministic: the only randomness is sensor noise from a seeded
generator.

    python tools/make_demo_clip.py [--out siamtrack/assets/demo]
"""
import argparse
import os
from pathlib import Path

import cv2
import matplotlib
import numpy as np

# Keyframes, eased in and out (so motion is fastest, and blurs most, between keys that lie far apart).
# Target (frame, cx, cy, scale, angle in degrees); scale 1 is a 48 px sprite (a 42 px box). The hardest changes for a
# trained tracker (size and speed) are kept apart from each other, so the clip stays trackable.
TARGET = [
    (0, 100, 120, 1.0, 0),
    (30, 140, 105, 1.0, 10),
    (70, 200, 125, 1.5, 30),
    (95, 215, 130, 1.8, 20),
    (120, 150, 140, 1.4, 0),
    (145, 120, 120, 1.1, -20),
    (165, 210, 125, 1.0, -10),
    (200, 190, 140, 0.6, -35),
    (240, 140, 115, 0.9, 0),
]
# Distractor (frame, cx, cy, scale, angle): off-screen until it passes about two box widths from the target. Closer
# than that, the trained model jumps to it too (a same-class distractor is beyond what this clip tests).
DISTRACTOR = [
    (0, 380, 40, 1.0, 0),
    (175, 380, 40, 1.0, 0),
    (195, 265, 95, 1.0, 10),
    (213, 235, 200, 1.0, 0),
    (240, 200, 300, 1.0, -10),
]
# Global light (frame, brightness, blue, green, red gains).
LIGHT = [
    (0, 1.0, 1.0, 1.0, 1.0),
    (30, 1.0, 1.0, 1.0, 1.0),
    (65, 0.6, 0.75, 0.95, 1.3),
    (90, 0.7, 0.8, 1.0, 1.2),
    (170, 1.2, 1.25, 1.0, 0.8),
    (210, 1.1, 1.1, 1.0, 0.9),
    (240, 0.9, 1.0, 1.0, 1.0),
]
OCCLUSION = (125, 145)            # frames in which the logo crosses the box
SHADOW_GAIN = (0.4, 0.4, 0.45)    # blue, green, red inside the shadow: slightly bluish, as in open shade
EXPOSURE = 1.0                    # shutter open for the whole frame interval: blur as long as the motion per frame


def sample(name):
    return str(Path(matplotlib.get_data_path()) / "sample_data" / name)


def at(keys, t):
    """The keyed values at time t: each span between two keys eases in and out (smoothstep)."""
    times = np.array([k[0] for k in keys], dtype=np.float64)
    vals = np.array([k[1:] for k in keys], dtype=np.float64)
    j = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2))
    u = np.clip((t - times[j]) / (times[j + 1] - times[j]), 0.0, 1.0)
    u = u * u * (3 - 2 * u)
    return vals[j] + (vals[j + 1] - vals[j]) * u


def premultiplied(rgba):
    # premultiplied colour, so that resampling and blurring do not bleed the transparent pixels' black into edges
    out = rgba.astype(np.float32)
    out[:, :, :3] *= out[:, :, 3:4] / 255.0
    return out


def sprite(rgba, side, angle):
    """The image resized to side x side and rotated by angle on a canvas big enough for any angle (premultiplied)."""
    small = premultiplied(cv2.resize(rgba, (side, side), interpolation=cv2.INTER_AREA))
    n = int(np.ceil(side * 1.5)) | 1
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    m[:, 2] += (n - side) / 2
    return cv2.warpAffine(small, m, (n, n), flags=cv2.INTER_LINEAR, borderValue=0)


def add(layer, img, x0, y0):
    """Add a premultiplied image with its top-left corner at (x0, y0) into a layer, clipped to the layer."""
    h, w = layer.shape[:2]
    ih, iw = img.shape[:2]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + iw, w), min(y0 + ih, h)
    if xa < xb and ya < yb:
        layer[ya:yb, xa:xb] += img[ya - y0:yb - y0, xa - x0:xb - x0]


def over(view, layer):
    return layer[:, :, :3] + (1 - layer[:, :, 3:4] / 255.0) * view


def render(out_dir, frames=240, size=(320, 240), fps=25.0, seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    bg = cv2.imread(sample("grace_hopper.jpg"))
    bg = cv2.resize(bg, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    box = cv2.imread(sample("Minduka_Present_Blue_Pack.png"), cv2.IMREAD_UNCHANGED)
    hsv = cv2.cvtColor(box[:, :, :3], cv2.COLOR_BGR2HSV)
    hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + 60) % 180
    pink = np.dstack([cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), box[:, :, 3]])
    logo = cv2.imread(sample("logo2.png"), cv2.IMREAD_UNCHANGED)
    lw = int(w * 0.45)
    logo = premultiplied(cv2.resize(logo, (lw, int(lw * logo.shape[0] / logo.shape[1])), interpolation=cv2.INTER_AREA))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_dir / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    lines = []
    for i in range(frames):
        t = i / frames
        cam_x = int(40 + 300 * (0.5 - 0.5 * np.cos(np.pi * t)))
        cam_y = int(60 + 200 * t)
        view = bg[cam_y:cam_y + h, cam_x:cam_x + w].astype(np.float32)

        dx, dy, ds, da = at(DISTRACTOR, i)
        if -100 < dx < w + 100:
            d = sprite(pink, int(round(48 * ds)), da)
            layer = np.zeros((h, w, 4), np.float32)
            add(layer, d, int(round(dx - d.shape[0] / 2)), int(round(dy - d.shape[0] / 2)))
            view = over(view, layer)

        cx, cy, s, angle = at(TARGET, i)
        tgt = sprite(box, int(round(48 * s)), angle)
        n = tgt.shape[0]
        # motion blur: the sprite averaged over positions across the exposure, as many as pixels it moves
        ax, ay, _, _ = at(TARGET, i + EXPOSURE)
        bx, by, _, _ = at(TARGET, i - EXPOSURE)
        k = max(1, int(np.ceil(np.hypot(ax - bx, ay - by) / 2 * EXPOSURE)))
        layer = np.zeros((h, w, 4), np.float32)
        for j in range(k):
            ox, oy, _, _ = at(TARGET, i + ((j + 0.5) / k - 0.5) * EXPOSURE)
            add(layer, tgt / k, int(round(ox - n / 2)), int(round(oy - n / 2)))
        view = over(view, layer)
        x0, y0 = int(round(cx - n / 2)), int(round(cy - n / 2))
        ys, xs = np.nonzero(tgt[:, :, 3] > 127.5)
        gt = (x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)

        if OCCLUSION[0] <= i < OCCLUSION[1]:
            # the logo sweeps left to right across the lower half of the box, so the upper part stays visible
            u = (i - OCCLUSION[0]) / (OCCLUSION[1] - OCCLUSION[0])
            layer = np.zeros((h, w, 4), np.float32)
            add(layer, logo, int(gt[0] - lw + (lw + gt[2]) * u), int(gt[1] + gt[3] * 0.55))
            view = over(view, layer)

        # the shadow is in view coordinates (a cloud's shadow, not painted on the portrait) and soft-edged
        r = np.sqrt(((xx - (-120 + 5 * (i - 80))) / 90) ** 2 + ((yy - 130) / 140) ** 2)
        m = np.clip((1.0 - r) / 0.3 + 0.5, 0, 1)[:, :, None]
        view = view * (1 - m + m * np.array(SHADOW_GAIN, np.float32))

        lb, gb, gg, gr = at(LIGHT, i)
        view = view * (lb * np.array([gb, gg, gr], np.float32))
        view = np.clip(view + rng.normal(0, 3, view.shape), 0, 255).astype(np.uint8)
        writer.write(view)
        lines.append(",".join(str(int(v)) for v in gt))
    writer.release()
    (out_dir / "groundtruth.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("siamtrack", "assets", "demo"))
    render(ap.parse_args().out)
