import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_dir():
    """../shared beside the repo (or $SIAMTRACK_SHARED); None on a user's machine."""
    p = Path(os.environ.get("SIAMTRACK_SHARED", REPO.parent / "shared"))
    return p if (p / "data").is_dir() else None


@pytest.fixture(scope="session")
def shared():
    p = shared_dir()
    if p is None:
        pytest.skip("../shared is not present")
    return p


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    # The default backend exports and quantizes each model into the cache on first use: the suite uses a cache of
    # its own (inherited by the CLI subprocesses), so it neither reads nor leaves anything in the user's.
    os.environ["SIAMTRACK_CACHE"] = str(tmp_path_factory.mktemp("siamtrack-cache"))


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # The suite shares two cores; one thread keeps parallel test processes from thrashing.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def siamfc_checkpoint(tmp_path_factory):
    """A random-init SiamFC-AlexNet checkpoint in our format (weights do not matter for plumbing tests)."""
    from siamtrack.checkpoint import save_checkpoint
    from siamtrack.config import load_config
    from siamtrack.models import build_model
    cfg = load_config(REPO / "experiments" / "siamfc_alexnet.yaml")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "siamfc_random.pth"
    save_checkpoint(path, model.state_dict(), cfg.to_dict(), {"note": "random init, tests only"})
    return path
