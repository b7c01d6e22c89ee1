"""siamtrack match --template IMG --box x,y,w,h IMAGES_OR_FOLDER... [--model M] [--method siamese|opencv] ..."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from ..data.datasets import list_images
from ..errors import ConfigError, OutputError, SourceError
from ..match import DEFAULT_SCALES, METHODS, MatchOptions, read_frame, make_matcher
from ..trackers.base import TrackResult, check_box
from ..writers import check_output, draw
from .track import parse_boxes

HELP = "find the object boxed in one image in other images (one-shot detection), with a score per match"


def add_arguments(p):
    p.add_argument("images", nargs="+", help="query images, or folders of images")
    p.add_argument("--template", required=True, help="the image that shows the object")
    p.add_argument("--box", required=True, metavar="x,y,w,h", help="the object in the template, 0-based pixels")
    p.add_argument("--model", default=None, help="model name (see `siamtrack models`) or checkpoint path "
                   "(default: the first shipped model with a score calibration, siamrpn-lite)")
    p.add_argument("--method", default="siamese", choices=METHODS,
                   help="siamese (the model) or opencv (multi-scale cv2.matchTemplate, the baseline)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--top-k", type=int, default=5, help="matches per image, best first")
    p.add_argument("--min-score", type=float, default=0.0, help="drop matches scoring below this")
    p.add_argument("--scales", default=",".join(str(s) for s in DEFAULT_SCALES),
                   help="object sizes to search, relative to the template's (comma-separated)")
    p.add_argument("--json", help="write the matches here")
    p.add_argument("--output-dir", help="write each image with its matches drawn into this folder")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")


def query_paths(items):
    """Files as given and the images of folders, in order; a missing path or an empty folder is an error."""
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise SourceError(f"no images in folder: {p}")
            out += [Path(f) for f in found]
        elif p.is_file():
            out.append(p)
        else:
            raise SourceError(f"image not found: {p}")
    return out


def _scales(text):
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--scales needs comma-separated numbers, got {text!r}") from None


def _drawn_paths(paths, folder, overwrite):
    """One output file per query, named after it (an index prefix where two queries share a name)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder")
    names = [p.name for p in paths]
    out = [folder / (n if names.count(n) == 1 else f"{i:04d}_{n}") for i, n in enumerate(names)]
    if folder.is_dir():
        for p in out:
            check_output(p, overwrite)
    return out


def run(args):
    box = parse_boxes([args.box])[0]
    options = MatchOptions(top_k=args.top_k, min_score=args.min_score, scales=_scales(args.scales))
    paths = query_paths(args.images)
    if args.json:
        check_output(args.json, args.overwrite)
    drawn = _drawn_paths(paths, args.output_dir, args.overwrite) if args.output_dir else None
    template = read_frame(args.template)
    check_box(box, template.shape[1], template.shape[0])      # before the model loads: a bad box fails fast
    matcher = make_matcher(args.method, args.model, device=args.device, options=options)
    matcher.set_template(template, box)
    if drawn:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    results = []
    for i, path in enumerate(tqdm(paths, unit="img", file=sys.stderr, leave=False, disable=None)):
        matches = matcher.find(read_frame(path))
        results.append({"path": str(path), "matches": [m.to_dict() for m in matches]})
        if drawn:
            img = draw(read_frame(path), [TrackResult(m.box, m.score) for m in matches], i)
            if not cv2.imwrite(str(drawn[i]), img):
                raise OutputError(f"cannot write {drawn[i]}")
        best = f"{matches[0].score:.3f} at {[round(float(v), 1) for v in matches[0].box]}" if matches else "none"
        print(f"{path}: {len(matches)} match{'es' if len(matches) != 1 else ''}, best {best}")
    if args.json:
        doc = {"template": {"path": args.template, "box": [float(v) for v in box]}, "model": matcher.model_name,
               "images": results}
        try:
            Path(args.json).write_text(json.dumps(doc, indent=1))
        except OSError as e:
            raise OutputError(f"cannot write {args.json}: {e.strerror}") from None
        print(f"wrote {args.json}")
    return 0
