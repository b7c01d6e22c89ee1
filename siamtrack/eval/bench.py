"""Run trackers over sequences (in worker processes when asked), store results, score them from the stored files.

A tracker is named as the user typed it: a zoo name, a checkpoint path or an OpenCV baseline. Its results folder and
its key in the JSON are the zoo/baseline name, or the checkpoint's file stem; the folder records the setup behind
the name (`setup_of`), so results are reused only for the same weights, backend, precision and library.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import results as R
from .runner import frame_bound, run_sequence, sre_jitter
from .summary import mean_of_runs, sequence_scores, summarize


@dataclass(frozen=True)
class TrackerSpec:
    name: str
    device: str = "auto"
    nano_backbone: str | None = None
    nano_head: str | None = None
    vit_net: str | None = None
    backend: str = "torch"
    precision: str = "fp32"

    @property
    def label(self) -> str:
        from .. import zoo
        from ..trackers.opencv import is_opencv_name
        if is_opencv_name(self.name) or self.name in zoo.MODELS:
            return self.name
        return Path(self.name).stem


def tracker_factory(spec: TrackerSpec):
    """A zero-argument callable returning a fresh tracker; the model is loaded once, here."""
    from ..trackers.opencv import is_opencv_name, make_opencv_tracker
    if is_opencv_name(spec.name):
        make_opencv_tracker(spec.name, spec.nano_backbone, spec.nano_head, spec.vit_net)  # fail early on bad files
        return lambda: make_opencv_tracker(spec.name, spec.nano_backbone, spec.nano_head, spec.vit_net)
    from ..api import make_tracker
    from ..loader import load_model
    net, cfg, _ = load_model(spec.name, spec.device, backend=spec.backend, precision=spec.precision)
    return lambda: make_tracker(net, cfg, net.device)


def setup_of(spec: TrackerSpec) -> dict:
    """What decides a tracker's boxes besides the sequences, as recorded beside its results: for our models the
    weights' sha256 (the tracking constants live in the checkpoint), backend, precision, siamtrack's version and, in
    int8, the calibration data; for an OpenCV baseline its OpenCV version and the sha256 of its model files."""
    import cv2

    from .. import __version__, zoo
    from ..checkpoint import sha256_of
    from ..errors import CheckpointError
    from ..trackers.opencv import is_opencv_name, model_files
    if is_opencv_name(spec.name):
        files = model_files(spec.name, spec.nano_backbone, spec.nano_head, spec.vit_net)
        return {"tracker": spec.name, "opencv": cv2.__version__,
                "model_files": {Path(f).name: sha256_of(f) for f in files}}
    path, _ = zoo.resolve(spec.name)
    if path.is_dir():      # an onnxruntime export folder: every file in it
        digest = {str(f.relative_to(path)): sha256_of(f) for f in sorted(path.rglob("*")) if f.is_file()}
    elif path.is_file():
        digest = sha256_of(path)
    else:
        raise CheckpointError(f"weights file not found: {path}")
    # The label, not the path as typed: the same weights named from another folder are the same tracker (the sha256
    # tells other weights of that file name apart).
    setup = {"tracker": spec.label, "weights_sha256": digest, "backend": spec.backend, "precision": spec.precision,
             "siamtrack": __version__}
    if spec.precision == "int8":    # int8 boxes depend on the calibration crops too
        from ..quantize import calibration_tag
        setup["calibration"] = calibration_tag()
    return setup


def frames_of(seq, max_frames) -> int:
    return len(seq) if max_frames is None else min(len(seq), int(max_frames))


def set_thread_budget(threads):
    import cv2
    import torch
    torch.set_num_threads(max(1, int(threads)))
    # OpenCV's own pool would compete with torch's threads and with the other workers.
    cv2.setNumThreads(1)


_FACTORIES = {}


def run_label(label, run):
    """Results folder of run `run` (0: the plain one-pass run, k: runner.SRE_JITTERS[k - 1])."""
    return label if run == 0 else f"{label}@sre{run}"


def _worker_task(job):
    spec, seq, results_dir, max_frames, run = job
    if spec not in _FACTORIES:
        _FACTORIES[spec] = tracker_factory(spec)
    out = run_sequence(_FACTORIES[spec](), seq, max_frames, jitter=sre_jitter(run))
    R.write(results_dir, run_label(spec.label, run), seq, out)
    return seq.name


def run_tracker(spec: TrackerSpec, seqs, results_dir, workers=1, force=False, max_frames=None, progress=True,
                runs=1):
    """Track every sequence whose results are missing (all of them with force) and write their result files, for
    the plain run and `runs - 1` SRE runs."""
    from tqdm import tqdm
    setup = setup_of(spec)
    for k in range(runs):
        R.claim(results_dir, run_label(spec.label, k), setup, force)
    todo = [(s, k) for k in range(runs) for s in seqs
            if force or R.read(results_dir, run_label(spec.label, k), s, frames_of(s, max_frames)) is None]
    total = len(seqs) * runs
    bar = tqdm(total=total, initial=total - len(todo), desc=spec.label, unit="seq", disable=not progress,
               leave=True, dynamic_ncols=True)
    try:
        if not todo:
            return
        jobs = [(spec, s, str(results_dir), max_frames, k) for s, k in todo]
        if workers <= 1 or len(todo) == 1:
            _FACTORIES[spec] = tracker_factory(spec)
            for job in jobs:
                _worker_task(job)
                bar.update()
            return
        tracker_factory(spec)  # a bad name or file fails here once, not in every worker
        n = min(workers, len(todo))
        threads = max(1, (os.cpu_count() or 1) // n)
        with mp.get_context("spawn").Pool(n, initializer=set_thread_budget, initargs=(threads,)) as pool:
            for _ in pool.imap_unordered(_worker_task, jobs):
                bar.update()
    finally:
        bar.close()


def score_runs(label, seqs, results_dir, max_frames=None, runs=1) -> dict:
    """`score_tracker` of each run, averaged: every number (dataset-level, per sequence, the curves) is the mean over
    the runs; `run_auc` lists each run's success AUC."""
    return mean_of_runs([score_tracker(run_label(label, k), seqs, results_dir, max_frames) for k in range(runs)])


def score_tracker(label, seqs, results_dir, max_frames=None) -> dict:
    """Dataset-level scores of one tracker from its stored result files (plus decode_ms and the curves)."""
    per_seq, decode = {}, []
    for seq in seqs:
        n = frames_of(seq, max_frames)
        res = R.read(results_dir, label, seq, n)
        if res is None:
            from ..errors import OutputError
            raise OutputError(f"no results of {label} for sequence {seq.name} in {results_dir}")
        off = R.offset_of(seq)
        gt = np.asarray(seq.boxes, dtype=np.float64)[:n] + off
        per_seq[seq.name] = sequence_scores(gt, res["file_boxes"], res["times"], frame_bound(seq), origin=off[0])
        d = res["decode"]
        decode.append(d[np.isfinite(d) & (d > 0)])
    out = summarize(per_seq)
    d = np.concatenate(decode) if decode else np.zeros(0)
    out["decode_ms"] = float(d.mean() * 1000) if len(d) else None
    return out
