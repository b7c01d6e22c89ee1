"""Generated sequences with exact ground truth, for tests, smoke runs and long-run checks where no real data is at
hand: a textured square moving over a textured background."""
from __future__ import annotations

import cv2
import numpy as np


def texture(h, w, rng, blur=5):
    t = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(t, (0, 0), blur)


class MovingSquare:
    """frame(i) and box(i) for a target of `size` px bouncing inside a `width` x `height` frame at `speed` px/frame.
    Frames are rendered on demand, so a 10,000-frame stream costs no memory."""

    def __init__(self, width=320, height=240, size=40, speed=3.0, seed=0):
        rng = np.random.default_rng(seed)
        self.width, self.height, self.size = width, height, size
        self.bg = texture(height, width, rng, blur=3)
        self.target = cv2.resize(texture(16, 16, rng, blur=0.8), (size, size), interpolation=cv2.INTER_NEAREST)
        angle = rng.uniform(0, 2 * np.pi)
        self.v = speed * np.array([np.cos(angle), np.sin(angle)])
        self.p0 = np.array([(width - size) / 2, (height - size) / 2])

    def box(self, i):
        # reflect the straight-line path at the frame borders (a triangle wave per axis)
        span = np.array([self.width - self.size, self.height - self.size], dtype=np.float64)
        p = self.p0 + self.v * i
        p = np.abs((p + span) % (2 * span) - span)
        x, y = np.round(p).astype(int)
        return np.array([x, y, self.size, self.size], dtype=np.float64)

    def frame(self, i):
        img = self.bg.copy()
        x, y, w, h = self.box(i).astype(int)
        img[y:y + h, x:x + w] = self.target
        return img

    def write_video(self, path, n, fps=25.0):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (self.width, self.height))
        for i in range(n):
            writer.write(self.frame(i))
        writer.release()
