"""BatchNorm folding: same outputs as the unfolded model, and only conv -> BN pairs with nothing else reading the
convolution's output are folded."""
import pytest
import torch
from torch import nn

from siamtrack.config import load_config
from siamtrack.models import build_model
from siamtrack.models.fuse import fold_batchnorm, fold_siamese

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _randomise_bn(model, seed=0):
    # Fresh BatchNorms are identities; give them statistics so that folding has something to get wrong.
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def _outputs(model, z, x):
    with torch.no_grad():
        out = model.track(x, model.template(z))
    return out if isinstance(out, tuple) else (out,)


def _count_bn(model):
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("config", ["siamfc_alexnet", "siamrpn_lite", "siamrpn_slim", "siamrpn_lite2"])
def test_folded_siamese_matches(config):
    path = ROOT / "experiments" / f"{config}.yaml"
    if not path.is_file():
        pytest.skip(f"{path.name} not in this checkout")
    torch.manual_seed(0)
    cfg = load_config(path)
    model = _randomise_bn(build_model(cfg.model))
    assert _count_bn(model) > 0
    folded = fold_siamese(model, cfg.tracker.exemplar_size, cfg.tracker.search_size)
    assert _count_bn(folded) == 0
    assert _count_bn(model) > 0, "the original model must be left untouched"
    z = torch.rand(2, 3, cfg.tracker.exemplar_size, cfg.tracker.exemplar_size) * 255
    x = torch.rand(6, 3, cfg.tracker.search_size, cfg.tracker.search_size) * 255
    for a, b in zip(_outputs(folded, z, x), _outputs(model, z, x)):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()))


def test_input_normalisation_folds_into_the_stem_exactly():
    from siamtrack.models.efficientnet import EfficientNetLite0
    torch.manual_seed(0)
    trunk = _randomise_bn(EfficientNetLite0(out_stage=3))
    folded = fold_batchnorm(trunk, lambda m: m(torch.zeros(1, 3, 127, 127)))
    before = folded.stem[0].weight.clone()
    folded.fold_input_normalisation()
    folded.fold_input_normalisation()   # a second call changes nothing
    assert folded.input_folded and folded.stem[0].padding == (0, 0)
    assert torch.allclose(folded.stem[0].weight, before / 128)
    for side in (127, 255):
        # the borders matter most: the stem's padding must still read as grey (127) pixels
        x = torch.rand(2, 3, side, side) * 255
        with torch.no_grad():
            want, got = trunk(x), folded(x)
        assert got.shape == want.shape
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


class _Shared(nn.Module):
    """conv -> bn, but the conv output is also read by another module: folding would change `side`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.side = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn2(self.conv2(self.bn(y))) + self.side(y)


def test_shared_conv_output_is_not_folded():
    model = _randomise_bn(_Shared())
    x = torch.rand(2, 3, 9, 9)
    folded = fold_batchnorm(model, lambda m: m(x))
    assert isinstance(folded.bn, nn.BatchNorm2d)          # conv output also read by `side`
    assert isinstance(folded.bn2, nn.Identity)            # plain conv -> bn, folded
    assert folded.conv2.bias is not None
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5)
