"""The runtime's preprocessing batch: C++ extension vs the numpy/OpenCV reference."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.contract import ModelContract
from fer_edge.reference import preprocess_faces_reference
from fer_edge.runtime import preprocess as pp

from fixtures_runtime import SAMPLE_FACE_BOX, sample_bgr, sample_image  # noqa: F401


def _opencv_pipeline(image, boxes, size, mean, std):
    """Independent restatement: crop, grayscale, resize (area when shrinking), normalise."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    out = []
    for x, y, w, h in boxes:
        crop = gray[y: y + h, x: x + w].astype(np.float32)
        interp = cv2.INTER_AREA if (w > size and h > size) else cv2.INTER_LINEAR
        out.append((cv2.resize(crop, (size, size), interpolation=interp) - mean) / std)
    return np.stack(out)[:, None]


def _boxes(rng, width, height, k):
    """Random boxes inside the image: small (upscaled), exact, large (area), non-square."""
    out = []
    for _ in range(k):
        w = int(rng.integers(8, min(width, height)))
        h = int(np.clip(w * rng.uniform(0.7, 1.4), 4, height))
        out.append([int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h])
    return np.array(out, dtype=np.int32)


def test_native_extension_is_used():
    assert pp.native_available(), "fer_edge._native should be built (scripts/dev_build.sh or pip install .)"


@pytest.mark.parametrize("gray", [False, True])
def test_batch_equals_reference_on_the_sample_photo(sample_bgr, gray):
    import cv2

    img = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY) if gray else sample_bgr
    rng = np.random.default_rng(7)
    boxes = np.concatenate([np.array([SAMPLE_FACE_BOX, [0, 0, 320, 320], [100, 40, 48, 48]], np.int32),
                            _boxes(rng, 320, 320, 20)])
    contract = ModelContract(mean=129.4, std=65.2)
    got = pp.preprocess_faces(img, boxes, contract)
    assert got.shape == (len(boxes), 1, 48, 48) and got.dtype == np.float32
    ref = preprocess_faces_reference(img, boxes, 48, contract.mean, contract.std)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, _opencv_pipeline(img, boxes, 48, contract.mean, contract.std), rtol=0, atol=1e-4)


def test_batch_equals_reference_on_noisy_camera_frames():
    rng = np.random.default_rng(3)
    for h, w in [(480, 640), (720, 1280), (97, 131)]:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        boxes = _boxes(rng, w, h, 12)
        got = pp.preprocess_faces(frame, boxes, ModelContract(mean=0.0, std=255.0))
        np.testing.assert_allclose(got, preprocess_faces_reference(frame, boxes, 48, 0.0, 255.0), rtol=0, atol=1e-5)


def test_three_channel_models_get_the_gray_crop_replicated(sample_bgr):
    boxes = np.array([SAMPLE_FACE_BOX], np.int32)
    c3 = ModelContract(channels=3, input_size=64, mean=120.0, std=60.0)
    got = pp.preprocess_faces(sample_bgr, boxes, c3)
    assert got.shape == (1, 3, 64, 64)
    ref = preprocess_faces_reference(sample_bgr, boxes, 64, 120.0, 60.0)
    for ch in range(3):
        np.testing.assert_allclose(got[:, ch: ch + 1], ref, atol=1e-5)
    out = np.empty((1, 3, 64, 64), np.float32)
    assert pp.preprocess_faces(sample_bgr, boxes, c3, out=out) is out
    np.testing.assert_array_equal(out, got)


def test_clip_boxes_keeps_only_overlapping_parts():
    b = pp.clip_boxes(np.array([[-10, -5, 30, 20], [90, 90, 50, 50], [200, 0, 10, 10], [5, 5, 0, 3]]), 100, 100)
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
