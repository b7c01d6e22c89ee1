"""SiamFC tracking loop (Bertinetto et al. 2016) with the paper's constants (siamtrack.config.TrackerConfig).

Per frame and target: crop S search regions at scales scale_step^{-1,0,1} (one batched forward pass for all targets
and scales), upsample each 17x17 response x16 (bicubic), penalise the side scales, take the scale with the highest
peak, normalise that response to sum 1, blend it with a Hann window, and move the centre by the peak's offset from the
response centre. The scale changes by a damped step towards the winning scale.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..crops import exemplar_size
from .base import Tracker


class SiamFCTracker(Tracker):
    name = "siamfc"
    target_arrays = Tracker.target_arrays + ("x_sz", "z_sz")

    def __init__(self, model, cfg, device, crop_on_device=None):
        super().__init__(model, cfg, device, crop_on_device)
        t = cfg
        n = t.num_scales
        self.scale_factors = t.scale_step ** (np.arange(n) - (n - 1) / 2)
        self.penalties = np.where(np.arange(n) == (n - 1) // 2, 1.0, t.scale_penalty)
        self.crops_per_target = n
        self._hann = None

    def _window(self, size):
        if self._hann is None or self._hann.shape[0] != size:
            h = np.outer(np.hanning(size), np.hanning(size))
            self._hann = h / h.sum()
        return self._hann

    @torch.inference_mode()
    def _init(self, frame, boxes):
        t = self.cfg
        self.centers = boxes[:, :2] + boxes[:, 2:] / 2
        self.sizes = boxes[:, 2:].copy()
        self.init_sizes = boxes[:, 2:].copy()
        self.z_sz = np.array([exemplar_size(w, h, t.context_amount) for w, h in self.sizes])
        self.x_sz = self.z_sz * t.search_size / t.exemplar_size
        self.init_x_sz = self.x_sz.copy()
        self.pad = self._frame_mean(frame)
        z = self._crop(self._prepare_frame(frame), self.centers, self.z_sz, t.exemplar_size, self.pad)
        self.kernels = self.model.template(z)

    @torch.inference_mode()
    def _update(self, frame):
        t = self.cfg
        k, s = self.num_targets, len(self.scale_factors)
        h, w = frame.shape[:2]
        centers = np.repeat(self.centers, s, axis=0)
        sizes = (self.x_sz[:, None] * self.scale_factors[None]).reshape(-1)
        x = self._crop(self._prepare_frame(frame), centers, sizes, t.search_size, self.pad)
        raw = self.model.track(x, self.kernels)[:, 0].float().cpu().numpy()  # (K*S, 17, 17)
        return self._postprocess(raw.reshape(k, s, *raw.shape[-2:]), w, h)

    def _postprocess(self, raw, width, height):
        t = self.cfg
        k, s, r, _ = raw.shape
        up = r * t.response_up
        # cv2.resize takes up to 512 channels at once: every (target, scale) map in one call.
        stacked = np.ascontiguousarray(raw.reshape(k * s, r, r).transpose(1, 2, 0))
        big = cv2.resize(stacked, (up, up), interpolation=cv2.INTER_CUBIC).reshape(up, up, k, s)
        big = big.transpose(2, 3, 0, 1) * self.penalties[None, :, None, None]
        hann = self._window(up)
        scores = np.zeros(k)
        for i in range(k):
            best = int(np.argmax(big[i].reshape(s, -1).max(axis=1)))
            resp = big[i, best]
            resp = resp - resp.min()
            resp = resp / (resp.sum() + 1e-16)
            resp = (1 - t.window_influence) * resp + t.window_influence * hann
            py, px = np.unravel_index(int(np.argmax(resp)), resp.shape)
            # response pixels -> search-crop pixels (stride 8, upsampled x16) -> frame pixels
            disp = (np.array([px, py], dtype=np.float64) - (up - 1) / 2) * self.model.stride / t.response_up
            disp *= self.x_sz[i] * self.scale_factors[best] / t.search_size
            self.centers[i] += disp
            step = (1 - t.scale_lr) + t.scale_lr * self.scale_factors[best]
            rel = np.clip(self.x_sz[i] * step / self.init_x_sz[i], t.min_scale, t.max_scale)
            self.x_sz[i] = self.init_x_sz[i] * rel
            self.z_sz[i] = self.x_sz[i] * t.exemplar_size / t.search_size
            self.sizes[i] = self.init_sizes[i] * rel
            scores[i] = 1.0 / (1.0 + np.exp(-raw[i, best].max()))
        self.centers[:, 0] = np.clip(self.centers[:, 0], 0, width)
        self.centers[:, 1] = np.clip(self.centers[:, 1], 0, height)
        return scores

    def _peaks(self, output):
        raw = output[:, 0].float().cpu().numpy()            # (N, R, R)
        n, r = raw.shape[0], raw.shape[-1]
        flat = raw.reshape(n, -1)
        cell = np.argmax(flat, axis=1)
        peak = flat[np.arange(n), cell]
        # response cell i looks at search-crop pixel search_size / 2 + (i - (R - 1) / 2) * stride
        yx = np.stack(np.unravel_index(cell, (r, r)), axis=1)[:, ::-1].astype(np.float64)
        where = self.cfg.search_size / 2 + (yx - (r - 1) / 2) * self.model.stride
        return 1.0 / (1.0 + np.exp(-peak.astype(np.float64))), where
