"""preprocess_faces (crop + gray + resize + normalise in C++) against the cv2 reference."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_edge import _native
from fer_edge.reference import preprocess_faces_reference

TOL = 1e-5


def check(image, boxes, size, mean=128.0, std=64.0):
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    got = _native.preprocess_faces(image, boxes, size, mean, std)
    ref = preprocess_faces_reference(image, boxes, size, mean, std)
    assert got.dtype == np.float32 and got.shape == (len(boxes), 1, size, size) and got.flags.c_contiguous
    assert np.abs(got - ref).max(initial=0.0) <= TOL
    return got


@st.composite
def scenes(draw):
    h, w = draw(st.integers(1, 160)), draw(st.integers(1, 160))
    color = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3) if color else (h, w), dtype=np.uint8)
    k = draw(st.integers(1, 3))
    boxes = []
    for _ in range(k):
        x, y = draw(st.integers(-30, w - 1)), draw(st.integers(-30, h - 1))
        bw = draw(st.integers(max(1, -x + 1), 200))
        bh = draw(st.integers(max(1, -y + 1), 200))
        boxes.append((x, y, bw, bh))
    size = draw(st.sampled_from([48, 48, 1, 2, 5, 17, 32, 64, 96]))
    mean = draw(st.floats(0, 255))
    std = draw(st.floats(0.5, 128))
    return image, boxes, size, mean, std


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_property_matches_reference(scene):
    image, boxes, size, mean, std = scene
    check(image, boxes, size, mean, std)


@pytest.mark.parametrize(
    "crop",
    [
        (96, 96),  # integer 2x downscale: area, fast path
        (144, 144),  # 3x: 1/(48/144) is not exactly 3 in double, OpenCV takes the general area path
        (100, 73),  # fractional downscale in both directions: area
        (49, 49),  # barely larger: area with tiny cells
        (48, 48),  # same size: copy
        (30, 30),  # upscale: linear
        (200, 20),  # down in x, up in y: linear
        (48, 200),  # equal in x, down in y: linear (area needs both dimensions larger)
        (1, 1),  # a single pixel
    ],
)
def test_scale_regimes(crop):
    w, h = crop
    rng = np.random.default_rng(w * 1000 + h)
    image = rng.integers(0, 256, (h + 10, w + 10, 3), dtype=np.uint8)
    check(image, [(5, 5, w, h)], 48, 129.4, 65.1)
    check(image[..., 1].copy(), [(5, 5, w, h)], 48, 129.4, 65.1)


def test_gray_conversion_is_opencvs_for_every_colour():
    # All 2^24 BGR colours in one 4096x4096 image; size == crop size makes the resize a copy.
    v = np.arange(1 << 24, dtype="<u4").view(np.uint8).reshape(4096, 4096, 4)
    image = np.ascontiguousarray(v[..., :3])  # B, G, R = the three low bytes
    got = _native.preprocess_faces(image, np.array([[0, 0, 4096, 4096]]), 4096, 0.0, 1.0)
    expected = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mismatches = int(np.count_nonzero(got[0, 0] != expected))  # (assert_array_equal is slow at this size)
    assert mismatches == 0


def test_boxes_are_clipped_to_the_image():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    inside = _native.preprocess_faces(image, np.array([[0, 0, 50, 40]]), 48, 0.0, 1.0)
    clipped = _native.preprocess_faces(image, np.array([[-20, -10, 70, 50]]), 48, 0.0, 1.0)
    np.testing.assert_array_equal(inside, clipped)
    beyond = _native.preprocess_faces(image, np.array([[70, 50, 1000, 1000]]), 48, 0.0, 1.0)
    np.testing.assert_array_equal(beyond, _native.preprocess_faces(image, np.array([[70, 50, 10, 10]]), 48, 0.0, 1.0))


def test_strided_and_flipped_images():
    rng = np.random.default_rng(6)
    big = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for view in (big[::-1], big[:, ::2], big[10:100, 20:150, ::-1], big[..., 0]):
        check(view, [(3, 4, 70, 60), (0, 0, 20, 30)], 48)


def test_zero_boxes_and_out_buffer():
    image = np.zeros((10, 10), np.uint8)
    assert _native.preprocess_faces(image, np.zeros((0, 4), np.int32), 48, 0.0, 1.0).shape == (0, 1, 48, 48)
    out = np.full((2, 1, 48, 48), np.nan, np.float32)
    boxes = np.array([[0, 0, 5, 5], [2, 2, 8, 8]], dtype=np.int32)
    res = _native.preprocess_faces(image + 3, boxes, 48, 1.0, 2.0, out)
    assert np.shares_memory(res, out)
    np.testing.assert_array_equal(out, np.ones((2, 1, 48, 48), np.float32))


@pytest.mark.parametrize(
    "image,boxes,size,match",
    [
        (np.zeros((10, 10), np.uint8), [[10, 0, 5, 5]], 48, r"box 0 \(10, 0, 5, 5\) is empty inside the 10x10 image"),
        (np.zeros((10, 10), np.uint8), [[0, 0, 5, 5], [0, 0, 0, 5]], 48, r"box 1 \(0, 0, 0, 5\) is empty"),
        (np.zeros((10, 10), np.uint8), [[-9, -9, 5, 5]], 48, "is empty"),
        (np.zeros((10, 10), np.uint8), [[0, 0, 2**40, 5]], 48, "outside -2\\*\\*31..2\\*\\*31"),
        (np.zeros((10, 10), np.uint8), np.zeros((1, 4), np.float32), 48, "boxes must be integers"),
        (np.zeros((10, 10), np.uint8), np.zeros((4,), np.int64), 48, r"boxes must have shape \(K, 4\)"),
        (np.zeros((10, 10), np.float32), [[0, 0, 5, 5]], 48, "image must be a uint8 array"),
        (np.zeros((10, 10, 4), np.uint8), [[0, 0, 5, 5]], 48, r"image must have shape \(H, W\)"),
        (np.zeros((10, 10), np.uint8), [[0, 0, 5, 5]], 0, "size must be in 1..4096"),
    ],
)
def test_rejects(image, boxes, size, match):
    b = boxes if isinstance(boxes, np.ndarray) else np.array(boxes, dtype=np.int64)
    with pytest.raises(ValueError, match=match):
        _native.preprocess_faces(image, b, size, 0.0, 1.0)
    with pytest.raises(ValueError, match=match):
        preprocess_faces_reference(image, b, size, 0.0, 1.0)


def test_rejects_bad_out_and_std():
    image = np.zeros((10, 10), np.uint8)
    boxes = np.array([[0, 0, 5, 5]])
    with pytest.raises(ValueError, match=r"out has shape \(1, 1, 32, 32\), expected \(1, 1, 48, 48\)"):
        _native.preprocess_faces(image, boxes, 48, 0.0, 1.0, np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        _native.preprocess_faces(image, boxes, 48, 0.0, 0.0)
