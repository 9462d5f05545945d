"""Group 2: face boxes in a 640x480 BGR frame -> the model's (K, 1, 48, 48) float32 batch.

``numpy/OpenCV reference`` (baseline)
    ``fer_edge.reference.preprocess_faces_reference``: per face, crop, ``cv2.cvtColor``,
    ``cv2.resize`` (INTER_AREA when shrinking), ``(x - mean) / std`` in numpy. It pins
    OpenCV's own resize code (Intel IPP off) so it is bit-exact on every CPU.
``OpenCV loop, IPP on``
    the same loop with OpenCV's defaults (IPP on x86): what a user would write.
``C++ fused``
    ``fer_edge._native.preprocess_faces``: crop, grayscale, resize and normalise in one pass
    per face, writing straight into the batch (what the runtime calls).
``C++ fused, reused buffer``
    the same into a preallocated batch (``out=``), as a stream can do frame after frame.

The C++ output is checked against the reference on the same boxes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from bench_settings import PREPROCESS_BATCHES

GROUP = "2 preprocess: face boxes in a 640x480 BGR frame -> (K, 1, 48, 48) float32"
MEAN, STD = 129.4, 65.0
CASES = {
    "reference": ("numpy/OpenCV reference (IPP off, bit-exact)", "baseline"),
    "opencv-ipp": ("OpenCV loop, IPP on", ""),
    "cpp": ("C++ fused", ""),
    "cpp-out": ("C++ fused, reused buffer", ""),
}


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """The sample photo on a plain background, 640x480 BGR (content does not change the cost)."""
    import cv2

    from fer_edge.runtime.default_model import sample_image_path

    img = cv2.imread(str(sample_image_path()), cv2.IMREAD_COLOR)
    out = np.full((480, 640, 3), 90, dtype=np.uint8)
    out[80:400, 160:480] = img
    return out


def face_boxes(k: int, seed: int = 0) -> np.ndarray:
    """``k`` boxes of 40..220 px (webcam faces from far to near), all inside the frame."""
    rng = np.random.default_rng(seed)
    side = rng.integers(40, 221, size=k)
    x = rng.integers(0, 640 - side + 1)
    y = rng.integers(0, 480 - side + 1)
    return np.stack([x, y, side, side], axis=1).astype(np.int32)


def opencv_loop(image: np.ndarray, boxes: np.ndarray, size: int, mean: float, std: float) -> np.ndarray:
    """The loop a user would write, with OpenCV's default (IPP) code paths."""
    import cv2

    out = np.empty((len(boxes), 1, size, size), np.float32)
    for i, (x, y, w, h) in enumerate(boxes):
        gray = cv2.cvtColor(image[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
        interp = cv2.INTER_AREA if (w > size and h > size) else cv2.INTER_LINEAR
        resized = cv2.resize(gray.astype(np.float32), (size, size), interpolation=interp)
        out[i, 0] = (resized - np.float32(mean)) / np.float32(std)
    return out


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("faces", PREPROCESS_BATCHES)
def test_preprocess(benchmark, describe: Callable, frame: np.ndarray, faces: int, case: str) -> None:
    from fer_edge import _native
    from fer_edge.reference import preprocess_faces_reference

    label, role = CASES[case]
    boxes = face_boxes(faces)
    describe(GROUP, label, role=role, subgroup=f"{faces} face{'s' if faces > 1 else ''}", items=faces, item="face",
             family="preprocess")
    if case == "reference":
        fn = lambda: preprocess_faces_reference(frame, boxes, 48, MEAN, STD)  # noqa: E731
    elif case == "opencv-ipp":
        fn = lambda: opencv_loop(frame, boxes, 48, MEAN, STD)  # noqa: E731
    elif case == "cpp":
        fn = lambda: _native.preprocess_faces(frame, boxes, 48, MEAN, STD)  # noqa: E731
    else:
        buf = np.empty((faces, 1, 48, 48), np.float32)
        fn = lambda: _native.preprocess_faces(frame, boxes, 48, MEAN, STD, buf)  # noqa: E731
    got = benchmark(fn)
    want = preprocess_faces_reference(frame, boxes, 48, MEAN, STD)
    assert got.shape == want.shape == (faces, 1, 48, 48)
    # IPP places resize samples slightly differently (~1e-3 grey levels): equal within that.
    tol = 0.05 / STD if case == "opencv-ipp" else 1e-6
    diff = float(np.abs(got - want).max())
    assert diff <= tol, f"{label}: differs from the reference by {diff:.3g} (allowed {tol:.3g})"
