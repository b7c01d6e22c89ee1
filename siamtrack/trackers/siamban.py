"""SiamBAN tracking loop (Chen et al. 2020; NanoTrack's): the SiamRPN loop with one box per response cell, decoded
from the distances the anchor-free head predicts to the target's sides (siamtrack/points.py) instead of from anchor
offsets. Scores, the size and aspect penalty, the cosine window and the damped size update are SiamRPN's."""
from __future__ import annotations

from ..errors import ConfigError
from ..points import decode_ltrb, point_grid
from .siamrpn import SiamRPNTracker


class SiamBANTracker(SiamRPNTracker):
    name = "siamban"

    def _cells(self, response_size):
        """Crop points (A, 2) the cells look at, A = R * R."""
        return point_grid(response_size, self.stride, self.cfg.search_size)

    def _check_head(self, cls, loc):
        if cls.shape[1] != 2 or loc.shape[1] != 4:
            raise ConfigError(f"the siamban tracker needs an anchor-free head (2 class and 4 distance channels), "
                              f"got {cls.shape[1]} and {loc.shape[1]}")

    def _decode(self, raw, cells):
        """raw (K, A, 4) log side distances -> (K, A, 4) cxcywh boxes in crop pixels."""
        return decode_ltrb(raw, cells[None], self.stride)
