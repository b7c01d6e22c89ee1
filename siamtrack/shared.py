"""Where the project's shared folder is: the data (data/sot, data/coco128) and peer models (peers/) that sit beside a
source checkout for training, benchmarks and speed runs. A regular install has none, and then nothing defaults to it.
"""
from __future__ import annotations

import os
from pathlib import Path


def shared_root():
    """$SIAMTRACK_SHARED, else ../shared beside the source checkout; None when that folder is absent."""
    env = os.environ.get("SIAMTRACK_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return root if root.is_dir() else None


def shared_path(*parts):
    """A path inside the shared folder, or None when the folder or the path is absent."""
    root = shared_root()
    if root is None:
        return None
    p = root.joinpath(*parts)
    return p if p.exists() else None
