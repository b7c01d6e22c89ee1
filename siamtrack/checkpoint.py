"""siamtrack checkpoints: a plain dict {format, version, model (state_dict), config (dict), meta (dict)}.

Loaded only with torch.load(weights_only=True), which refuses arbitrary pickled objects; every way a file can fail to
be one of ours maps to one CheckpointError with a message that says which.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from .config import config_from_dict
from .errors import CheckpointError, ConfigError

FORMAT = "siamtrack-checkpoint"
VERSION = 1


def save_checkpoint(path, model_state, config_dict, meta=None, extra=None):
    """Write atomically (temporary name, then rename) so an interrupted save never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "version": VERSION, "model": model_state, "config": config_dict, "meta": meta or {}}
    if extra:
        blob.update(extra)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"weights path is not a file: {path}")
    try:
        with warnings.catch_warnings():
            # a foreign pickle makes torch warn about its protocol before refusing it; our error says it all
            warnings.simplefilter("ignore", UserWarning)
            blob = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(f"{path} holds objects other than weights; refusing to unpickle it") from None
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or not a torch file): "
                              f"{first[:120]}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a siamtrack checkpoint")
    if not isinstance(blob.get("model"), dict) or not isinstance(blob.get("config"), dict):
        raise CheckpointError(f"{path} is a siamtrack checkpoint without model weights or config")
    return blob


def config_of(blob, path="checkpoint"):
    try:
        return config_from_dict(blob["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path} has an invalid config: {e}") from None


def load_weights(model, state, path="checkpoint"):
    """Load a state_dict, naming a mismatch as a checkpoint from another model."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[0]
        raise CheckpointError(f"{path} holds weights of another model (first mismatch: {detail})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def sha256_of(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
