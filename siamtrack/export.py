"""ONNX export: three graphs and a JSON that together rebuild a tracker without PyTorch models.

- `template.onnx`: z (K, 3, e, e) -> kernel0[, kernel1, ...], the head's kernels for K exemplar crops.
- `track.onnx`: x (N, 3, s, s), kernel0 (N, ...)[, kernel1 ...] -> output0[, output1]. The exemplar features are
  inputs of this graph, one per search crop (the caller repeats a target's kernels over its scales), so no weights
  are built at run time and the batch N is dynamic: one graph serves any number of targets and scales.
- `track1.onnx`: the track graph for one search crop (N = 1, the common case of one target at one scale), whose
  correlations are plain convolutions taking the kernels as weights: one Conv node each instead of a sum of shifted
  products (about 200 nodes for a 7x7 kernel in two branches), which onnxruntime pays for per node. The backend runs
  it whenever N is 1; exports without it (version 1) still load and use `track.onnx`.
- `backbone.onnx`: x -> search features, so the speed command can time the backbone apart from the head.
- `export.json`: the experiment config, the stride and the graph layout.

Correlations with per-sample kernels are grouped convolutions with groups = batch in eager PyTorch, and ONNX fixes
`group` at export time. While exporting, `export_correlation()` swaps in equivalents without a batch-sized group:
the full (SiamFC) correlation correlates every crop with every crop's kernel in one convolution and keeps the matching
pairs (the diagonal), N times the correlation's small cost; the depthwise and up-channel ones, whose reshaped kernels
the legacy exporter cannot take as Conv weights under a dynamic batch, become sums of shifted products.
"""
from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import OutputError, SiamtrackError
from .models import correlation
from .models.fuse import fold_siamese

FORMAT = "siamtrack-onnx"
VERSION = 2
INFO_FILE = "export.json"
FILES = {"template": "template.onnx", "track": "track.onnx", "track_single": "track1.onnx",
         "backbone": "backbone.onnx"}
# what an export folder must hold (version 1 exports have no track_single)
REQUIRED = ("template", "track", "backbone")
OPSET = 17


def _static(*dims):
    # Channel and spatial sizes are fixed by the architecture; int() makes them constants of the traced graph so
    # that ONNX shape inference knows the kernel shapes. Only the batch stays symbolic.
    return [int(d) for d in dims]


def _diagonal(full, n):
    """full (N, N * O, H, W): crop i against the kernels of crop j at channel block j -> (N, O, H, W) with i == j."""
    o, h, w = _static(full.shape[1] // full.shape[0], full.shape[2], full.shape[3])
    flat = full.reshape(-1, o, h, w)
    return flat.index_select(0, torch.arange(n, device=full.device) * (n + 1))


def xcorr_naive_static(x, z):
    return _diagonal(F.conv2d(x, z), x.shape[0])


def _offsets(x, z):
    """(i, j, x window) for every kernel offset: correlation written as a sum of shifted products, whose shapes are
    all static apart from the batch, for kernels that the legacy exporter cannot use as Conv weights."""
    h, w = _static(*z.shape[2:])
    oh, ow = _static(x.shape[2] - h + 1, x.shape[3] - w + 1)
    for i in range(h):
        for j in range(w):
            yield i, j, x[:, :, i:i + oh, j:j + ow]


def xcorr_depthwise_static(x, z):
    out = 0
    for i, j, window in _offsets(x, z):
        out = out + window * z[:, :, i:i + 1, j:j + 1]
    return out


def xcorr_upchannel_static(x, z, out_channels):
    c, h, w = _static(x.shape[1], *z.shape[2:])
    bank = z.reshape(-1, out_channels, c, h, w)
    out = 0
    for i, j, window in _offsets(x, z):
        out = out + torch.einsum("nchw,noc->nohw", window, bank[:, :, :, i, j])
    return out


# One search crop and its kernels (batch 1 on both sides): the kernels become Conv weights of static shape.
def xcorr_naive_single(x, z):
    return F.conv2d(x, z)


def xcorr_depthwise_single(x, z):
    c, h, w = _static(x.shape[1], *z.shape[2:])
    return F.conv2d(x, z.reshape(c, 1, h, w), groups=c)


def xcorr_upchannel_single(x, z, out_channels):
    c, h, w = _static(x.shape[1], *z.shape[2:])
    return F.conv2d(x, z.reshape(out_channels, c, h, w))


# keyed by identity: the module globals scanned below need not be hashable
_STATIC = {id(correlation.xcorr_naive): xcorr_naive_static,
           id(correlation.xcorr_depthwise): xcorr_depthwise_static,
           id(correlation.xcorr_upchannel): xcorr_upchannel_static}
_SINGLE = {id(correlation.xcorr_naive): xcorr_naive_single,
           id(correlation.xcorr_depthwise): xcorr_depthwise_single,
           id(correlation.xcorr_upchannel): xcorr_upchannel_single}


@contextmanager
def export_correlation(single=False):
    """Temporarily replace the correlation functions (wherever siamtrack modules imported them) with the static-group
    versions above, or with `single` the batch-1 ones. Requires kernels with the same batch as the search features,
    which TrackGraph guarantees."""
    table = _SINGLE if single else _STATIC
    patched = []
    for name, mod in list(sys.modules.items()):
        if not name.startswith("siamtrack.") or mod is None:
            continue
        for attr, value in list(vars(mod).items()):
            static = table.get(id(value))
            if static is not None and mod is not sys.modules[__name__]:
                patched.append((mod, attr, value))
                setattr(mod, attr, static)
    try:
        yield
    finally:
        for mod, attr, value in patched:
            setattr(mod, attr, value)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class TemplateGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return _as_tuple(self.model.head.template(self.model.embed(z, is_template=True)))


class TrackGraph(nn.Module):
    def __init__(self, model, kernels_tuple):
        super().__init__()
        self.model = model
        self.kernels_tuple = kernels_tuple

    def forward(self, x, *kernels):
        k = tuple(kernels) if self.kernels_tuple else kernels[0]
        return _as_tuple(self.model.head(k, self.model.embed(x)))


class BackboneGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.embed(x)


def _export(module, args, path, input_names, output_names, dynamic=True):
    axes = {n: {0: "batch"} for n in input_names + output_names} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notices
        torch.onnx.export(module, args, str(path), dynamo=False, input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)


def export_onnx(model, cfg, out_dir) -> Path:
    """Write the four graphs and export.json into `out_dir` (created; existing export files are replaced)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    t = cfg.tracker
    model = fold_siamese(model, t.exemplar_size, t.search_size).to("cpu").float()
    g = torch.Generator().manual_seed(0)
    z = torch.rand(2, 3, t.exemplar_size, t.exemplar_size, generator=g) * 255
    x = torch.rand(2, 3, t.search_size, t.search_size, generator=g) * 255
    with torch.no_grad():
        kz = model.head.template(model.embed(z, is_template=True))
        out = model.head(kz, model.embed(x))
    kernels_tuple, outputs_tuple = isinstance(kz, (tuple, list)), isinstance(out, (tuple, list))
    kernels, outputs = _as_tuple(kz), _as_tuple(out)
    kernel_names = [f"kernel{i}" for i in range(len(kernels))]
    output_names = [f"output{i}" for i in range(len(outputs))]
    with export_correlation():
        _export(TemplateGraph(model), (z,), out_dir / FILES["template"], ["z"], kernel_names)
        _export(TrackGraph(model, kernels_tuple), (x, *kernels), out_dir / FILES["track"], ["x"] + kernel_names,
                output_names)
        _export(BackboneGraph(model), (x,), out_dir / FILES["backbone"], ["x"], ["features"])
    with export_correlation(single=True):
        _export(TrackGraph(model, kernels_tuple), (x[:1], *(k[:1] for k in kernels)), out_dir / FILES["track_single"],
                ["x"] + kernel_names, output_names, dynamic=False)
    info = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(), "stride": int(model.stride),
            "kernels_tuple": kernels_tuple, "outputs_tuple": outputs_tuple,
            "kernels": kernel_names, "outputs": output_names, "files": FILES, "opset": OPSET}
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=1))
    return out_dir


def is_export_dir(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / INFO_FILE).is_file() and all((path / FILES[f]).is_file() for f in REQUIRED)


def read_export_info(path) -> dict:
    path = Path(path)
    if not is_export_dir(path):
        raise SiamtrackError(f"{path} is not a siamtrack ONNX export (needs {INFO_FILE} and "
                             f"{', '.join(FILES[f] for f in REQUIRED)}); write one with `siamtrack export`")
    try:
        info = json.loads((path / INFO_FILE).read_text())
    except (json.JSONDecodeError, OSError) as e:
        raise SiamtrackError(f"{path / INFO_FILE} is unreadable: {e}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or "config" not in info:
        raise SiamtrackError(f"{path / INFO_FILE} is not a siamtrack export description")
    return info
