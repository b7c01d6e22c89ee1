"""Per-frame results on disk, in the got10k toolkit's OTB-experiment layout so its own report() can read them:

    <results>/<tracker>/<seq>.txt                 x,y,w,h per frame, comma separated, '%.3f' ('nan' before init)
    <results>/<tracker>/times/<seq>_time.txt      seconds of the tracker call per frame (init on the init frame)
    <results>/<tracker>/times/<seq>_decode.txt    seconds of frame decoding per frame (ours, the toolkit ignores it)
    <results>/<tracker>/scores/<seq>_score.txt    the tracker's confidence per frame (ours)
    <results>/<tracker>/tracker.json              what made these results: weights digest, backend, precision, ...

Results are reused by tracker name, so the name alone must not stand for them: the same name with other weights (a
new release, a checkpoint retrained in place), another backend or precision, or another OpenCV gives other boxes.
`tracker.json` records the setup that made a folder, and a run with another setup is refused rather than scored on
the old boxes.

Boxes are written in the dataset's own convention (1-based for OTB, LaSOT and UAV123 ground truth, 0-based for
GOT-10k) so that a result file and its ground-truth file line up; metrics are always computed from the files read
back, so a fresh run and a reused one give identical numbers.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ..errors import OutputError

ONE_BASED = {"otb", "lasot", "uav123"}
SETUP_FILE = "tracker.json"


def offset_of(seq) -> np.ndarray:
    one = 1.0 if seq.meta.get("dataset", "otb") in ONE_BASED else 0.0
    return np.array([one, one, 0.0, 0.0])


def paths(results_dir, tracker, seq_name) -> dict:
    d = Path(results_dir) / tracker
    return {"boxes": d / f"{seq_name}.txt", "times": d / "times" / f"{seq_name}_time.txt",
            "decode": d / "times" / f"{seq_name}_decode.txt", "scores": d / "scores" / f"{seq_name}_score.txt"}


def write(results_dir, tracker, seq, out):
    p = paths(results_dir, tracker, seq.name)
    try:
        for f in p.values():
            f.parent.mkdir(parents=True, exist_ok=True)
        # Box file last: its presence is what marks a sequence as done.
        np.savetxt(p["times"], out["times"], fmt="%.8f")
        np.savetxt(p["decode"], out["decode"], fmt="%.8f")
        np.savetxt(p["scores"], out["scores"], fmt="%.6f")
        tmp = p["boxes"].with_name(p["boxes"].name + ".tmp")
        np.savetxt(tmp, np.asarray(out["boxes"]) + offset_of(seq), fmt="%.3f", delimiter=",")
        tmp.replace(p["boxes"])
    except OSError as e:
        raise OutputError(f"cannot write results under {results_dir}: {e.strerror or e}") from None


def _load(path, n, cols=None):
    if not path.is_file():
        return None
    arr = np.loadtxt(path, delimiter="," if cols else None, ndmin=2 if cols else 1)
    if len(arr) != n or (cols and arr.shape[1] != cols):
        return None
    return arr


def read(results_dir, tracker, seq, n) -> dict | None:
    """The stored result of a sequence of n frames, or None when absent or of another length. `boxes` are 0-based,
    `file_boxes` the numbers exactly as stored (what the toolkit scores)."""
    p = paths(results_dir, tracker, seq.name)
    try:
        boxes = _load(p["boxes"], n, 4)
    except ValueError:
        return None
    if boxes is None:
        return None
    out = {"boxes": boxes - offset_of(seq), "file_boxes": boxes}
    for key in ("times", "decode", "scores"):
        try:
            arr = _load(p[key], n)
        except ValueError:
            arr = None
        out[key] = arr if arr is not None else np.full(n, np.nan)
    return out


def merge(sources, dest):
    """Copy the result folders of shard runs into `dest`, with their setup records. Two shards with different boxes
    for one sequence, or different setups of one tracker, are an error rather than a silent choice; their times may
    differ (the first copy wins)."""
    dest = Path(dest)
    for src in sources:
        src = Path(src)
        if not src.is_dir():
            raise OutputError(f"results folder to merge not found: {src}")
        if src.resolve() == dest.resolve():
            continue
        for f in sorted(src.rglob("*.txt")) + sorted(src.glob(f"*/{SETUP_FILE}")):
            target = dest / f.relative_to(src)
            if target.exists():
                # a tracker folder's own files (boxes, its setup record; claim writes records byte for byte the
                # same for one setup) must agree; times and scores may differ
                if f.parent.parent == src and target.read_bytes() != f.read_bytes():
                    what = "setups of one tracker" if f.name == SETUP_FILE else "boxes for the same sequence"
                    raise OutputError(f"{f} and {target} hold different {what}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)


def _read_setup(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def claim(results_dir, tracker, setup, force=False):
    """Make <results>/<tracker> the folder of `setup` (a JSON-able dict of what decides the results) before tracking
    into it or reusing it. A folder recorded for another setup is refused, unless `force`: then its results are
    removed, all of them, so that none of another setup is ever scored as this one's. A folder with results but no
    record (written before records were kept) is reused, with a note, or with `force` replaced the same way."""
    d = Path(results_dir) / tracker
    f = d / SETUP_FILE
    if f.is_file():
        old = _read_setup(f)
        if old == setup:
            return
        if not force:
            old = old if isinstance(old, dict) else {}
            differ = sorted(k for k in set(old) | set(setup) if old.get(k) != setup.get(k))
            raise OutputError(f"{d} holds results of another {tracker} setup (other {', '.join(differ)}): pass "
                              f"--force to track it again, or choose another --results folder")
    elif not force and any(d.glob("*.txt")):
        print(f"note: {d} does not record the setup that made its results (older siamtrack); reusing them",
              file=sys.stderr)
        return
    # Forced over another (or an unrecorded) setup: the sequences this run does not track again would otherwise
    # pass for the new setup's, so the folder's old results go.
    stale = [f for pattern in paths(results_dir, tracker, "*").values() for f in pattern.parent.glob(pattern.name)]
    if stale:
        print(f"note: replacing {d}: its {len(stale)} result files were of another setup", file=sys.stderr)
    try:
        for old_file in stale:
            old_file.unlink()
        d.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(setup, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise OutputError(f"cannot write results under {results_dir}: {e.strerror or e}") from None


def trackers_in(results_dir) -> list:
    """Trackers with result folders here; a folder `NAME@sreK` is run K of NAME (`benchmark --init-jitter`)."""
    d = Path(results_dir)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and "@sre" not in p.name and any(p.glob("*.txt")))
