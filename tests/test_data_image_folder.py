"""A train/test image folder of FER2013 faces loads into the same structure as the CSV."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data import load_dataset, read_fer_csv, read_image_folder
from fer_edge.errors import InputError
from fer_edge.labels import CLASSES
from synthetic import make_synthetic, write_fer_csv


def sort_key(images, labels, splits):
    order = {"train": 0, "validation": 1, "test": 2}
    keys = [(order[s], int(l), im.tobytes()) for im, l, s in zip(images, labels, splits)]
    return sorted(keys)


def test_kaggle_named_files_keep_publictest_and_privatetest_apart(make_image_folder, tmp_path):
    root, data = make_image_folder()
    ds = read_image_folder(root)
    assert ds.images.shape == (40, 48, 48) and ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.split_names() == ["train", "validation", "test"]
    # Same faces, labels and splits as the CSV written from the same data (order may differ).
    csv = read_fer_csv(write_fer_csv(tmp_path / "same.csv", data))
    assert sort_key(ds.images, ds.labels, ds.splits) == sort_key(csv.images, csv.labels, csv.splits)
    assert (ds.subset("validation").labels.size, ds.subset("test").labels.size) == (8, 8)


def test_without_usage_prefix_the_folder_decides(make_image_folder):
    root, data = make_image_folder(kaggle_names=False)
    ds = read_image_folder(root)
    assert ds.split_names() == ["train", "test"]
    assert len(ds.subset("train")) == 24 and len(ds.subset("test")) == 16


def test_val_folder_and_digit_class_names(tmp_path):
    import cv2

    img = np.arange(2304, dtype=np.uint16).reshape(48, 48).astype(np.uint8)
    for split, cls in (("training", "3"), ("val", "Happy"), ("valid", "SAD")):
        d = tmp_path / "faces" / split / cls
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "a.png"), img)
    ds = load_dataset(tmp_path / "faces")
    assert ds.splits.tolist() == ["train", "validation", "validation"]
    assert ds.labels.tolist()[0] == 3
    assert sorted(ds.labels[1:].tolist()) == sorted([CLASSES.index("happy"), CLASSES.index("sad")])
    np.testing.assert_array_equal(ds.images[0], img)


def test_folder_errors(tmp_path):
    import cv2

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no split folders"):
        read_image_folder(tmp_path / "empty")
    bad_class = tmp_path / "a" / "train" / "grumpy"
    bad_class.mkdir(parents=True)
    with pytest.raises(InputError, match="unknown class folder 'grumpy'"):
        read_image_folder(tmp_path / "a")
    big = tmp_path / "b" / "train" / "happy"
    big.mkdir(parents=True)
    cv2.imwrite(str(big / "x.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match=r"x.png: image is 64x64, expected 48x48"):
        read_image_folder(tmp_path / "b")
    junk = tmp_path / "c" / "test" / "fear"
    junk.mkdir(parents=True)
    (junk / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="broken.jpg: not a readable image"):
        read_image_folder(tmp_path / "c")
    (tmp_path / "d" / "train" / "fear").mkdir(parents=True)
    with pytest.raises(InputError, match="no images found"):
        read_image_folder(tmp_path / "d")


def test_color_images_are_read_as_gray(tmp_path):
    import cv2

    d = tmp_path / "f" / "train" / "angry"
    d.mkdir(parents=True)
    bgr = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(d / "c.png"), bgr)
    ds = read_image_folder(tmp_path / "f")
    assert ds.images.shape == (1, 48, 48)
    # OpenCV's decoder does the conversion (libpng's rounding, within 1 of cvtColor's).
    np.testing.assert_array_equal(ds.images[0], cv2.imread(str(d / "c.png"), cv2.IMREAD_GRAYSCALE))
    assert np.abs(ds.images[0].astype(int) - cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)).max() <= 1
