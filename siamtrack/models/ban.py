"""Anchor-free head (SiamBAN, Chen et al. 2020; the head NanoTrack uses): per response cell, 2 class logits
(background, target) and 4 log distances to the target's sides. Outputs cls (B, 2, R, R), loc (B, 4, R, R); see
siamtrack/points.py for the grid and the distance encoding.

Built like the RPN heads (the same branches, one "anchor" per cell), so an RPN checkpoint can start it: see
`adopt_state`. `ban_dw` is the depthwise RPN head's layout, `ban_pw` the pixel-wise one's (NanoTrack v2's pairing).
"""
from __future__ import annotations

import math

import numpy as np
from torch import nn

from .registry import register_head
from .rpn import PixelwiseRPN, _DepthwiseBranch

# A fresh loc layer predicts 2 strides (32 px at stride 16) to each side: a 64 px box, the size a target has in the
# 255 px search crop when the exemplar crop holds it with context 0.5.
INITIAL_LOG_DISTANCE = math.log(2.0)


class _FromRPN:
    """What an anchor-free head takes from a checkpoint of the RPN head of its layout (`rpn_layout`): every layer of
    the same shape as is, the class layer (`cls_out`) from the RPN's square anchor (the one whose cells score a
    target of the typical aspect), the distance layer (`loc_out`) as initialised here (offsets against anchors do not
    translate into side distances)."""
    rpn_layout = cls_out = loc_out = ""

    def adopt(self, state, prefix, source_tracker):
        """The whole of `state` with the head's keys (under `prefix`) converted; `source_tracker` is the tracker
        config the RPN was trained with (its anchor ratios)."""
        own = self.state_dict()
        ratios = np.asarray(source_tracker.anchor_ratios, dtype=np.float64)
        k, a = len(ratios), int(np.argmin(np.abs(np.log(ratios))))
        out = {}
        for key, value in state.items():
            if not key.startswith(prefix):
                out[key] = value
                continue
            name = key[len(prefix):]
            if name in own and tuple(value.shape) == tuple(own[name].shape):
                out[key] = value
            elif name.startswith(self.cls_out) and value.shape[0] == 2 * k:
                # RPN cls channels are (class, anchor) = class * k + anchor
                out[key] = value[[a, k + a]]
            elif name.startswith(self.loc_out):
                out[key] = own[name].clone()
            else:
                out[key] = value
        return out


def _init_distances(last):
    nn.init.normal_(last.weight, std=1e-3)
    nn.init.constant_(last.bias, INITIAL_LOG_DISTANCE)


@register_head("ban_dw")
class DepthwiseBAN(_FromRPN, nn.Module):
    rpn_layout, cls_out, loc_out = "rpn_dw", "cls.out.3.", "loc.out.3."

    def __init__(self, in_channels=256, channels=256):
        super().__init__()
        self.cls = _DepthwiseBranch(in_channels, channels, 2)
        self.loc = _DepthwiseBranch(in_channels, channels, 4)
        _init_distances(self.loc.out[-1])

    def template(self, zf):
        return self.cls.kernel(zf), self.loc.kernel(zf)

    def forward(self, kernels, xf):
        return self.cls(kernels[0], xf), self.loc(kernels[1], xf)


@register_head("ban_pw")
class PixelwiseBAN(_FromRPN, PixelwiseRPN):
    """The pixel-wise RPN head with one "anchor" per cell: 2 class logits and 4 log side distances."""
    rpn_layout, cls_out, loc_out = "rpn_pw", "cls.2.", "loc.2."

    def __init__(self, in_channels=64, channels=64, exemplar_cells=49):
        super().__init__(in_channels, channels, num_anchors=1, exemplar_cells=exemplar_cells)
        _init_distances(self.loc[-1])


def adopt_state(model, state, source_cfg):
    """`state` (a checkpoint of `source_cfg`) made loadable into `model` when `model` has an anchor-free head and the
    checkpoint the RPN head of the same layout, or `model` a pixel-wise head and the checkpoint a head of another
    layout (the checkpoint's trunk and neck, the head as initialised: no layer of a depthwise head carries over);
    unchanged otherwise (and `load_weights` then names any mismatch)."""
    source = source_cfg.model.head.name
    if isinstance(model.head, _FromRPN) and source == model.head.rpn_layout:
        return model.head.adopt(state, "head.", source_cfg.tracker)
    if isinstance(model.head, PixelwiseRPN) and source not in ("rpn_pw", "ban_pw"):
        fresh = {"head." + k: v for k, v in model.head.state_dict().items()}
        return {**{k: v for k, v in state.items() if not k.startswith("head.")}, **fresh}
    return state
