"""SiamBAN tracking loop (Chen et al. 2020; NanoTrack's): the SiamRPN loop with one box per response cell, decoded
from the distances the anchor-free head predicts to the target's sides (siamtrack/points.py) instead of from anchor
offsets. Scores, the size and aspect penalty, the cosine window and the damped size update are SiamRPN's."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..points import decode_ltrb, point_grid
from .siamrpn import SiamRPNTracker


class SiamBANTracker(SiamRPNTracker):
    name = "siamban"

    def _geometry(self, response_size):
        """Crop points (A, 2) the cells look at and the Hann window (A,) for an R x R response (A = R * R)."""
        if response_size not in self._grid:
            points = point_grid(response_size, self.stride, self.cfg.search_size)
            hann = np.outer(np.hanning(response_size), np.hanning(response_size)).reshape(-1)
            self._grid[response_size] = (points, hann)
        return self._grid[response_size]

    def candidates(self, output):
        cls, loc = output
        if cls.shape[1] != 2 or loc.shape[1] != 4:
            raise ConfigError(f"the siamban tracker needs an anchor-free head (2 class and 4 distance channels), "
                              f"got {cls.shape[1]} and {loc.shape[1]}")
        k, r = cls.shape[0], cls.shape[-1]
        score = torch.softmax(cls.float().reshape(k, 2, -1), dim=1)[:, 1].cpu().numpy().astype(np.float64)
        raw = loc.float().reshape(k, 4, -1).transpose(1, 2).cpu().numpy().astype(np.float64)   # (K, A, 4)
        points, _ = self._geometry(r)
        return score, decode_ltrb(raw, points[None], self.stride), r
