"""int8: onnxruntime static quantization of an ONNX export (QDQ, per-channel weights), calibrated on real crops.

The export's `track.onnx` (search crop + exemplar kernels -> head outputs) is where nearly all the per-frame cost is,
so it is quantized; `backbone.onnx` too (the speed command times it apart). `template.onnx` runs once per target and
stays fp32. The depthwise correlation of the exported RPN head is a sum of shifted products of two activations, which
gains nothing from int8 and loses precision: it stays float.

Calibration crops are cut exactly as the trackers cut them (crops.py geometry, context 0.5 of the box): an exemplar
around a frame's box and a search crop from a frame a few steps later, centred where the target was, so activation
ranges are those of tracking. They come from the `train` split of a tracking root (never `val`); where no such data
is around (a user's fresh install), from the demo clip that ships with the package. The folder's export.json records
which, with the crop count.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from .crops import crop_numpy, crops_to_tensor, exemplar_size
from .errors import SiamtrackError

QUANTIZED = ("track", "track_single", "backbone")
# Convolutions, and the activations and residual sums between them, so that whole blocks stay int8 (a float Clip
# between two quantized convolutions costs a dequantize + quantize pair).
QUANTIZED_OPS = ("Conv", "Clip", "Relu", "Add", "MatMul", "Gemm")
DEMO_DIR = Path(__file__).resolve().parent / "assets" / "demo"


def _import_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise SiamtrackError("the int8 backend needs onnxruntime, which did not import: "
                             "pip install onnx onnxruntime") from None
    return quantization


def demo_sequence():
    """The packaged demo clip as (frames, boxes): the calibration data of last resort."""
    from .data.sources import open_source
    boxes = np.loadtxt(DEMO_DIR / "groundtruth.txt", delimiter=",", ndmin=2)
    frames = []
    source = open_source(DEMO_DIR / "demo.mp4")
    try:
        for sf in source:
            if sf.image is not None:
                frames.append(sf.image)
    finally:
        source.close()
    n = min(len(frames), len(boxes))
    return frames[:n], boxes[:n]


def calibration_pairs(sequences, n, cfg, seed=0):
    """`n` (exemplar, search) uint8 BGR crop pairs from `sequences`, a list of (frame(i) -> image, boxes (N, 4))."""
    t = cfg.tracker
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(n):
        frame_of, boxes = sequences[k % len(sequences)]
        valid = np.flatnonzero(np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 1) & (boxes[:, 3] > 1))
        if len(valid) < 2:
            continue
        i = int(rng.choice(valid[:-1]))
        later = valid[(valid > i) & (valid <= i + 10)]
        j = int(later[rng.integers(len(later))]) if len(later) else i
        x0, y0, w, h = boxes[i]
        cx, cy = x0 + w / 2, y0 + h / 2
        s_z = exemplar_size(w, h, t.context_amount)
        zf, xf = frame_of(i), frame_of(j)
        z = crop_numpy(zf, cx, cy, s_z, t.exemplar_size, zf.reshape(-1, 3).mean(axis=0))
        x = crop_numpy(xf, cx, cy, s_z * t.search_size / t.exemplar_size, t.search_size,
                       xf.reshape(-1, 3).mean(axis=0))
        pairs.append((z, x))
    if not pairs:
        raise SiamtrackError("no calibration crops: the sequences have no two valid boxes")
    return pairs


def train_sequences(root, limit=None):
    """The `train` split of an OTB-format tracking root as calibration sequences (never `val`)."""
    from .data.datasets import open_dataset
    seqs = open_dataset(root, "otb", "train")
    return [(seq.frame, np.asarray(seq.boxes, dtype=np.float64)) for seq in seqs[:limit]]


def _float_nodes(path, output_convs):
    """Names of the nodes that stay float: the head's correlation nodes (the Mul / Add nodes of the exported
    depthwise correlation, a sum of shifted products of two activations, and, in the batch-1 graph, the Conv nodes
    whose weights are the exemplar's kernels rather than constants); with `output_convs` also the Conv nodes that
    write the graph's outputs (the head's score and box layers), reached from each output through non-Conv nodes."""
    import onnx
    graph = onnx.load(str(path)).graph
    constants = {t.name for t in graph.initializer}
    names = {n.name for n in graph.node if n.name.startswith("/head/") and
             (n.op_type in ("Mul", "Add") or (n.op_type == "Conv" and n.input[1] not in constants))}
    producer = {o: n for n in graph.node for o in n.output}
    todo = [o.name for o in graph.output] if output_convs else []
    while todo:
        node = producer.get(todo.pop())
        if node is None:
            continue
        if node.op_type == "Conv":
            names.add(node.name)
        else:
            todo.extend(node.input)
    return sorted(names)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol: one feed dict per call, None at the end."""

    def __init__(self, feeds):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def quantize_export(fp32_dir, out_dir, sequences, description, crops=64, seed=0) -> Path:
    """Write an int8 copy of the export folder `fp32_dir` into `out_dir`, calibrated on `crops` crop pairs."""
    q = _import_quantization()
    import onnxruntime as ort
    from .config import config_from_dict
    from .export import FILES, INFO_FILE, read_export_info
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    info = read_export_info(fp32_dir)
    cfg = config_from_dict(info["config"])
    pairs = calibration_pairs(sequences, crops, cfg, seed)
    template = ort.InferenceSession(str(fp32_dir / FILES["template"]), providers=["CPUExecutionProvider"])
    feeds = []
    for z, x in pairs:
        zt = crops_to_tensor(z[None], channels_last=False).numpy()
        xt = crops_to_tensor(x[None], channels_last=False).numpy()
        kernels = template.run(None, {"z": zt})
        feeds.append({"x": xt, **{name: k for name, k in zip(info["kernels"], kernels)}})
    # With 7-bit weights siamrpn-lite-s8's int8 boxes moved a median 1.02 px from fp32 (AVX2 EPYC, session 26): the
    # head's last layers (scores and box offsets, 1 x 1 convolutions on 64 channels) then stay float too.
    reduce_range = weights_7bit()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(fp32_dir / FILES["template"], tmp / FILES["template"])
    for part in QUANTIZED:
        if part not in info["files"]:
            continue   # a version 1 export has no batch-1 graph
        graph_feeds = [{"x": f["x"]} for f in feeds] if part == "backbone" else feeds
        # onnxruntime's own pre-processing (graph optimisation, shape inference) lets the quantizer see fused
        # Conv + activation nodes and their shapes
        pre = tmp / ("pre-" + FILES[part])
        from onnxruntime.quantization.shape_inference import quant_pre_process
        quant_pre_process(str(fp32_dir / FILES[part]), str(pre))
        q.quantize_static(str(pre), str(tmp / FILES[part]), _Reader(graph_feeds),
                          quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                          op_types_to_quantize=list(QUANTIZED_OPS),
                          nodes_to_exclude=_float_nodes(pre, output_convs=reduce_range),
                          calibrate_method=q.CalibrationMethod.MinMax, reduce_range=reduce_range)
        pre.unlink()
    info = {**info, "precision": "int8", "reduce_range": reduce_range,
            "calibration": {"source": description, "crops": len(pairs), "seed": seed}}
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)   # a crash mid-way leaves a .partial folder, never a half-written int8 export
    return out_dir


def weights_7bit() -> bool:
    """Whether int8 exports made on this CPU use 7-bit weights. Without VNNI (AVX2-only x86) onnxruntime's u8 x s8
    kernels multiply-add pairs into 16 bits and can saturate on full-range weights; 7-bit weights (reduce_range)
    avoid that, as onnxruntime's quantization guide advises."""
    from .device import cpu_info
    flags = cpu_info()["flags"]
    return bool(flags) and not ({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def calibration_source(shared_root=None):
    """(tracking root or None, tag): where `default_calibration` takes its crops, and a short name for that data.
    int8 boxes depend on the calibration crops (session 18: one weights file calibrated on the demo clip by a wheel
    install and on the sot train split in a checkout tracked differently from the second frame on), so int8 exports
    are cached, and their benchmark results recorded, under this tag: "demo", or "sot-" and a digest of the split
    index the train sequences come from."""
    if shared_root is not None:
        root = Path(shared_root) / "data" / "sot"
        if (root / "INDEX.tsv").is_file():
            return root, "sot-" + hashlib.sha256((root / "INDEX.tsv").read_bytes()).hexdigest()[:8]
    return None, "demo"


def calibration_tag():
    """The tag of an int8 export made now: the data it would be calibrated on (the shared folder, if any), and "-w7"
    where this CPU makes it with 7-bit weights and a float head output. Cached exports and recorded benchmark
    results go by it, so an export of one recipe is never taken for the other's."""
    from .shared import shared_root
    return calibration_source(shared_root())[1] + ("-w7" if weights_7bit() else "")


def default_calibration(shared_root=None):
    """(sequences, description): the `train` split of the tracking data beside the checkout when present, else the
    packaged demo clip."""
    root, _ = calibration_source(shared_root)
    if root is not None:
        seqs = train_sequences(root)
        if seqs:
            return seqs, f"{root.name} train ({len(seqs)} sequences)"
    frames, boxes = demo_sequence()
    return [(lambda i: frames[i], boxes)], "demo clip"


__all__ = ["quantize_export", "calibration_pairs", "train_sequences", "calibration_source", "calibration_tag",
           "default_calibration", "demo_sequence", "weights_7bit"]
