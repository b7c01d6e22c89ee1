"""Pair sampling and augmentation: valid frames only, the frame gap, deterministic items, boxes that follow the crop."""
import dataclasses

import cv2
import numpy as np
import pytest
import torch

from siamtrack.config import ExperimentConfig, ModelConfig, ComponentConfig, TrainConfig
from siamtrack.data.augment import CropParams, augmented_crop
from siamtrack.data.datasets import Sequence
from siamtrack.data.pairs import PairDataset, ResumableSampler
from siamtrack.errors import ConfigError, DatasetError


def config(**train):
    return ExperimentConfig(name="t", model=ModelConfig(backbone=ComponentConfig("alexnet"),
                                                        head=ComponentConfig("xcorr")),
                            train=dataclasses.replace(TrainConfig(), search_size=159, **train))


def square_frame(box, size=(120, 160)):
    """A dark frame with a bright target filling `box` exactly."""
    img = np.full((*size, 3), 40, np.uint8)
    x, y, w, h = (int(v) for v in box)
    img[y:y + h, x:x + w] = 230
    return img


def make_sequence(tmp_path, name="s", n=30, absent=()):
    folder = tmp_path / name
    folder.mkdir()
    frames, boxes = [], []
    for i in range(n):
        box = [20 + i, 30, 24, 18]
        p = folder / f"{i:04d}.png"
        cv2.imwrite(str(p), square_frame(box))
        frames.append(str(p))
        boxes.append([np.nan] * 4 if i in absent else box)
    return Sequence(name, frames, np.array(boxes, dtype=np.float64), {})


def bright_bbox(crop):
    ys, xs = np.nonzero(crop[:, :, 0] > 135)
    return np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], dtype=np.float64)


@pytest.mark.parametrize("shift,stretch,scale", [(0.0, 0.0, 0.0), (8.0, 0.05, 0.0), (20.0, 0.15, 0.0),
                                                 (20.0, 0.1, 0.4)])
def test_crop_box_follows_the_target(shift, stretch, scale):
    box = (50, 40, 30, 20)
    frame = square_frame(box)
    rng = np.random.default_rng(3)
    for _ in range(5):
        crop, b = augmented_crop(frame, box, 159, 127, 0.5, CropParams(stretch=stretch, shift=shift, scale=scale),
                                 rng)
        assert crop.shape == (159, 159, 3)
        np.testing.assert_allclose(b, bright_bbox(crop), atol=1.5)


def test_scale_varies_both_sides_together_within_its_range():
    box = (50, 40, 30, 20)
    rng = np.random.default_rng(0)
    _, plain = augmented_crop(square_frame(box), box, 159, 127, 0.5, CropParams(stretch=0, shift=0), rng)
    factors = []
    for _ in range(200):
        _, b = augmented_crop(square_frame(box), box, 159, 127, 0.5, CropParams(stretch=0, shift=0, scale=0.4), rng)
        np.testing.assert_allclose(b[2] / plain[2], b[3] / plain[3], rtol=1e-6)  # the aspect ratio is kept
        factors.append(b[2] / plain[2])
    assert 1 / 1.4 - 1e-9 <= min(factors) < 0.8 and 1.25 < max(factors) <= 1.4 + 1e-9
    # without scale the settings' key is what it was before scale existed (stored banks keep their fingerprint)
    assert "scale" not in CropParams(stretch=0.1).key() and "scale=0.4" in CropParams(scale=0.4).key()


def test_unshifted_crop_keeps_the_tracking_scale():
    # One crop pixel spans s_z / 127 frame pixels, as in tracking: a 30x20 box with context 0.5 -> s_z = sqrt(55*45).
    box = (50, 40, 30, 20)
    crop, b = augmented_crop(square_frame(box), box, 159, 127, 0.5, CropParams(stretch=0, shift=0),
                             np.random.default_rng(0))
    scale = 127 / np.sqrt(55 * 45)
    np.testing.assert_allclose(b, [79.5 - 15 * scale, 79.5 - 10 * scale, 30 * scale, 20 * scale], atol=1e-4)


def test_pairs_never_use_invalid_frames_and_respect_the_gap(tmp_path):
    absent = {0, 3, 4, 5, 17, 29}
    seq = make_sequence(tmp_path, n=30, absent=absent)
    ds = PairDataset([seq], config(max_frame_gap=4, static_image_prob=0.0), seed=1)
    assert ds.frame_gap(0) == 4
    for k in range(300):
        _, i, j = ds.sample_frames(np.random.default_rng(k))
        assert i not in absent and j not in absent
        assert abs(i - j) <= 4
    ds_short = PairDataset([seq], config(max_frame_gap=100, static_image_prob=0.0))
    assert ds_short.frame_gap(0) == 15  # fewer for short clips: half the clip


def test_frame_weight_draws_sequences_by_frames_or_alike(tmp_path):
    long, short = make_sequence(tmp_path, "long", n=40), make_sequence(tmp_path, "short", n=10)

    def share_of_long(weight):
        ds = PairDataset([long, short], config(static_image_prob=0.0, frame_weight=weight))
        return np.mean([ds.sample_frames(np.random.default_rng(k))[0] == 0 for k in range(2000)])

    assert abs(share_of_long(1.0) - 0.8) < 0.04      # 40 of 50 frames
    assert abs(share_of_long(0.0) - 0.5) < 0.04      # one sequence, one share
    by_frames = PairDataset([long, short], config(static_image_prob=0.0))
    alike = PairDataset([long, short], config(static_image_prob=0.0, frame_weight=0.0))
    assert by_frames.fingerprint() != alike.fingerprint()
    for bad in (-1.0, float("inf"), "many", None):
        with pytest.raises(ConfigError, match="frame_weight"):
            PairDataset([long, short], config(frame_weight=bad))


def test_items_are_deterministic_per_seed_epoch_and_index(tmp_path):
    seq = make_sequence(tmp_path)
    cfg = config(static_image_prob=0.0)
    a, b = PairDataset([seq], cfg, seed=5, pairs=10), PairDataset([seq], cfg, seed=5, pairs=10)
    z1, x1, box1, neg1 = a[3]
    z2, x2, box2, neg2 = b[3]
    assert torch.equal(z1, z2) and torch.equal(x1, x2) and torch.equal(box1, box2)
    assert z1.shape == (3, 127, 127) and x1.shape == (3, 159, 159) and z1.dtype == torch.float32
    assert float(x1.max()) <= 255 and float(x1.min()) >= 0 and float(neg1) == 0.0
    assert torch.isfinite(box1).all() and box1.shape == (4,)
    b.set_epoch(1)
    assert not torch.equal(x1, b[3][1])
    assert not torch.equal(a[3][1], a[4][1])


def test_static_and_negative_pairs(tmp_path):
    seqs = [make_sequence(tmp_path, "a"), make_sequence(tmp_path, "b")]
    img = tmp_path / "still.png"
    cv2.imwrite(str(img), square_frame((30, 30, 40, 40)))
    static = [(str(img), np.array([[30, 30, 40, 40]], dtype=np.float64))]
    ds = PairDataset([], config(static_image_prob=0.0), static=static, pairs=4)
    z, x, box, neg = ds[0]  # static only: two augmentations of the one box
    np.testing.assert_allclose(box.numpy()[2:], [40 * 127 / np.sqrt(80 * 80)] * 2, rtol=0.2)
    neg_ds = PairDataset(seqs, config(negative_pair_prob=1.0, static_image_prob=0.0), pairs=4)
    assert all(float(neg_ds[i][3]) == 1.0 for i in range(4))
    with pytest.raises(DatasetError):
        PairDataset([], config())


def test_part_targets_are_sub_boxes_of_the_annotated_box(tmp_path):
    img = tmp_path / "still.png"
    cv2.imwrite(str(img), square_frame((30, 30, 60, 60)))
    static = [(str(img), np.array([[30, 30, 60, 60]], dtype=np.float64))]
    ds = PairDataset([], config(part_prob=1.0, search_shift=0.0), static=static, pairs=40)
    rng = np.random.default_rng(0)
    parts = np.array([ds._part(rng, np.array([30.0, 30.0, 60.0, 60.0])) for _ in range(200)])
    assert np.all(parts[:, :2] >= 30) and np.all(parts[:, :2] + parts[:, 2:] <= 90 + 1e-9)
    assert np.all(parts[:, 2:] >= 0.4 * 60 - 1e-9) and (parts[:, 2:] < 59).any(axis=1).mean() > 0.9
    # parts are at least PART_MIN_PIXELS (12) a side: a box smaller than that stays whole
    assert all(ds._part(rng, np.array([0.0, 0.0, 14.0, 14.0]))[2] >= 12 for _ in range(20))
    assert np.array_equal(ds._part(rng, np.array([0.0, 0.0, 10.0, 30.0])), [0, 0, 10, 30])
    # the part is what both crops are cut around: a square target's search boxes take the parts' aspects, far beyond
    # what the static stretch alone gives (1.15 / 0.85 = 1.35)
    aspects = np.array([float(b[2] / b[3]) for _, _, b, _ in (ds[i] for i in range(40))])
    assert aspects.max() > 1.5 and aspects.min() < 1 / 1.5
    whole = PairDataset([], config(search_shift=0.0), static=static, pairs=40)
    assert np.array_equal(whole._part(rng, np.array([30.0, 30.0, 60.0, 60.0])), [30, 30, 60, 60])
    assert whole.fingerprint() != ds.fingerprint()
    with pytest.raises(ConfigError, match="part_prob"):
        PairDataset([], config(part_prob=1.5), static=static, pairs=4)


def test_hard_negatives_are_another_object_of_the_same_class_in_the_same_photo(tmp_path):
    img = tmp_path / "two.png"
    frame = np.full((160, 240, 3), 40, np.uint8)
    boxes = np.array([[20, 20, 40, 40], [120, 30, 20, 60], [60, 100, 50, 30]], dtype=np.float64)
    for x, y, w, h in boxes.astype(int):
        frame[y:y + h, x:x + w] = 230
    cv2.imwrite(str(img), frame)
    static = [(str(img), boxes, np.array([0, 0, 5]))]
    cfg = config(negative_pair_prob=1.0, hard_negative_prob=1.0, search_shift=0.0, search_stretch=0.0)
    ds = PairDataset([], cfg, static=static, pairs=40)
    rng = np.random.default_rng(0)
    assert ds._same_class_other(rng, 0, 0) == 1 and ds._same_class_other(rng, 0, 1) == 0
    assert ds._same_class_other(rng, 0, 2) is None  # the only one of its class
    # the exemplar is box 0 or 1 and the search crop then holds the other one: its aspect ratio, not the exemplar's
    aspects = {round(float(b[2] / b[3]), 1) for _, _, b, neg in (ds[i] for i in range(40)) if float(neg) == 1.0}
    assert {1.0, 0.3} <= {round(a, 1) for a in aspects}
    # unknown classes are never "the same class"; without hard negatives the classes do not change the bank's key
    unknown = PairDataset([], cfg, static=[(str(img), boxes)], pairs=4)
    assert unknown._same_class_other(rng, 0, 0) is None
    plain = config(negative_pair_prob=1.0, search_shift=0.0, search_stretch=0.0)
    assert (PairDataset([], plain, static=static, pairs=4).fingerprint()
            == PairDataset([], plain, static=[(str(img), boxes)], pairs=4).fingerprint())
    assert ds.fingerprint() != PairDataset([], cfg, static=[(str(img), boxes)], pairs=40).fingerprint()


def test_scene_negatives_are_the_same_frame_without_the_target(tmp_path):
    seq = make_sequence(tmp_path, n=12)
    cfg = config(negative_pair_prob=1.0, scene_negative_prob=1.0, static_image_prob=0.0)
    ds = PairDataset([seq], cfg, pairs=30)  # one sequence and no photos: any other negative would raise
    for i in range(30):
        _, x, _, neg = ds[i]
        assert float(neg) == 1.0
        # the frame's background is 40, the target 230; the crop holds no target pixel (padding is the frame mean)
        assert float(x.max()) < 135
    # a target filling the frame leaves no place without it: the draw says so and the caller falls back
    big = Sequence("big", seq.frames, np.tile([[0.0, 0.0, 160.0, 120.0]], (12, 1)), {})
    assert PairDataset([big], cfg, pairs=4)._elsewhere_in_frame(np.random.default_rng(0), 0, 3) is None
    plain = config(negative_pair_prob=1.0, static_image_prob=0.0)
    assert ds.fingerprint() != PairDataset([seq], plain, pairs=30).fingerprint()
    with pytest.raises(ConfigError, match="scene_negative_prob"):
        PairDataset([seq], config(scene_negative_prob=-0.1), pairs=4)


def test_fingerprint_does_not_depend_on_how_the_image_path_was_typed(tmp_path, monkeypatch):
    # The same photos named relatively from another folder, or absolutely, are the same data: one bank, not a rebuild.
    (tmp_path / "work" / "run").mkdir(parents=True)
    img = tmp_path / "coco" / "images" / "train2017" / "a.jpg"
    boxes = np.array([[10.0, 10.0, 30.0, 30.0]])
    cfg = config()
    absolute = PairDataset([], cfg, static=[(str(img), boxes)], pairs=4).fingerprint()
    monkeypatch.chdir(tmp_path / "work" / "run")
    relative = PairDataset([], cfg, static=[("../../coco/images/train2017/a.jpg", boxes)], pairs=4).fingerprint()
    assert relative == absolute
    other = tmp_path / "coco" / "images" / "val2017" / "a.jpg"   # another split's file of that name is other data
    assert PairDataset([], cfg, static=[(str(other), boxes)], pairs=4).fingerprint() != absolute


def test_resumable_sampler_skips_done_samples_and_splits_ranks():
    data = list(range(20))
    assert list(ResumableSampler(data)) == data
    assert list(ResumableSampler(data, start=6)) == data[6:]
    r0 = list(ResumableSampler(data, num_replicas=2, rank=0, start=2))
    r1 = list(ResumableSampler(data, num_replicas=2, rank=1, start=2))
    assert r0 == [4, 6, 8, 10, 12, 14, 16, 18] and r1 == [5, 7, 9, 11, 13, 15, 17, 19]
