"""Objectives: turn a model's output for a batch of pairs into a loss. One per tracker type, chosen from the config.

An objective is called as `objective(output, box, negative) -> (loss, {name: float})`, with `output` what
`SiameseNet.forward(z, x)` returns, `box` (B, 4) the target in search-crop pixels and `negative` (B,) 0/1.
"""
from __future__ import annotations


from .losses import balanced_logistic_loss, siamfc_labels
from ..errors import ConfigError


class SiamFCObjective:
    def __init__(self, cfg, model):
        self.stride = model.stride
        self.search_size = cfg.train.search_size
        self.radius = cfg.train.positive_radius

    def labels(self, response_size, box, negative):
        labels = siamfc_labels(box, response_size, self.stride, self.search_size, self.radius)
        # A negative pair shows another object: nowhere on the map is the exemplar.
        return labels * (1.0 - negative.float().view(-1, 1, 1, 1))

    def __call__(self, output, box, negative):
        labels = self.labels(output.shape[-1], box.to(output.device), negative.to(output.device))
        loss = balanced_logistic_loss(output, labels)
        return loss, {"loss": float(loss.detach())}


def build_objective(cfg, model):
    kind = cfg.tracker.type
    if kind == "siamfc":
        return SiamFCObjective(cfg, model)
    if kind == "siamrpn":
        from .rpn_objective import RPNObjective
        return RPNObjective(cfg, model)
    if kind == "siamban":
        from .ban_objective import BANObjective
        return BANObjective(cfg, model)
    raise ConfigError(f"no training objective for tracker type {kind!r}")
