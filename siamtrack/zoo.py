"""The model zoo: names users type, mapped to the YAML in experiments/ and the weights in pretrained/.

Both folders sit beside the package in a source checkout (editable install); a regular install puts them under
<prefix>/share/siamtrack (setup.cfg data_files); $SIAMTRACK_HOME overrides both.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .errors import CheckpointError, ConfigError

# name -> file stem; order is preference for the default model (session 14): the fastest model whose AUC on the full
# val of ../sot-all is within 0.01 of the best one's, through the default backend (runtime.resolve_backend). So
# siamrpn-lite-pw (session 29: int8 0.640, SR75 0.398; 0.43x siamrpn-slim's and 0.37x NanoTrack's speed) leads,
# then siamrpn-slim (int8 0.584 on the same run, 0.601 in session 18), siamrpn-lite (int8 0.602), siamrpn-lite-s8
# (siamrpn-lite at stride 8, session 17: torch 0.609, int8 0.35x NanoTrack's speed), then siamfc-alexnet, behind on
# every val split (see their model cards). `siamtrack match` names its own default (siamtrack/match.py MATCH_MODEL).
MODELS = {
    "siamrpn-lite-pw": "siamrpn_lite_pw",
    "siamrpn-slim": "siamrpn_slim",
    "siamrpn-lite": "siamrpn_lite",
    "siamrpn-lite-s8": "siamrpn_lite_s8",
    "siamfc-alexnet": "siamfc_alexnet",
    "siamrpn-alexnet": "siamrpn_alexnet",
}


def _roots():
    roots = []
    if os.environ.get("SIAMTRACK_HOME"):
        roots.append(Path(os.environ["SIAMTRACK_HOME"]))
    roots.append(Path(__file__).resolve().parent.parent)
    roots.append(Path(sys.prefix) / "share" / "siamtrack")
    return roots


def _find(sub, filename):
    for root in _roots():
        p = root / sub / filename
        if p.is_file():
            return p
    return _roots()[-2] / sub / filename  # where it would be in a checkout, for messages


def config_path(name) -> Path:
    return _find("experiments", MODELS[name] + ".yaml")


def weights_path(name) -> Path:
    return _find("pretrained", MODELS[name] + ".pth")


def card_path(name) -> Path:
    return _find("pretrained", MODELS[name] + ".md")


def list_models():
    """One dict per known model: name, config and weights paths, whether the weights are present."""
    out = []
    for name in MODELS:
        w = weights_path(name)
        out.append({"name": name, "config": str(config_path(name)), "weights": str(w), "present": w.is_file()})
    return out


def preferred_model() -> str:
    """The model the default is when its weights are shipped (the first of MODELS), for help texts."""
    return next(iter(MODELS))


def default_model() -> str:
    for name in MODELS:
        if weights_path(name).is_file():
            return name
    raise CheckpointError("no shipped weights found in pretrained/; train one with `siamtrack train` "
                          "or pass --model PATH")


def expected_sha256(name):
    """The sha256 the model card records for the shipped weights (a line 'sha256: <hex>'), or None."""
    card = card_path(name)
    if not card.is_file():
        return None
    m = re.search(r"sha256[:=`\s]+([0-9a-f]{64})", card.read_text())
    return m.group(1) if m else None


def resolve(name_or_path):
    """-> (checkpoint path, zoo name or None). A known name maps to its shipped weights; anything else is a path."""
    if name_or_path in MODELS:
        return weights_path(name_or_path), name_or_path
    p = Path(name_or_path)
    if p.suffix in (".pth", ".pt") or p.exists() or os.sep in str(name_or_path):
        return p, None
    raise ConfigError(f"unknown model {name_or_path!r}: known models are {', '.join(MODELS)}, "
                      f"or give a checkpoint path")
