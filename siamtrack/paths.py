"""Where the project's shared data lives on a developer's or CI machine: $SIAMTRACK_SHARED, else ../shared beside the
source checkout. A user's install has neither, and everything that looks for it must work without it."""
from __future__ import annotations

import os
from pathlib import Path


def shared_root():
    """The shared folder (holding data/), or None when there is none."""
    env = os.environ.get("SIAMTRACK_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return root if (root / "data").is_dir() else None
