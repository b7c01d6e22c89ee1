"""Sequence readers on tiny generated datasets of each layout, and on ../shared/data/sot when it is there."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamtrack.data.datasets import detect_format, natural_key, open_dataset, read_otb_sequence
from siamtrack.errors import DatasetError, FrameError

SHARED = Path(os.environ.get("SIAMTRACK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SOT = SHARED / "data" / "sot"


def write_frames(folder, names, size=(48, 64)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        img = np.full((*size, 3), 10 * i % 255, np.uint8)
        cv2.imwrite(str(folder / n), img)


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_natural_sort_of_frame_names():
    assert sorted(["img10.jpg", "img9.jpg", "img100.jpg"], key=natural_key) == ["img9.jpg", "img10.jpg", "img100.jpg"]


def make_otb(root, name, n=4, sep=","):
    write_frames(root / name / "img", [f"img{i + 1}.jpg" for i in range(n)])
    lines = [sep.join(str(v) for v in (i + 1, 2, 10, 20)) for i in range(n - 1)] + ["nan,nan,nan,nan"]
    write_lines(root / name / "groundtruth_rect.txt", lines)


@pytest.mark.parametrize("sep", [",", "\t", " "])
def test_otb_reader_converts_to_zero_based_and_marks_absent(tmp_path, sep):
    make_otb(tmp_path, "Seq", n=12, sep=sep)
    s = read_otb_sequence(tmp_path / "Seq")
    assert len(s) == 12 and Path(s.frames[9]).name == "img10.jpg"  # natural order, not 1, 10, 11, 2, ...
    np.testing.assert_allclose(s.boxes[0], [0, 1, 10, 20])
    np.testing.assert_allclose(s.boxes[4], [4, 1, 10, 20])
    assert s.valid.tolist() == [True] * 11 + [False]
    assert s.frame(0).shape == (48, 64, 3) and s.frame(0).dtype == np.uint8


def test_unreadable_frame_names_the_file(tmp_path):
    make_otb(tmp_path, "Seq")
    (tmp_path / "Seq" / "img" / "img2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FrameError, match="img2.jpg"):
        read_otb_sequence(tmp_path / "Seq").frame(1)


def test_otb_root_with_index_splits_and_names(tmp_path):
    for n in ("A", "B", "C"):
        make_otb(tmp_path, n)
    assert detect_format(tmp_path) == "otb"
    assert [s.name for s in open_dataset(tmp_path)] == ["A", "B", "C"]
    with pytest.raises(DatasetError, match="INDEX.tsv"):
        open_dataset(tmp_path, split="train")
    write_lines(tmp_path / "INDEX.tsv", ["name\tsplit", "A\ttrain", "B\tval", "C\ttrain"])
    assert [s.name for s in open_dataset(tmp_path, split="train")] == ["A", "C"]
    assert [s.name for s in open_dataset(tmp_path, split="val")] == ["B"]
    assert [s.name for s in open_dataset(tmp_path, names=["C"])] == ["C"]
    with pytest.raises(DatasetError, match="'Z'"):
        open_dataset(tmp_path, names=["Z"])
    with pytest.raises(DatasetError, match="split"):
        open_dataset(tmp_path, split="test")


def test_unknown_layout_and_missing_root(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(DatasetError, match="layout"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nope")


def make_got10k(root):
    for split, seqs in (("train", ["GOT-10k_Train_000001", "GOT-10k_Train_000002"]), ("test", ["GOT-10k_Test_000001"])):
        write_lines(root / split / "list.txt", seqs)
        for s in seqs:
            write_frames(root / split / s, [f"{i + 1:08d}.jpg" for i in range(5)])
            if split == "test":
                write_lines(root / split / s / "groundtruth.txt", ["3.0,4.0,10.0,12.0"])
            else:
                write_lines(root / split / s / "groundtruth.txt", [f"{i}.0,4.0,10.0,12.0" for i in range(5)])
                write_lines(root / split / s / "absence.label", ["0", "0", "1", "0", "0"])
                write_lines(root / split / s / "cover.label", ["8", "7", "0", "5", "8"])


def test_got10k_reader(tmp_path):
    make_got10k(tmp_path)
    assert detect_format(tmp_path) == "got10k"
    train = open_dataset(tmp_path, split="train")
    assert [s.name for s in train] == ["GOT-10k_Train_000001", "GOT-10k_Train_000002"]
    s = train[0]
    np.testing.assert_allclose(s.boxes[1], [1, 4, 10, 12])  # GOT-10k is already 0-based
    assert s.valid.tolist() == [True, True, False, True, True]
    assert s.meta["cover"].tolist() == [8, 7, 0, 5, 8]
    test = open_dataset(tmp_path, split="test")[0]
    assert test.valid.tolist() == [True, False, False, False, False]
    # root pointing straight at a split folder
    assert len(open_dataset(tmp_path / "train")) == 2


def test_lasot_reader(tmp_path):
    for cls, n in (("airplane", 1), ("airplane", 2), ("bird", 1)):
        seq = tmp_path / cls / f"{cls}-{n}"
        write_frames(seq / "img", [f"{i + 1:08d}.jpg" for i in range(3)])
        write_lines(seq / "groundtruth.txt", ["11,21,5,6", "12,21,5,6", "13,21,5,6"])
        write_lines(seq / "full_occlusion.txt", ["0,1,0"])
        write_lines(seq / "out_of_view.txt", ["0,0,1"])
    write_lines(tmp_path / "testing_set.txt", ["airplane-2"])
    assert detect_format(tmp_path) == "lasot"
    every = open_dataset(tmp_path)
    assert [s.name for s in every] == ["airplane-1", "airplane-2", "bird-1"]
    s = every[0]
    np.testing.assert_allclose(s.boxes[0], [10, 20, 5, 6])
    assert s.meta["full_occlusion"].tolist() == [False, True, False]
    assert s.meta["out_of_view"].tolist() == [False, False, True]
    assert s.valid.all()  # occlusion flags are kept in meta, the box stays
    assert [s.name for s in open_dataset(tmp_path, split="test")] == ["airplane-2"]
    assert [s.name for s in open_dataset(tmp_path, split="train")] == ["airplane-1", "bird-1"]


def test_uav123_reader(tmp_path):
    write_frames(tmp_path / "data_seq" / "UAV123" / "car1", [f"{i + 1:06d}.jpg" for i in range(4)])
    write_lines(tmp_path / "anno" / "UAV123" / "car1.txt", ["5,6,7,8", "NaN,NaN,NaN,NaN", "5,6,7,8", "5,6,7,8"])
    assert detect_format(tmp_path) == "uav123"
    (s,) = open_dataset(tmp_path)
    np.testing.assert_allclose(s.boxes[0], [4, 5, 7, 8])
    assert s.valid.tolist() == [True, False, True, True]


@pytest.mark.skipif(not SOT.is_dir(), reason="../shared/data/sot is absent")
def test_shared_sot_splits_and_one_based_conversion():
    train = open_dataset(SOT, split="train")
    val = open_dataset(SOT, split="val")
    assert len(train) == 26 and len(val) == 12
    assert not {s.name for s in train} & {s.name for s in val}
    s = next(q for q in val if q.name == "Couple")
    first = [float(v) for v in (SOT / "Couple" / "groundtruth_rect.txt").read_text().splitlines()[0].split(",")]
    np.testing.assert_allclose(s.boxes[0], [first[0] - 1, first[1] - 1, first[2], first[3]])
    assert len(s) == len(s.boxes)


def test_yolo_and_coco_static_images(tmp_path):
    import json

    from siamtrack.data.static import open_static, read_coco

    images = tmp_path / "images" / "train2017"
    write_frames(images, ["a.jpg", "b.jpg", "nolabel.jpg"], size=(100, 200))
    # a: one good box and one 4-px speck that is dropped; b: only a speck -> image skipped; orphan label ignored
    write_lines(tmp_path / "labels" / "train2017" / "a.txt", ["0 0.5 0.5 0.2 0.3", "1 0.1 0.1 0.02 0.04"])
    write_lines(tmp_path / "labels" / "train2017" / "b.txt", ["0 0.5 0.5 0.01 0.01"])
    write_lines(tmp_path / "labels" / "train2017" / "orphan.txt", ["0 0.5 0.5 0.2 0.3"])
    items = open_static(tmp_path)
    assert [Path(p).name for p, *_ in items] == ["a.jpg"]
    assert items[0][2].tolist() == [0]
    np.testing.assert_allclose(items[0][1], [[80, 35, 40, 30]])
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
                       {"id": 2, "file_name": "missing.jpg", "width": 200, "height": 100}],
            "annotations": [{"image_id": 1, "bbox": [80, 35, 40, 30], "iscrowd": 0, "category_id": 18},
                            {"image_id": 1, "bbox": [0, 0, 150, 90], "iscrowd": 1},
                            {"image_id": 2, "bbox": [80, 35, 40, 30], "iscrowd": 0}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    items = read_coco(tmp_path / "instances.json", images)
    assert len(items) == 1 and items[0][1].tolist() == [[80, 35, 40, 30]] and items[0][2].tolist() == [18]
    with pytest.raises(DatasetError):
        open_static(tmp_path / "nowhere")


def test_training_data_reads_the_still_image_splits_in_order(tmp_path):
    from siamtrack.train.data_setup import training_data

    make_otb(tmp_path / "sot", "Seq", n=6)
    coco = tmp_path / "coco"
    for split, names in (("train2017", ["a.jpg", "b.jpg"]), ("val2017", ["c.jpg"])):
        write_frames(coco / "images" / split, names, size=(100, 200))
        for n in names:
            write_lines(coco / "labels" / split / n.replace(".jpg", ".txt"), ["0 0.5 0.5 0.2 0.3"])
    _, static, desc = training_data([tmp_path / "sot"], coco=coco)
    assert [Path(p).name for p, *_ in static] == ["a.jpg", "b.jpg"]
    _, static, desc = training_data([tmp_path / "sot"], coco=coco, static_splits=["val2017", "train2017"])
    assert [Path(p).name for p, *_ in static] == ["c.jpg", "a.jpg", "b.jpg"]
    assert desc["static"]["splits"] == ["val2017", "train2017"] and desc["static"]["images"] == 3
    _, static, _ = training_data([tmp_path / "sot"], coco=coco, static_splits="val2017")
    assert [Path(p).name for p, *_ in static] == ["c.jpg"]
    with pytest.raises(DatasetError, match="test2017"):
        training_data([tmp_path / "sot"], coco=coco, static_splits=["train2017", "test2017"])


@pytest.mark.skipif(not (SHARED / "data" / "coco128").is_dir(), reason="../shared/data/coco128 is absent")
def test_shared_coco128_yolo_and_json_agree():
    from siamtrack.data.static import open_static, read_coco

    root = SHARED / "data" / "coco128"
    yolo = {p: b for p, b, _ in open_static(root)}
    coco = {p: b for p, b, _ in read_coco(root / "coco_json" / "instances_train2017.json",
                                          root / "images" / "train2017")}
    assert yolo.keys() == coco.keys() and len(yolo) > 100
    for k in yolo:
        np.testing.assert_allclose(yolo[k], coco[k], atol=0.5)
