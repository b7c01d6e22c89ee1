"""Distilling a trained tracker's trunk into a slimmer student (`siamtrack distill`), the speed path of issue 15.

The student is an experiment YAML whose backbone is a slim EfficientNet-Lite0 (`stem`, `stages`: see
siamtrack/models/efficientnet.py) and whose neck and head are the teacher's. Distillation trains the student trunk
only; the teacher's neck and head are copied into the student model unchanged, so the result tracks as it is.
(`siamtrack train --init` can fine-tune it further; measured once, that lost accuracy: pretrained/siamrpn_lite.md.)

- Initialisation (`prune_init`; `--init` starts from an earlier student instead, with a fresh rate schedule): each
  student block is cut from the teacher block at the same place in the same stage (a stage's first blocks, which hold
  its stride and channel change), keeping the channels the teacher's BatchNorm scales rate highest; a stage's residual
  stream is chosen once for all its blocks. A student that starts near the teacher's function needs a fraction of the
  steps that random weights need.
- Loss: the squared error of the trunk features of the exemplar and the search crops, per channel over the teacher
  features' spread (measured on the first batch), plus the squared error of the teacher's neck and head outputs
  when they read the student's features: what tracking needs is the head's answer, not every channel.
- Crops: the training pairs of `siamtrack train` (siamtrack/data/pairs.py) with the student config's augmentation,
  so the student sees the crops a tracker cuts. Boxes and negative flags are not used.
- The student's BatchNorm statistics train (`freeze_bn` off here): pruning and the dropped blocks change them.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import torch
from torch.utils.data import DataLoader

from ..checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..config import load_config
from ..data.pairs import PairDataset, loader_workers
from ..device import pick_device
from ..errors import ConfigError, OutputError
from ..loader import load_model
from ..models import build_model
from ..models.efficientnet import EfficientNetLite0
from .data_setup import training_data
from .trainer import CsvLog, hardware

DESCRIPTION = "distil a trained tracker's trunk into the slimmer trunk of a student experiment YAML"
LOG_FIELDS = ["step", "lr", "loss", "feature_loss", "head_loss", "pairs_per_s", "wall"]


@dataclass
class DistillOptions:
    config: str                              # the student's experiment YAML
    teacher: str = "siamrpn-lite"            # zoo name or checkpoint
    data: Optional[List[str]] = None
    data_split: Optional[str] = None
    coco: Optional[str] = None
    out: Optional[str] = None                # run folder; None: runs/<config name>-distill
    steps: int = 4000
    lr: float = 1e-3
    batch_size: Optional[int] = None         # None: the config's train.batch_size
    threads: Optional[int] = None
    workers: Optional[int] = None
    seed: Optional[int] = None
    resume: bool = False
    init: Optional[str] = None               # student weights to start from instead of the pruned teacher
    max_steps: Optional[int] = None          # stop (and save) after this many steps in all; the schedule is --steps
    device: str = "auto"

    @classmethod
    def from_args(cls, args) -> "DistillOptions":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def add_arguments(p):
    p.add_argument("--config", required=True, help="the student's experiment YAML, e.g. experiments/siamrpn_slim.yaml")
    p.add_argument("--teacher", default="siamrpn-lite", help="the trained model whose trunk is distilled (zoo name "
                                                             "or checkpoint; default siamrpn-lite)")
    p.add_argument("--data", nargs="+", metavar="ROOT", help="sequence roots whose training pairs give the crops "
                                                             "(default: the shared data beside the repository)")
    p.add_argument("--data-split", help="split of the --data roots (default: train where the root has splits)")
    p.add_argument("--coco", metavar="DIR", help="still images with boxes, as for siamtrack train")
    p.add_argument("--out", metavar="DIR", help="run folder for log.csv and last.pth (default runs/<name>-distill)")
    p.add_argument("--steps", type=int, default=4000, help="optimizer steps in all (default 4000)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW rate at the start, cosine to 0 (default 1e-3)")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="pairs a step (default: the config's)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--workers", type=int, help="data-loading worker processes (default: the config's)")
    p.add_argument("--seed", type=int, help="pair seed (default: the config's train.seed)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pth")
    p.add_argument("--init", metavar="CKPT", help="start the student from this checkpoint of the student's "
                                                  "architecture (e.g. an earlier distillation's last.pth) instead "
                                                  "of cutting it from the teacher; a fresh rate schedule")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="stop (and save last.pth) after this many steps "
                                                                    "in all; the rate schedule stays that of --steps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def _top(importance, k):
    """Indices of the k largest |importance|, in their original order."""
    return torch.sort(torch.argsort(importance.abs(), descending=True)[:k]).values


def _stage_blocks(specs):
    """Block indices of each stage, in order: {stage: [block, ...]}."""
    out = {}
    for i, spec in enumerate(specs):
        out.setdefault(spec[0], []).append(i)
    return out


def prune_init(student: EfficientNetLite0, teacher: EfficientNetLite0):
    """Set the student trunk's weights from the teacher's (see the module docstring). Both are Lite0-shaped with
    the same kernel sizes and strides per stage; the student has no more channels or blocks than the teacher."""
    s_specs, t_specs = student.specs, teacher.specs
    s_stages, t_stages = _stage_blocks(s_specs), _stage_blocks(t_specs)
    if len(s_stages) > len(t_stages) or any(len(s_stages[k]) > len(t_stages[k]) for k in s_stages):
        raise ConfigError("the student trunk has more stages or blocks than the teacher's")
    for k in s_stages:
        s0, t0 = s_specs[s_stages[k][0]], t_specs[t_stages[k][0]]
        if s0[1:3] != t0[1:3]:
            raise ConfigError(f"student stage {k} has kernel/stride {s0[1:3]}, the teacher's {t0[1:3]}")
    tsd, sd = teacher.state_dict(), student.state_dict()

    def take(dst, src, rows, cols=None):
        w = tsd[src][rows]
        sd[dst] = (w[:, cols] if cols is not None else w).clone()

    def bn(dst, src, idx):
        for f in ("weight", "bias", "running_mean", "running_var"):
            take(f"{dst}.{f}", f"{src}.{f}", idx)

    stream = _top(tsd["stem.1.weight"], student.stem[0].out_channels)
    take("stem.0.weight", "stem.0.weight", stream)
    bn("stem.1", "stem.1", stream)
    for k, blocks in s_stages.items():
        t_blocks = t_stages[k]
        width = s_specs[blocks[0]][5]
        out = _top(sum(tsd[f"blocks.{b}.project.1.weight"].abs() for b in t_blocks), width)
        for s_b, t_b in zip(blocks, t_blocks):
            dst, src = f"blocks.{s_b}", f"blocks.{t_b}"
            if student.blocks[s_b].expand is not None:
                if teacher.blocks[t_b].expand is None:
                    raise ConfigError(f"student block {s_b} expands where the teacher's block {t_b} does not")
                mid = _top(tsd[f"{src}.depthwise.1.weight"], student.blocks[s_b].expand[0].out_channels)
                take(f"{dst}.expand.0.weight", f"{src}.expand.0.weight", mid, stream)
                bn(f"{dst}.expand.1", f"{src}.expand.1", mid)
            else:
                mid = stream
            take(f"{dst}.depthwise.0.weight", f"{src}.depthwise.0.weight", mid)
            bn(f"{dst}.depthwise.1", f"{src}.depthwise.1", mid)
            take(f"{dst}.project.0.weight", f"{src}.project.0.weight", out, mid)
            bn(f"{dst}.project.1", f"{src}.project.1", out)
            stream = out
    student.load_state_dict(sd)


def distil_loss(student_net, teacher_net, z, x, scale):
    """-> (total, feature term, head term) for exemplar crops z and search crops x; `scale` (1, C, 1, 1) is the
    teacher features' spread per channel."""
    with torch.no_grad():
        tz, tx = teacher_net.backbone(z), teacher_net.backbone(x)
        t_out = teacher_net.head(teacher_net.head.template(teacher_net.neck(tz, is_template=True)),
                                 teacher_net.neck(tx))
    sz, sx = student_net.backbone(z), student_net.backbone(x)
    feat = (((sx - tx) / scale) ** 2).mean() + (((sz - tz) / scale) ** 2).mean()
    # the teacher's neck and head, frozen, reading the student's features
    s_out = teacher_net.head(teacher_net.head.template(teacher_net.neck(sz, is_template=True)), teacher_net.neck(sx))
    head = sum(torch.nn.functional.mse_loss(a, b) for a, b in zip(s_out, t_out))
    return feat + head, feat, head


def distill(o: DistillOptions) -> int:
    cfg = load_config(o.config)
    t = cfg.train
    if o.threads:
        torch.set_num_threads(o.threads)
    if o.steps < 1 or o.lr <= 0:
        raise ConfigError("--steps must be at least 1 and --lr positive")
    device = pick_device(o.device)
    out = Path(o.out or Path("runs") / f"{cfg.name}-distill")
    last = out / "last.pth"
    if o.init and o.resume:
        raise ConfigError("--init starts a new run and --resume continues one: pass one of them")
    if last.is_file() and not o.resume:
        raise OutputError(f"{out} already holds a run (last.pth); pass --resume to continue it or choose another --out")
    teacher, t_cfg, _ = load_model(o.teacher, device=device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = build_model(cfg.model).to(device)
    if not isinstance(student.backbone, EfficientNetLite0) or not isinstance(teacher.backbone, EfficientNetLite0):
        raise ConfigError("distillation needs EfficientNet-Lite0-shaped trunks in both the teacher and the student")
    if student.stride != teacher.stride:
        # the features are compared cell by cell: a stride-8 teacher (output_stride: 8) needs a stride-8 student
        raise ConfigError(f"the student's trunk has stride {student.stride} and the teacher's ({o.teacher}) "
                          f"{teacher.stride}: set the student's backbone output_stride to match")
    for part in ("neck", "head"):
        try:
            getattr(student, part).load_state_dict(getattr(teacher, part).state_dict())
        except (RuntimeError, AttributeError):
            raise ConfigError(f"the student's {part} must be the teacher's ({o.teacher})") from None
    batch = o.batch_size or t.batch_size
    state = {"step": 0, "wall_s": 0.0}
    scale = None
    opt = torch.optim.AdamW(student.backbone.parameters(), lr=o.lr, weight_decay=1e-4)
    if o.resume and last.is_file():
        blob = load_checkpoint(last)
        load_weights(student, blob["model"], last)
        opt.load_state_dict(blob["optimizer"])
        state.update(blob["distill_state"])
        scale = blob["feature_scale"].to(device)
        print(f"resuming {last} at step {state['step']}", file=sys.stderr)
    elif o.init:
        load_weights(student, load_checkpoint(o.init)["model"], o.init)
    else:
        prune_init(student.backbone, teacher.backbone)
    sequences, static, desc = training_data(o.data, o.data_split, o.coco, static_splits=t.static_splits)
    seed = t.seed if o.seed is None else o.seed
    pairs = PairDataset(sequences, cfg, static=static, seed=seed, pairs=o.steps * batch)
    workers = t.workers if o.workers is None else o.workers
    loader = DataLoader(pairs, batch_size=batch, sampler=range(state["step"] * batch, o.steps * batch),
                        persistent_workers=workers > 0, **loader_workers(workers))
    student.backbone.freeze_bn = False
    student.train()
    teacher.eval()
    out.mkdir(parents=True, exist_ok=True)
    log = CsvLog(out / "log.csv", LOG_FIELDS, state["step"])
    meta = {"distilled_from": o.teacher, "teacher_config": t_cfg.name, "data": desc,
            "hardware": hardware(device, torch.get_num_threads(), 1), "command": " ".join(sys.argv)}

    def save():
        save_checkpoint(last, student.state_dict(), cfg.to_dict(),
                        {**meta, "distill_steps": state["step"], "pairs_seen": state["step"] * batch,
                         "wall_s": round(state["wall_s"], 1)},
                        extra={"optimizer": opt.state_dict(), "distill_state": dict(state),
                               "feature_scale": scale.cpu()})

    t_start, last_save = time.monotonic(), time.monotonic()
    wall0 = state["wall_s"]
    # channels-last: the layout torch's CPU convolutions run fastest in (1.4x a step here)
    student.to(memory_format=torch.channels_last)
    teacher.to(memory_format=torch.channels_last)
    for z, x, _, _ in loader:
        z = z.to(device).contiguous(memory_format=torch.channels_last)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        if scale is None:
            with torch.no_grad():
                scale = teacher.backbone(x).std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-3)
        lr = 0.5 * o.lr * (1 + math.cos(math.pi * state["step"] / o.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, feat, head = distil_loss(student, teacher, z, x, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["step"] += 1
        state["wall_s"] = wall0 + time.monotonic() - t_start
        log.write({"step": state["step"], "lr": f"{lr:.3e}", "loss": f"{loss.item():.4f}",
                   "feature_loss": f"{feat.item():.4f}", "head_loss": f"{head.item():.4f}",
                   "pairs_per_s": f"{state['step'] * batch / max(state['wall_s'], 1e-9):.1f}",
                   "wall": f"{state['wall_s']:.0f}"})
        if o.max_steps and state["step"] >= o.max_steps:
            break
        if time.monotonic() - last_save > 60 * t.checkpoint_minutes:
            save()
            last_save = time.monotonic()
    save()
    log.close()
    print(f"distilled {state['step']} steps into {last}", file=sys.stderr)
    return 0
