"""Typed configs, loaded from experiments/*.yaml and stored inside every checkpoint as a plain dict.

Nothing here is global: a config is built, passed to the model, tracker and trainer, and never mutated behind their
backs, so two models with different settings live side by side in one process.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import ConfigError


@dataclass
class ComponentConfig:
    """A model part built by name from a registry, with keyword arguments for its constructor."""
    name: str
    args: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    backbone: ComponentConfig
    head: ComponentConfig
    neck: Optional[ComponentConfig] = None


@dataclass
class TrackerConfig:
    """Post-processing constants: starting values from the SiamFC and SiamRPN papers, tuned per model on the
    validation split (`siamtrack tune`), never on test data. Fields a tracker type does not use are ignored by it."""
    type: str = "siamfc"
    exemplar_size: int = 127
    search_size: int = 255
    context_amount: float = 0.5
    # SiamFC scale search
    num_scales: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_up: int = 16
    min_scale: float = 0.2
    max_scale: float = 5.0
    # shared by SiamFC and SiamRPN: weight of the cosine (Hann) window
    window_influence: float = 0.176
    # SiamRPN and SiamBAN (size and aspect penalty, damped size update)
    penalty_k: float = 0.04
    size_lr: float = 0.3
    # Which aspect ratio the penalty compares a candidate with: 0 the current box (SiamRPN's original), 1 the first
    # frame's box, between them a geometric blend. With 0 a drifted aspect becomes the new reference, so a box that
    # grows onto the head and shoulders of a face (the square crop does not tell the network the box's aspect) is
    # penalised no further; the first box is the only aspect the user gave.
    aspect_prior: float = 0.0
    # How many of the best candidates (by penalised, windowed score) make the new box: their decoded boxes averaged,
    # weighted by that score. 1 is SiamRPN's argmax. The head's offsets are noisy from one anchor and cell to the
    # next; averaging the few best reads the centre and size more steadily at no network cost (session 15: 3 gave
    # +0.01 AUC on the full val of ../sot-all over five starts, for siamrpn-lite and siamrpn-slim alike).
    box_topk: int = 1
    # A side grows at grow_rate x the size update's rate and shrinks at the full rate; 1 is SiamRPN's symmetric
    # update. The heads trained here over-read size (median box side 1.04-1.06x the truth on the full val of
    # ../sot-all), and their regression leans on its training prior (the target at its training size in the crop,
    # which the crop scale carries over from the current box), so a swell, once in, is not corrected by itself.
    # Session 18, five runs in int8 on that val: 0.75 brings the median to 1.00-1.01 for siamrpn-slim, -lite and
    # -lite-s8 at the same AUC within 0.01, and their files ship with it (the model cards). The default stays 1 so
    # that a checkpoint without the field tracks as it did.
    grow_rate: float = 1.0
    min_size: float = 10.0
    # RPN anchors (k = len(anchor_ratios) per response cell; height / width = ratio; area anchor_size^2 in
    # search-crop pixels). Kept here, not in the model, so inference backends that wrap the network still decode it.
    anchor_ratios: list = field(default_factory=lambda: [0.33, 0.5, 1.0, 2.0, 3.0])
    anchor_size: float = 64.0
    # Lost-target states from the per-frame score (siamtrack/trackers/base.py). Scores are calibrated per model, so
    # the defaults never declare a target lost (every frame "tracking", as before states existed); each experiment
    # YAML sets values tuned on the val split.
    uncertain_below: float = 0.0    # score below this: "uncertain"
    lost_below: float = 0.0         # this many consecutive frames below lost_below: "lost"
    lost_patience: int = 5
    recover_above: float = 0.5      # a lost target resumes when a peak beats this
    # Recovery: while lost, search crops at the target's scale tiled over the whole frame, at most recovery_tiles a
    # frame (cycling over frames when more are needed). Tiles are spaced recovery_tile_step x the search side: the
    # share of a search crop over which the response can place the target (0.5 for a 17x17 stride-8 SiamFC map).
    recovery: bool = True
    recovery_tiles: int = 12
    recovery_tile_step: float = 0.5
    # A frame with lost targets costs at most this many normal frames, counted in search crops through the network
    # (the cost of a frame): the tiles of each lost target are cut down to fit, so fps stays steady while a target
    # is gone and the sweep over the frame takes more frames instead.
    recovery_budget: float = 2.0


@dataclass
class TrainConfig:
    epochs: int = 50
    pairs_per_epoch: int = 8000
    batch_size: int = 8
    search_size: int = 239          # SiamFC trains on 239 crops (15x15 response); RPN configs use 255
    max_frame_gap: int = 100
    lr_start: float = 1e-2
    lr_end: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 10.0
    positive_radius: float = 16.0   # pixels in the search crop (2 cells at stride 8)
    negative_pair_prob: float = 0.0
    # of the negative pairs drawn on a still image, the share whose search crop is another object of the exemplar's
    # class in the same photo (when it has one) rather than another photo
    hard_negative_prob: float = 0.0
    # of the negative pairs drawn on a video frame, the share whose search crop is a place near the target in the
    # same frame, with the target wholly outside it (when the frame has such a place): in crowds, traffic and groups
    # that place holds look-alikes, the negatives a tracker that jumps to another person or car needs
    scene_negative_prob: float = 0.0
    # RPN box regression loss on the positive anchors' (dx, dy, dw, dh): "l1" as SiamRPN++ trains, or "smooth_l1"
    # (beta 1). Offsets of positives are mostly under 0.2, where smooth-L1 is quadratic and its gradient ~10x weaker
    # than L1's: siamrpn-lite trained with it learned almost no scale (predicted size follows the target's size in
    # the crop with slope 0.08; see pretrained/siamrpn_lite.md).
    loc_loss: str = "l1"
    # Target displacement and stretch in the search crop: RPN heads need shifts of tens of pixels or they learn that
    # the target always sits in the middle.
    search_shift: float = 8.0
    search_stretch: float = 0.05
    # common scale of the search crop, log-uniform in [1 / (1 + s), 1 + s] (siamtrack/data/augment.py CropParams)
    search_scale: float = 0.0
    # Share of still-image pairs whose target is a part of the annotated box (a sub-box of 40-100 % of each side,
    # anywhere in it): users box faces, heads and parts of objects as often as whole ones, and a head trained on
    # whole objects alone grows a face's box onto the head and body. On one photo the part's box is exact in both
    # crops; video frames would need the part's box in another frame, so they keep the whole box.
    part_prob: float = 0.0
    static_image_prob: float = 0.2
    # A sequence is drawn with probability proportional to (its valid frames) ** frame_weight: 1 by frames (one
    # 3,000-frame clip outweighs forty 70-frame ones), 0 every sequence alike, as pysot draws videos.
    frame_weight: float = 1.0
    # Splits of the still-image root (--coco) to draw from, in this order: images/<split>/ with its labels. COCO's
    # val2017 images are not the tracking val split, so training may use them.
    static_splits: list = field(default_factory=lambda: ["train2017"])
    backbone_lr_mult: float = 1.0
    freeze_backbone_epochs: int = 0
    frozen_backbone_prefixes: list = field(default_factory=list)
    workers: int = 2
    amp_bf16: bool = False
    checkpoint_minutes: float = 5.0
    # > 0: the backbone (or its first part: see frozen_backbone_prefixes) stays frozen for the whole run, so its
    # features for this many pairs are computed once and each epoch is one shuffled pass over them
    # (siamtrack/train/trunk_cache.py)
    cache_trunk_pairs: int = 0
    # and this many more pairs from the still images only (COCO), appended to those: raises the bank's share of
    # still-image pairs without redrawing the mixed ones
    cache_static_pairs: int = 0
    val_max_frames: int = 150       # epoch-end validation tracks only the first frames of each sequence
    seed: int = 0


@dataclass
class ExperimentConfig:
    name: str
    model: ModelConfig
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    return cls(**data)


def _component(data, where):
    if data is None:
        return None
    return _build(ComponentConfig, data, where)


def config_from_dict(data: dict) -> ExperimentConfig:
    if not isinstance(data, dict) or "name" not in data or "model" not in data:
        raise ConfigError("a config needs 'name' and 'model'")
    m = data["model"]
    if not isinstance(m, dict) or "backbone" not in m or "head" not in m:
        raise ConfigError("model: needs 'backbone' and 'head'")
    model = ModelConfig(backbone=_component(m["backbone"], "model.backbone"),
                        head=_component(m["head"], "model.head"),
                        neck=_component(m.get("neck"), "model.neck"))
    extra = set(m) - {"backbone", "head", "neck"}
    if extra:
        raise ConfigError(f"model: unknown keys {sorted(extra)}")
    extra = set(data) - {"name", "model", "tracker", "train"}
    if extra:
        raise ConfigError(f"config: unknown keys {sorted(extra)}")
    return ExperimentConfig(name=str(data["name"]), model=model,
                            tracker=_build(TrackerConfig, data.get("tracker") or {}, "tracker"),
                            train=_build(TrainConfig, data.get("train") or {}, "train"))


def load_config(path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return config_from_dict(data)
