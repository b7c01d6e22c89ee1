"""siamtrack export --model NAME|PATH --format onnx --out DIR"""
from __future__ import annotations

from pathlib import Path

from ..loader import load_model
from ..errors import OutputError
from ..export import FILES, INFO_FILE, export_onnx

HELP = "export a model as ONNX graphs (template, track, backbone) for onnxruntime and other runtimes"


def add_arguments(p):
    p.add_argument("--model", required=True, help="model name (see `siamtrack models`) or checkpoint path")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="folder to write template.onnx, track.onnx, track1.onnx, "
                   f"backbone.onnx and {INFO_FILE} into")
    p.add_argument("--overwrite", action="store_true", help="replace an export already in --out")


def run(args) -> int:
    out = Path(args.out)
    existing = [name for name in (*FILES.values(), INFO_FILE) if (out / name).exists()]
    if existing and not args.overwrite:
        raise OutputError(f"{out} already holds {', '.join(existing)} (use --overwrite to replace them)")
    model, cfg, _ = load_model(args.model, device="cpu")
    export_onnx(model, cfg, out)
    print(f"wrote {', '.join(FILES.values())} and {INFO_FILE} to {out}")
    print(f"use it with: load_tracker(\"{out}\", backend=\"onnxruntime\") or siamtrack speed --model {out} "
          "--backend onnxruntime")
    return 0
