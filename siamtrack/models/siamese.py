"""The Siamese network: one shared backbone for exemplar and search crops, an optional neck, a head."""
from __future__ import annotations

import torch
from torch import nn

from . import backbones, ban, efficientnet, heads, necks, rpn  # noqa: F401  (registration side effects)
from .registry import BACKBONES, HEADS, NECKS, build_part


class SiameseNet(nn.Module):
    """`template(z)` embeds exemplar crops once and keeps the result; `track(x)` correlates search crops with it;
    `forward(z, x)` does both for training. The model never sees a frame and knows nothing about boxes."""

    def __init__(self, backbone, head, neck=None):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.kernels = None

    @property
    def stride(self):
        return self.backbone.stride

    def embed(self, x, is_template=False):
        f = self.backbone(x)
        if self.neck is not None:
            f = self.neck(f, is_template=is_template)
        return f

    def template(self, z: torch.Tensor):
        """z: (K, 3, 127, 127) exemplar crops, one per target. Keeps and returns the head's kernels."""
        self.kernels = self.head.template(self.embed(z, is_template=True))
        return self.kernels

    def track(self, x: torch.Tensor, kernels=None):
        """x: (K * S, 3, X, X) search crops, S consecutive crops per target (scales). Returns the head's output."""
        kernels = self.kernels if kernels is None else kernels
        k = _batch_of(kernels)
        if k > 1 and x.shape[0] != k:
            reps = x.shape[0] // k
            kernels = _repeat(kernels, reps)
        return self.head(kernels, self.embed(x))

    def forward(self, z, x):
        return self.head(self.head.template(self.embed(z, is_template=True)), self.embed(x))

    def forward_from_trunk(self, zf, xf, start=None):
        """`forward` from backbone features already computed (training on a cached frozen trunk). With `start`, the
        features are those before backbone block `start`, and the blocks from there on run here."""
        if start is not None:
            zf, xf = self.backbone(zf, start=start), self.backbone(xf, start=start)
        if self.neck is not None:
            zf, xf = self.neck(zf, is_template=True), self.neck(xf)
        return self.head(self.head.template(zf), xf)


def _batch_of(kernels):
    if isinstance(kernels, (tuple, list)):
        return _batch_of(kernels[0])
    return kernels.shape[0]


def _repeat(kernels, reps):
    if isinstance(kernels, (tuple, list)):
        return type(kernels)(_repeat(k, reps) for k in kernels)
    return kernels.repeat_interleave(reps, dim=0)


def build_model(cfg) -> SiameseNet:
    """Build from a `ModelConfig`."""
    return SiameseNet(backbone=build_part(BACKBONES, "backbone", cfg.backbone),
                      head=build_part(HEADS, "head", cfg.head),
                      neck=build_part(NECKS, "neck", cfg.neck))
