"""Render the demo clip that `siamtrack demo` tracks, with exact ground truth.

Both images ship with matplotlib (mpl-data/sample_data): the portrait of Grace Hopper (US Navy photograph, public
domain) is the background, seen through a slowly panning 320x240 camera; the blue gift box (Minduka_Present_Blue_Pack)
is the target, alpha-blended along a smooth path while its size changes and the light dims. The ground truth is the
box's pasted rectangle, so it is exact.

    python tools/make_demo_clip.py [--out siamtrack/assets/demo]
"""
import argparse
import os
from pathlib import Path

import cv2
import matplotlib
import numpy as np


def sample(name):
    return str(Path(matplotlib.get_data_path()) / "sample_data" / name)


def render(out_dir, frames=200, size=(320, 240), fps=25.0, seed=0):
    rng = np.random.default_rng(seed)
    bg = cv2.imread(sample("grace_hopper.jpg"))
    bg = cv2.resize(bg, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    obj = cv2.imread(sample("Minduka_Present_Blue_Pack.png"), cv2.IMREAD_UNCHANGED)
    w, h = size
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_dir / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    lines = []
    for i in range(frames):
        t = i / frames
        # camera: pan across the portrait
        cam_x = int(40 + 300 * (0.5 - 0.5 * np.cos(np.pi * t)))
        cam_y = int(60 + 200 * t)
        view = bg[cam_y:cam_y + h, cam_x:cam_x + w].astype(np.float32)
        # target: Lissajous path in the view, size 44..72 px
        s = 58 + 14 * np.sin(2 * np.pi * t * 1.5)
        cx = w / 2 + 100 * np.sin(2 * np.pi * t * 1.2)
        cy = h / 2 + 60 * np.sin(2 * np.pi * t * 2.1 + 0.6)
        side = int(round(s))
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        patch = cv2.resize(obj, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = patch[:, :, 3:4] / 255.0
        view[y0:y0 + side, x0:x0 + side] = alpha * patch[:, :, :3] + (1 - alpha) * view[y0:y0 + side, x0:x0 + side]
        light = 1.0 - 0.35 * np.sin(np.pi * t) ** 2
        view = np.clip(view * light + rng.normal(0, 3, view.shape), 0, 255).astype(np.uint8)
        writer.write(view)
        ys, xs = np.nonzero(alpha[:, :, 0] > 0.5)
        lines.append(f"{x0 + xs.min()},{y0 + ys.min()},{xs.max() - xs.min() + 1},{ys.max() - ys.min() + 1}")
    writer.release()
    (out_dir / "groundtruth.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("siamtrack", "assets", "demo"))
    render(ap.parse_args().out)
