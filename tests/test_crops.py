import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from siamtrack.crops import crop_numpy, crop_torch, crops_to_tensor, exemplar_size, frame_to_tensor
from siamtrack.data.synthetic import texture


def test_exemplar_size_matches_design():
    # s_z = sqrt((w + p)(h + p)), p = (w + h) / 2
    assert np.isclose(exemplar_size(40, 20), np.sqrt(70 * 50))


def test_identity_crop_is_the_frame_region():
    frame = texture(100, 120, np.random.default_rng(0))
    # a 20x20 crop centred on (50, 40) at scale 1 is exactly frame[30:50, 40:60]
    out = crop_numpy(frame, 50, 40, 20, 20, (0, 0, 0))
    assert np.array_equal(out, frame[30:50, 40:60])


def test_padding_uses_the_given_colour():
    frame = np.full((50, 50, 3), 200, np.uint8)
    out = crop_numpy(frame, 0, 0, 40, 40, (10, 20, 30))
    assert tuple(out[2, 2]) == (10, 20, 30)          # far outside: pad colour
    assert tuple(out[-3, -3]) == (200, 200, 200)     # inside the frame


def test_numpy_and_torch_paths_agree():
    rng = np.random.default_rng(1)
    frame = texture(240, 320, rng)
    pad = frame.reshape(-1, 3).mean(0)
    centers = np.array([[160.3, 120.7], [20.0, 30.0], [300.5, 200.2]])
    sizes = np.array([180.0, 90.5, 250.0])
    ft = frame_to_tensor(frame, torch.device("cpu"))
    t = crop_torch(ft, centers, sizes, 127, pad[::-1]).numpy()       # RGB
    for i in range(3):
        n = crops_to_tensor(crop_numpy(frame, *centers[i], sizes[i], 127, pad)[None])[0].numpy()
        # compare away from the frame borders, where the two interpolations may treat the edge pixel differently
        a = (np.arange(127) + 0.5 - 63.5) * sizes[i] / 127
        xs, ys = centers[i, 0] + a, centers[i, 1] + a
        inside = ((ys > 2) & (ys < 238))[:, None] & ((xs > 2) & (xs < 318))[None, :]
        diff = np.abs(n - t[i])[:, inside]
        assert diff.max() <= 1.0 + 1e-3, diff.max()


def test_both_crop_layouts_hold_the_same_rgb_values():
    crops = np.random.default_rng(2).integers(0, 256, (2, 31, 31, 3), dtype=np.uint8)
    last = crops_to_tensor(crops)
    nchw = crops_to_tensor(crops, channels_last=False)
    assert last.is_contiguous(memory_format=torch.channels_last) and nchw.is_contiguous()
    assert torch.equal(last, nchw)
    assert torch.equal(nchw[1, 0], torch.from_numpy(crops[1, :, :, 2]).float())   # channel 0 is red: BGR flipped


@settings(max_examples=60, deadline=None)
@given(st.floats(-500, 800), st.floats(-500, 800), st.floats(1, 2000), st.sampled_from([127, 255, 31]),
       st.integers(1, 300), st.integers(1, 300))
def test_crop_always_has_the_requested_shape(cx, cy, size, out, w, h):
    frame = np.zeros((h, w, 3), np.uint8)
    c = crop_numpy(frame, cx, cy, size, out, (1, 2, 3))
    assert c.shape == (out, out, 3) and c.dtype == np.uint8
