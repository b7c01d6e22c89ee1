import numpy as np
from hypothesis import given, settings, strategies as st

from siamtrack import boxes as B

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(0.01, 1e4, allow_nan=False, allow_infinity=False)


def test_conversions_round_trip():
    b = np.array([[10.0, 20.0, 30.0, 40.0], [0.5, 1.5, 2.0, 3.0]])
    assert np.allclose(B.cxcywh_to_xywh(B.xywh_to_cxcywh(b)), b)
    assert np.allclose(B.xyxy_to_xywh(B.xywh_to_xyxy(b)), b)
    assert np.allclose(B.xywh_to_cxcywh(b[0]), [25, 40, 30, 40])


def test_iou_known_values():
    assert B.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert B.iou([0, 0, 10, 10], [10, 0, 10, 10]) == 0.0
    assert np.isclose(B.iou([0, 0, 10, 10], [5, 0, 10, 10]), 50 / 150)
    assert B.iou([0, 0, 10, 10], [np.nan] * 4) == 0.0
    assert B.iou([0, 0, 0, 10], [0, 0, 0, 10]) == 0.0


def test_is_valid_and_center_error():
    assert list(B.is_valid(np.array([[0, 0, 1, 1], [0, 0, 0, 1], [np.nan, 0, 1, 1]]))) == [True, False, False]
    assert np.isclose(B.center_error([0, 0, 10, 10], [3, 4, 10, 10]), 5.0)


def test_parse_box():
    assert list(B.parse_box("1,2,3,4")) == [1, 2, 3, 4]
    assert list(B.parse_box("1 2\t3 4")) == [1, 2, 3, 4]
    for bad in ("1,2,3", "a,b,c,d", ""):
        try:
            B.parse_box(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


@settings(max_examples=200, deadline=None)
@given(finite, finite, positive, positive, positive, positive, finite, finite)
def test_iou_properties(x1, y1, w1, h1, w2, h2, x2, y2):
    a, b = [x1, y1, w1, h1], [x2, y2, w2, h2]
    v = B.iou(a, b)
    assert 0.0 <= v <= 1.0 + 1e-9
    assert np.isclose(v, B.iou(b, a))
    assert np.isclose(B.iou(a, a), 1.0)


@settings(max_examples=200, deadline=None)
@given(finite, finite, st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.integers(1, 4000), st.integers(1, 4000))
def test_clip_keeps_boxes_inside(x, y, w, h, W, H):
    c = B.clip_xywh([x, y, w, h], W, H)
    assert np.all(np.isfinite(c))
    assert c[0] >= 0 and c[1] >= 0 and c[2] >= min(1, W) - 1e-9 and c[3] >= min(1, H) - 1e-9
    assert c[0] + c[2] <= W + 1e-6 and c[1] + c[3] <= H + 1e-6
