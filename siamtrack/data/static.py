"""Static images with object boxes (COCO json or YOLO txt) for static-image training pairs.

Each reader returns a list of (image path, (M, 4) float64 boxes, 0-based x, y, w, h, (M,) int class ids: YOLO's
class index or COCO's category_id, compared only with each other). Images without labels and
labels without images are skipped. Boxes are kept only when both sides are at least MIN_SIDE pixels and the box
covers at least MIN_AREA_FRACTION of the image: the exemplar crop scales the target to about 64 px, so a smaller box
would be magnified into blur that looks nothing like a tracked object, and a speck of a few pixels carries no
appearance to match.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import IMAGE_EXTS, natural_key
from ..errors import DatasetError

MIN_SIDE = 8.0
MIN_AREA_FRACTION = 0.005


def keep_boxes(boxes, classes, width, height, min_side=MIN_SIDE, min_area_fraction=MIN_AREA_FRACTION):
    """-> (boxes, classes) of the boxes big enough to track."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = (np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] >= min_side) & (boxes[:, 3] >= min_side)
          & (boxes[:, 2] * boxes[:, 3] >= min_area_fraction * width * height))
    return boxes[ok], np.asarray(classes, dtype=np.int64).reshape(-1)[ok]


def read_coco(json_path, image_dir):
    json_path, image_dir = Path(json_path), Path(image_dir)
    if not json_path.is_file():
        raise DatasetError(f"COCO annotation file not found: {json_path}")
    try:
        data = json.loads(json_path.read_text())
        images = {im["id"]: im for im in data["images"]}
        anns = data["annotations"]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{json_path} is not a COCO instances file ({type(e).__name__}: {e})") from None
    per_image = {}
    for a in anns:
        if a.get("iscrowd", 0):
            continue  # crowd boxes hold many objects, not one target
        per_image.setdefault(a["image_id"], []).append((a["bbox"], a.get("category_id", -1)))
    out = []
    for image_id, bbs in sorted(per_image.items()):
        im = images.get(image_id)
        if im is None:
            continue
        path = image_dir / im["file_name"]
        if not path.is_file():
            continue
        kept, classes = keep_boxes([b for b, _ in bbs], [c for _, c in bbs], im["width"], im["height"])
        if len(kept):
            out.append((str(path), kept, classes))
    return out


def read_yolo(image_dir, label_dir):
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    if not image_dir.is_dir():
        raise DatasetError(f"image folder not found: {image_dir}")
    if not label_dir.is_dir():
        raise DatasetError(f"label folder not found: {label_dir}")
    out = []
    images = sorted((p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS),
                    key=lambda p: natural_key(p.name))
    for img in images:
        txt = label_dir / (img.stem + ".txt")
        if not txt.is_file():
            continue
        rows = []
        for lineno, line in enumerate(txt.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 5:
                raise DatasetError(f"{txt}:{lineno}: expected 'class cx cy w h', got {line[:60]!r}")
            rows.append([float(v) for v in parts[:5]])
        if not rows:
            continue
        with Image.open(img) as im:  # reads the header only
            width, height = im.size
        n = np.array(rows, dtype=np.float64)
        classes, n = n[:, 0].astype(np.int64), n[:, 1:]
        boxes = np.stack([(n[:, 0] - n[:, 2] / 2) * width, (n[:, 1] - n[:, 3] / 2) * height,
                          n[:, 2] * width, n[:, 3] * height], axis=1)
        kept, classes = keep_boxes(boxes, classes, width, height)
        if len(kept):
            out.append((str(img), kept, classes))
    return out


def open_static(root, split="train2017"):
    """A COCO/YOLO root laid out as images/<split>/ with labels/<split>/ (YOLO, preferred) or
    coco_json/instances_<split>.json or annotations/instances_<split>.json (COCO)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"static image root not found: {root}")
    image_dir = root / "images" / split
    if (root / "labels" / split).is_dir():
        items = read_yolo(image_dir, root / "labels" / split)
    else:
        for sub in ("coco_json", "annotations"):
            j = root / sub / f"instances_{split}.json"
            if j.is_file():
                items = read_coco(j, image_dir)
                break
        else:
            raise DatasetError(f"{root} has neither labels/{split}/ nor instances_{split}.json")
    if not items:
        raise DatasetError(f"{root} holds no labelled images for split {split!r}")
    return items
