"""The training loop: one process, or one of N under torchrun with DistributedDataParallel.

The learning rate and batch size in the config are for the whole batch over all processes; each of N processes takes
batch_size / N pairs and DDP averages the gradients. Only rank 0 writes logs and checkpoints and runs validation.
Every pair is a pure function of (seed, epoch, index) and the checkpoint holds the model, optimizer, step and torch RNG
state, so `--resume` continues with exactly the batches and weights an uninterrupted run would have had.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import config_of, load_checkpoint, load_weights, save_checkpoint
from ..config import load_config
from ..data.pairs import PairDataset, ResumableSampler, loader_workers
from ..device import pick_device
from ..errors import ConfigError, OutputError
from ..loader import cache_dir, read_checkpoint
from ..models import build_model
from ..models.ban import adopt_state
from ..runtime import native_bf16_supported
from .data_setup import training_data, validation_data
from .objectives import build_objective
from .options import TrainOptions
from .trunk_cache import CachedPairs, build_trunk_cache, trunk_cut
from .validate import validate

LOG_FIELDS = ["step", "epoch", "lr", "loss", "pairs_per_s", "wall"]
VAL_FIELDS = ["epoch", "step", "auc", "precision20", "sequences", "frames", "seconds"]


def bank_root() -> Path:
    """Where trunk-feature banks live unless --bank-dir says otherwise: one per machine, shared by runs."""
    return cache_dir() / "banks"


def lr_at(cfg_train, step, total_steps):
    """Log-linear decay from lr_start (step 0) to lr_end (last step)."""
    t = step / max(1, total_steps - 1)
    return cfg_train.lr_start * (cfg_train.lr_end / cfg_train.lr_start) ** min(1.0, t)


def _under(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def frozen_prefixes(cfg_train, epoch):
    """Module-name prefixes kept frozen in this epoch (empty list: nothing frozen)."""
    if epoch >= cfg_train.freeze_backbone_epochs:
        return []
    if not cfg_train.frozen_backbone_prefixes:
        return ["backbone"]
    return [f"backbone.{p}" for p in cfg_train.frozen_backbone_prefixes]


def apply_freeze(model, prefixes):
    """Freeze parameters under `prefixes` and keep their BatchNorm statistics fixed (eval mode)."""
    for name, p in model.named_parameters():
        p.requires_grad_(not _under(name, prefixes))
    model.train()
    for name, m in model.named_modules():
        if prefixes and name and _under(name, prefixes) and isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def param_groups(model, cfg_train):
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    groups = [{"params": rest, "lr_mult": 1.0}]
    if backbone:
        groups.append({"params": backbone, "lr_mult": cfg_train.backbone_lr_mult})
    return groups


def hardware(device, threads, world):
    info = {"device": str(device), "processes": world, "threads": threads, "torch": str(torch.__version__),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class CsvLog:
    """Append-only CSV with a header. Rows past `keep_until_step` (left by a run that went on after its last
    checkpoint) are dropped on opening, so a resumed run's log has each step once."""

    def __init__(self, path, fields, keep_until_step):
        self.path = Path(path)
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until_step]
            with open(self.path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                w.writerows(rows)
        new = not self.path.is_file()
        self.f = open(self.path, "a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields)
        if new:
            self.w.writeheader()

    def write(self, row):
        self.w.writerow(row)
        self.f.flush()

    def close(self):
        self.f.close()


def _setup_distributed(device_name):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return pick_device(device_name), 0, 1
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    # Ranks > 0 wait at a barrier while rank 0 validates: allow a long validation rather than the 30-min default.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=3))
    return device, rank, world


def _overrides(cfg, opts):
    changes = {}
    for key in ("epochs", "workers", "seed", "pairs_per_epoch", "batch_size", "val_max_frames"):
        value = getattr(opts, key)
        if value is not None:
            changes[key] = value
    if opts.no_bf16:
        changes["amp_bf16"] = False
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


def train(options: TrainOptions) -> int:
    device, rank, world = _setup_distributed(options.device)
    try:
        return _Run(options, device, rank, world).run()
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


class _Run:
    """One training run: config, data, model, optimizer and progress, built once and shared by the epochs."""

    def __init__(self, opts, device, rank, world):
        self.opts, self.device, self.rank, self.world = opts, device, rank, world
        self.cfg = _overrides(load_config(opts.config), opts)
        t = self.t = self.cfg.train
        if opts.threads:
            torch.set_num_threads(opts.threads)
        if t.batch_size % world:
            raise ConfigError(f"batch_size {t.batch_size} does not split over {world} processes")
        self.out = Path(opts.out or Path("runs") / self.cfg.name)
        self.last_path = self.out / "last.pth"
        if rank == 0 and self.last_path.is_file() and not opts.resume:
            raise OutputError(f"{self.out} already holds a run (last.pth); pass --resume to continue it or choose "
                              f"another --out")
        self._build_data()
        self._build_model()
        self.state = {"epoch": 0, "step": 0, "best_auc": -1.0, "pairs_seen": 0, "wall_s": 0.0, "val": None}
        if self.resume_blob is not None:
            self._resume()
        # bf16 only where it is native: emulated (AVX2-only CPUs) a SiamFC-AlexNet step ran 12x slower than fp32
        self.use_bf16 = t.amp_bf16 and native_bf16_supported(device)
        if t.amp_bf16 and not self.use_bf16 and rank == 0:
            print("bf16 autocast asked for but this device has no native bf16: training in float32", file=sys.stderr)
        self.meta_base = {"data": self.data_desc, "hardware": hardware(device, torch.get_num_threads(), world),
                          "bf16": self.use_bf16, "command": " ".join(sys.argv), "init": opts.init}
        if rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log = CsvLog(self.out / "log.csv", LOG_FIELDS, self.state["step"])
            self.val_log = CsvLog(self.out / "val.csv", VAL_FIELDS, self.state["step"])

    # -- set-up -----------------------------------------------------------------------------------------------
    def _build_data(self):
        o, t = self.opts, self.t
        sequences, static, self.data_desc = training_data(o.data, o.data_split, o.coco, o.data_format,
                                                          t.static_splits)
        self.val_seqs = validation_data(o.val_data, o.val_split, o.no_val) if self.rank == 0 else []
        self.dataset = PairDataset(sequences, self.cfg, static=static, seed=t.seed)

    def _build_model(self):
        t = self.t
        torch.manual_seed(t.seed)
        self.model = build_model(self.cfg.model).to(self.device)
        # The weights the run starts from, loaded before the trunk bank is opened (it holds the features of the frozen
        # weights that train): a resumed run's last.pth (its optimizer state follows in _resume), else --init's.
        self.resume_blob = None
        if self.opts.resume and self.last_path.is_file():
            self.resume_blob = load_checkpoint(self.last_path)
            load_weights(self.model, self.resume_blob["model"], self.last_path)
        elif self.opts.init:
            path, _, blob = read_checkpoint(self.opts.init)
            # an anchor-free head starts from a depthwise RPN checkpoint's layers (siamtrack/models/ban.py)
            load_weights(self.model, adopt_state(self.model, blob["model"], config_of(blob, path)), path)
        self.cached = t.cache_trunk_pairs > 0
        if t.cache_static_pairs and not self.cached:
            raise ConfigError("cache_static_pairs extends the trunk cache: set cache_trunk_pairs too")
        if self.cached:
            self.dataset = _cached_trunk_pairs(self.model, self.dataset, self.cfg, self.device, self.world,
                                               Path(self.opts.bank_dir) if self.opts.bank_dir else bank_root())
        self.per_rank = t.batch_size // self.world
        self.steps_per_epoch = (len(self.dataset) // self.world) // self.per_rank
        if self.steps_per_epoch < 1:
            raise ConfigError(f"pairs_per_epoch {len(self.dataset)} is smaller than one batch of {t.batch_size}")
        self.total_steps = t.epochs * self.steps_per_epoch
        self.objective = build_objective(self.cfg, self.model)
        self.optimizer = torch.optim.SGD(param_groups(self.model, t), lr=t.lr_start, momentum=t.momentum,
                                         weight_decay=t.weight_decay)

    def _resume(self):
        blob = self.resume_blob
        self.optimizer.load_state_dict(blob["optimizer"])
        self.state.update(blob["train_state"])
        torch.set_rng_state(blob["rng"])
        if self.rank == 0:
            print(f"resuming {self.last_path} at epoch {self.state['epoch'] + 1}, step {self.state['step']}",
                  file=sys.stderr)

    # -- checkpoints ------------------------------------------------------------------------------------------
    def meta(self):
        s = self.state
        return {**self.meta_base, "epochs": s["epoch"], "steps": s["step"], "pairs_seen": s["pairs_seen"],
                "wall_s": round(s["wall_s"], 1), "val": s["val"]}

    def save_last(self):
        extra = {"optimizer": self.optimizer.state_dict(), "train_state": dict(self.state),
                 "rng": torch.get_rng_state()}
        save_checkpoint(self.last_path, self.model.state_dict(), self.cfg.to_dict(), self.meta(), extra=extra)
        self.last_save = time.monotonic()

    def _max_steps_reached(self):
        return bool(self.opts.max_steps) and self.state["step"] >= self.opts.max_steps

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        frozen, net = None, None
        self.last_save = time.monotonic()
        for epoch in range(self.state["epoch"], self.t.epochs):
            prefixes = frozen_prefixes(self.t, epoch)
            apply_freeze(self.model, prefixes)
            if prefixes != frozen or net is None:
                frozen = prefixes
                # DDP registers the parameters that need gradients when it is built: rebuild it when that set changes.
                net = DistributedDataParallel(self.model) if self.world > 1 else self.model
            if not self._epoch(net, epoch):
                break
            self.state["epoch"] = epoch + 1
            if self.rank == 0:
                _end_of_epoch(self.model, self.cfg, self.device, self.val_seqs, self.state, self.val_log, self.out,
                              self.meta, self.use_bf16)
                self.save_last()
                apply_freeze(self.model, frozen)
            if self.world > 1:
                dist.barrier()
            if self._max_steps_reached():
                break
        self._finish()
        return 0

    def _loader(self, epoch, done):
        self.dataset.set_epoch(epoch)
        sampler = ResumableSampler(self.dataset, num_replicas=self.world, rank=self.rank, start=done * self.per_rank)
        workers = 0 if self.cached else self.t.workers  # cached features are already in memory
        return DataLoader(self.dataset, batch_size=self.per_rank, sampler=sampler, drop_last=True,
                          **loader_workers(workers))

    def _epoch(self, net, epoch) -> bool:
        """Train the rest of one epoch; False when --max-steps stopped it part-way (last.pth is then saved)."""
        t, state = self.t, self.state
        done = state["step"] - epoch * self.steps_per_epoch
        bar = tqdm(total=self.steps_per_epoch, initial=done, disable=self.rank != 0,
                   desc=f"epoch {epoch + 1}/{t.epochs}", mininterval=0.5 if sys.stderr.isatty() else 30,
                   file=sys.stderr, dynamic_ncols=True)
        window = []
        tick = time.monotonic()
        for batch in self._loader(epoch, done):
            lr, loss = self._step(net, *batch)
            now = time.monotonic()
            state["wall_s"] += now - tick
            window = (window + [(now - tick, loss)])[-20:]
            tick = now
            state["step"] += 1
            state["pairs_seen"] += t.batch_size
            done += 1
            if self.rank == 0:
                self._report_step(epoch, lr, loss, window, bar, now)
            if self._max_steps_reached():
                break
        bar.close()
        if self._max_steps_reached() and done < self.steps_per_epoch:
            if self.rank == 0:
                self.save_last()
            return False
        return True

    def _step(self, net, z, x, box, negative):
        """One optimizer step on a batch -> (learning rate, loss)."""
        lr = lr_at(self.t, self.state["step"], self.total_steps)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g["lr_mult"]
        z, x = z.to(self.device, non_blocking=True), x.to(self.device, non_blocking=True)
        if self.cached and self.dataset.cut is not None:
            # backbone blocks run on the cached features: their depthwise convolutions train ~1.4x faster
            # channels-last on CPU
            z, x = (f.contiguous(memory_format=torch.channels_last) for f in (z, x))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            output = net.forward_from_trunk(z, x, self.dataset.cut) if self.cached else net(z, x)
        loss, logs = self.objective(output, box, negative)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.t.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.t.grad_clip)
        self.optimizer.step()
        return lr, logs["loss"]

    def _report_step(self, epoch, lr, loss, window, bar, now):
        state = self.state
        speed = self.t.batch_size * len(window) / sum(w for w, _ in window)
        mean_loss = sum(v for _, v in window) / len(window)
        self.log.write({"step": state["step"], "epoch": epoch + 1, "lr": f"{lr:.3e}", "loss": f"{loss:.5f}",
                        "pairs_per_s": f"{speed:.2f}", "wall": f"{state['wall_s']:.1f}"})
        bar.set_postfix(loss=f"{mean_loss:.4f}", pairs_s=f"{speed:.1f}", lr=f"{lr:.1e}", refresh=False)
        bar.update(1)
        if now - self.last_save > self.t.checkpoint_minutes * 60:
            self.save_last()

    def _finish(self):
        state = self.state
        if self.world > 1:
            state["rank_weight_max_diff"] = _rank_weight_diff(self.model)
        if self.rank == 0:
            if self.world > 1:
                self.save_last()
            self.log.close()
            self.val_log.close()
            print(f"trained {state['step']} steps ({state['pairs_seen']} pairs, {state['epoch']} epochs) "
                  f"in {state['wall_s'] / 60:.1f} min; checkpoints in {self.out}", file=sys.stderr)
        if self.world > 1:
            # Ranks tear the process group down together, after rank 0 has written last.pth, not while a peer is
            # still busy. (Session 14: one CI run's two-rank test ended in SIGABRT at exit, cause not found.)
            dist.barrier()


def _cached_trunk_pairs(model, dataset, cfg, device, world, root):
    """The frozen-trunk fast path: features of the frozen part of the backbone for `cache_trunk_pairs` (+
    `cache_static_pairs`) pairs, from the bank under `root` (built or extended as needed)."""
    t = cfg.train
    if world > 1:
        raise ConfigError("cache_trunk_pairs trains in a single process (the cache is built per process)")
    if t.freeze_backbone_epochs < t.epochs:
        raise ConfigError("cache_trunk_pairs needs the cached part of the backbone frozen for the whole run")
    apply_freeze(model, frozen_prefixes(t, 0))
    cut = trunk_cut(model)
    segments = build_trunk_cache(model, dataset, t.cache_trunk_pairs, t.batch_size, t.workers, device, root, cut=cut,
                                 static_pairs=t.cache_static_pairs)
    return CachedPairs(segments, cut=cut, seed=t.seed)


def _end_of_epoch(model, cfg, device, val_seqs, state, val_log, out, meta, use_bf16):
    if not val_seqs:
        return
    t0 = time.monotonic()
    res = validate(model, cfg, val_seqs, device, cfg.train.val_max_frames, bf16=use_bf16)
    seconds = time.monotonic() - t0
    state["val"] = {"epoch": state["epoch"], "auc": res["auc"], "precision20": res["precision20"],
                    "sequences": res["sequences"], "max_frames": cfg.train.val_max_frames}
    val_log.write({"epoch": state["epoch"], "step": state["step"], "auc": f"{res['auc']:.4f}",
                   "precision20": f"{res['precision20']:.4f}", "sequences": res["sequences"],
                   "frames": res["frames"], "seconds": f"{seconds:.1f}"})
    print(f"epoch {state['epoch']}: val AUC {res['auc']:.4f}, precision@20 {res['precision20']:.4f} "
          f"({res['sequences']} sequences, {seconds:.0f} s)", file=sys.stderr)
    if res["auc"] > state["best_auc"]:
        state["best_auc"] = res["auc"]
        save_checkpoint(out / "best.pth", model.state_dict(), cfg.to_dict(), meta())


def _rank_weight_diff(model):
    """Largest difference between any rank's parameters and rank 0's: 0.0 when DDP kept the replicas in sync.
    (BatchNorm running statistics are left out: each rank updates them from its own batch after DDP's broadcast.)"""
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    diff = (flat - ref).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)
