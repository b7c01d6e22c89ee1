"""The weights in pretrained/ earn their keep: each loads with weights_only=True (through siamtrack.checkpoint) and
tracks a real `val` sequence far better than the same architecture with untrained learned parts.

"Untrained" keeps what the model did not learn here: siamfc-alexnet is trained from scratch, so its baseline is the
whole network at random init; siamrpn-lite's trunk is ImageNet's and stays frozen, so its baseline keeps that trunk
and re-initialises only the neck and head (siamrpn-lite-s8's likewise, with its fine-tuned trunk); siamrpn-slim's
trunk is distilled here and its neck and head are siamrpn-lite's, so its baseline re-initialises the trunk. Skipped
when the weights or ../shared are absent.
"""
import numpy as np
import pytest
import torch

from siamtrack import boxes as B
from siamtrack import zoo
from siamtrack.api import load_model, make_tracker
from siamtrack.checkpoint import load_checkpoint
from siamtrack.data.datasets import open_dataset

CPU = torch.device("cpu")
# A val sequence whose target keeps its look for the first frames (clear of the split's occlusion failures), and
# enough frames for a drifting tracker to show it; each model tracks it twice.
SEQUENCE, FRAMES = "Couple", 60


def _mean_iou(tracker, seq):
    first = int(np.argmax(seq.valid))
    tracker.init(seq.frame(first), seq.boxes[first])
    ious = []
    for i in range(first + 1, min(len(seq), first + FRAMES)):
        box = tracker.update(seq.frame(i)).box
        if seq.valid[i]:
            ious.append(B.iou(np.asarray(box)[None], seq.boxes[i][None])[0])
    return float(np.mean(ious))


def _untrained(model, name):
    torch.manual_seed(0)
    if name == "siamfc-alexnet":
        parts = [model]
    elif name == "siamrpn-slim":
        parts = [model.backbone]      # the distilled part; its neck and head are siamrpn-lite's
    else:
        parts = [m for m in (model.neck, model.head) if m is not None]
    for part in parts:
        for m in part.modules():
            if m is not part and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return model


@pytest.mark.parametrize("name", ["siamfc-alexnet", "siamrpn-lite", "siamrpn-lite-s8", "siamrpn-lite-pw",
                                  "siamrpn-slim"])
def test_shipped_weights_track_far_better_than_untrained(name, shared):
    path = zoo.weights_path(name)
    if not path.is_file():
        pytest.skip(f"{name} weights are not shipped")
    assert load_checkpoint(path)["format"]          # our format, read with weights_only=True
    seq = open_dataset(shared / "data" / "sot", names=[SEQUENCE])[0]
    model, cfg, _ = load_model(name, device="cpu")
    trained = _mean_iou(make_tracker(model, cfg, CPU), seq)
    model, cfg, _ = load_model(name, device="cpu")
    untrained = _mean_iou(make_tracker(_untrained(model, name), cfg, CPU), seq)
    assert trained > 0.5 and trained > untrained + 0.2, (trained, untrained)
