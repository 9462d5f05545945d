"""The runtime's preprocessing batch: box crops against plain OpenCV, normalisation, channels."""
from __future__ import annotations

import numpy as np

from fer_edge.runtime.boxes import clip_boxes
import pytest

from fer_edge.contract import ModelContract
from fer_edge.runtime import preprocess as pp

from fixtures_runtime import SAMPLE_FACE_BOX, sample_bgr, sample_image  # noqa: F401


def _opencv_pipeline(image, boxes, size, mean, std):
    """Independent restatement: crop, grayscale, resize (area when shrinking), normalise."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    out = []
    for x, y, w, h in boxes:
        crop = gray[y: y + h, x: x + w]
        interp = cv2.INTER_AREA if (w > size and h > size) else cv2.INTER_LINEAR
        out.append((cv2.resize(crop, (size, size), interpolation=interp).astype(np.float64) - mean) / std)
    return np.stack(out)[:, None]


def _boxes(rng, width, height, k):
    """Random square boxes inside the image: small (upscaled), exact, large (area)."""
    out = []
    for _ in range(k):
        w = int(rng.integers(8, min(width, height)))
        out.append([int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - w + 1)), w, w])
    return np.array(out, dtype=np.int32)


@pytest.mark.parametrize("gray", [False, True])
def test_integer_factor_box_crops_equal_opencv_area_resize(sample_bgr, gray):
    """A box that is 1x, 2x, 3x the output: exactly cv2.resize's INTER_AREA, then (v - mean) / std."""
    import cv2

    img = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY) if gray else sample_bgr
    boxes = np.array([[100, 40, 96, 96], [101, 41, 144, 144], [10, 10, 48, 48], [0, 0, 240, 240]], np.int32)
    contract = ModelContract(mean=129.4, std=65.2)
    got = pp.preprocess_faces(img, boxes, contract)
    assert got.shape == (len(boxes), 1, 48, 48) and got.dtype == np.float32
    np.testing.assert_allclose(got, _opencv_pipeline(img, boxes, 48, contract.mean, contract.std), rtol=0, atol=1e-5)


def test_any_box_is_close_to_opencv(sample_bgr):
    """Other sizes differ only by resampling (bilinear after an integer area pre-shrink, against
    INTER_AREA): about 3 gray levels on average, under 8 on any face."""
    rng = np.random.default_rng(7)
    boxes = np.concatenate([np.array([SAMPLE_FACE_BOX], np.int32), _boxes(rng, 320, 320, 30)])
    got = pp.preprocess_faces(sample_bgr, boxes, ModelContract(mean=0.0, std=1.0))
    want = _opencv_pipeline(sample_bgr, boxes, 48, 0.0, 1.0)
    per_face = np.abs(got - want).mean(axis=(1, 2, 3))
    assert per_face.mean() < 3.5 and per_face.max() < 8.0, per_face


def test_three_channel_models_get_the_gray_crop_replicated(sample_bgr):
    boxes = np.array([SAMPLE_FACE_BOX], np.int32)
    c3 = ModelContract(channels=3, input_size=64, mean=120.0, std=60.0)
    got = pp.preprocess_faces(sample_bgr, boxes, c3)
    assert got.shape == (1, 3, 64, 64)
    one = pp.preprocess_faces(sample_bgr, boxes, ModelContract(input_size=64, mean=120.0, std=60.0))
    for ch in range(3):
        np.testing.assert_array_equal(got[:, ch: ch + 1], one)
    out = np.empty((1, 3, 64, 64), np.float32)
    assert pp.preprocess_faces(sample_bgr, boxes, c3, out=out) is out
    np.testing.assert_array_equal(out, got)
    with pytest.raises(ValueError, match="out must be float32"):
        pp.preprocess_faces(sample_bgr, boxes, c3, out=np.empty((1, 1, 64, 64), np.float32))


def test_no_faces_gives_an_empty_batch(sample_bgr):
    assert pp.preprocess_faces(sample_bgr, np.zeros((0, 4), np.int32), ModelContract()).shape == (0, 1, 48, 48)


def test_clip_boxes_keeps_only_overlapping_parts():
    b = clip_boxes(np.array([[-10, -5, 30, 20], [90, 90, 50, 50], [200, 0, 10, 10], [5, 5, 0, 3]]), 100, 100)
    assert b.tolist() == [[0, 0, 20, 15], [90, 90, 10, 10]]


def test_as_bgr_or_gray_normalises_inputs():
    bgra = np.zeros((4, 5, 4), np.uint8)
    assert pp.as_bgr_or_gray(bgra).shape == (4, 5, 3)
    assert pp.as_bgr_or_gray(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)
    f = pp.as_bgr_or_gray(np.full((2, 2), 300.7))
    assert f.dtype == np.uint8 and f.max() == 255
    with pytest.raises(ValueError):
        pp.as_bgr_or_gray(np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(ValueError):
        pp.as_bgr_or_gray(np.zeros((0, 5), np.uint8))
