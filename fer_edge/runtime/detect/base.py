"""What every face detector shares: :class:`FaceDetections`, the :class:`Detector` protocol,
and the box geometry the detectors and the pipeline use (clipping, squaring, ordering).

:meth:`detect` returns boxes (the stable API); :meth:`detect_faces` returns
:class:`FaceDetections` (boxes, landmarks, scores), what the predictor uses to align.

Threads: OpenCV's detector objects are not safe to share (a ``CascadeClassifier`` must not
run concurrently; ``FaceDetectorYN`` keeps the input size as state, set by
``setInputSize`` before each frame size). Each detector therefore keeps one OpenCV object
per thread (:class:`PerThread`), created lazily from the same settings, rather than one
object behind a lock. Measured by ``python scripts/bench_detector_threads.py --frames 60``
(2 threads on the 2 shared cores, load average ~7): Haar 119 ms per frame per-thread vs
149 ms with a lock (1.25x); YuNet 45.7 vs 42.6 ms (the same within noise: its network
already uses both cores through OpenCV's thread pool). A thread's own object costs 2-7 ms
(YuNet) or ~14-38 ms (cascade) once. Per-thread objects never make one thread wait for
another's frame, so they are used for both.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..boxes import clip_boxes, clip_boxes_keep, largest_first_order

NUM_LANDMARKS = 5


@dataclass
class FaceDetections:
    """What a detector found in one image, largest face first.

    ``boxes`` (K, 4) int32 ``x, y, w, h``; ``landmarks`` (K, 5, 2) float32 in YuNet's order
    (right eye, left eye, nose, right and left mouth corner; NaN for a face whose detector
    gives none, e.g. Haar); ``scores`` (K,) float32 (NaN where the detector has none).
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_boxes(cls, boxes: np.ndarray) -> "FaceDetections":
        b = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
        return cls(b, np.full((len(b), NUM_LANDMARKS, 2), np.nan, np.float32), np.full(len(b), np.nan, np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def has_landmarks(self) -> np.ndarray:
        """(K,) bool: which faces can be aligned."""
        return np.isfinite(self.landmarks).all(axis=(1, 2)) if len(self) else np.zeros(0, bool)

    def take(self, index: Any) -> "FaceDetections":
        """The faces at ``index`` (a slice, an index array or a boolean mask)."""
        return FaceDetections(np.ascontiguousarray(self.boxes[index], dtype=np.int32).reshape(-1, 4),
                              np.ascontiguousarray(self.landmarks[index], dtype=np.float32).reshape(-1, NUM_LANDMARKS, 2),
                              np.ascontiguousarray(self.scores[index], dtype=np.float32).reshape(-1))

    def rescaled(self, factor: float, width: int, height: int) -> "FaceDetections":
        """Coordinates multiplied by ``factor`` (detections on a resized copy -> the original),
        boxes clipped to ``width`` x ``height``; faces left empty are dropped."""
        boxes = np.round(self.boxes.astype(np.float64) * factor) if factor != 1.0 else self.boxes
        return FaceDetections(np.asarray(boxes, np.int32).reshape(-1, 4), self.landmarks * np.float32(factor),
                              self.scores).clipped(width, height)

    def clipped(self, width: int, height: int) -> "FaceDetections":
        """Boxes clipped to the image; faces whose box is left empty are dropped."""
        out = clip_boxes_keep(self.boxes, width, height)
        keep = (out[:, 2] > 0) & (out[:, 3] > 0)
        return FaceDetections(np.ascontiguousarray(out[keep]), self.landmarks[keep], self.scores[keep])

    def largest_first(self) -> "FaceDetections":
        return self.take(largest_first_order(self.boxes))


class Detector(Protocol):
    """What the pipeline needs of a detector. The built-in ones (:mod:`.registry`) also have
    ``describe(scale)`` and ``remedies(scale)`` (read through :func:`describe` /
    :func:`remedies`, which have a fallback for detectors of the user's own), ``wants_gray``
    and ``finds_faces``."""

    name: str

    def detect(self, image: np.ndarray) -> np.ndarray:
        """``(K, 4)`` int32 ``x, y, w, h`` boxes inside ``image`` (uint8 gray or BGR), largest first."""
        ...


def detect_faces(detector: Any, image: np.ndarray) -> FaceDetections:
    """:class:`FaceDetections` from any detector: its ``detect_faces`` if it has one, else its boxes;
    boxes inside ``image``.

    The built-in detectors (``clips_boxes = True``) give boxes inside the image already; the
    boxes of any other detector are clipped here, once, where they enter the pipeline.
    """
    found = unclipped(detector, image)
    if getattr(detector, "clips_boxes", False):
        return found
    h, w = image.shape[:2]
    return found.clipped(w, h)


def unclipped(detector: Any, image: np.ndarray) -> FaceDetections:
    fn = getattr(detector, "detect_faces", None)
    return fn(image) if fn is not None else FaceDetections.from_boxes(detector.detect(image))


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class PerThread:
    """One object per thread, made on first use in that thread by ``factory``.

    OpenCV's detectors carry per-call state and must not run concurrently; a private copy
    per thread is cheaper than a lock once two threads detect (see the module doc).
    """

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._local = threading.local()

    def get(self) -> Any:
        obj = getattr(self._local, "obj", None)
        if obj is None:
            obj = self._local.obj = self._factory()
        return obj


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side``, and the factor used."""
    import cv2

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, scale


def detect_scaled(detector: Any, image: np.ndarray, scale: float = 1.0) -> FaceDetections:
    """Detections of ``detector`` in ``image``, run on a copy resized by ``scale`` (< 1: the
    stream mode's speed knob) and mapped back to ``image`` coordinates."""
    import cv2

    h, w = image.shape[:2]
    if scale == 1.0:
        return detect_faces(detector, image)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return unclipped(detector, small).rescaled(1.0 / scale, w, h)  # rescaled() clips to image


def describe(detector: Any, scale: float = 1.0) -> str:
    """What ``detector`` looks for, in words (the "no face found" warnings); a detector of the
    user's own without ``describe`` is named by its ``name``."""
    fn = getattr(detector, "describe", None)
    if fn is not None:
        return fn(scale)
    return f"the {getattr(detector, 'name', type(detector).__name__)} detector{scaled_by(scale)}"


def scaled_by(scale: float) -> str:
    return f" on frames scaled by {scale:g}" if scale != 1.0 else ""


def smallest_face_px(scale: float, at_scale_px: int) -> int:
    """The smallest face a detector that needs ``at_scale_px`` pixels finds in the original frame."""
    return int(round(at_scale_px / scale))


#: What an OpenCV error says besides what went wrong: where in OpenCV's C++ sources it was raised
#: (``OpenCV(4.14.0) /io/opencv/modules/dnn/src/net_impl.cpp:279: error:``), in which function
#: (``in function 'getLayerData'``), and the ``> `` that starts its continuation lines.
_CV_LOCATION = re.compile(r"OpenCV\([^)]*\)\s*\S*:-?\d+:\s*error:\s*")
_CV_FUNCTION = re.compile(r"\s*in function '[^']*'")
#: ``(-204:Requested object was not found) Layer ...``: the error code, then its name.
_CV_CODE = re.compile(r"\(-?\d+:([^)]*)\)\s*")


def cv_message(exc: Exception) -> str:
    """What an OpenCV error says went wrong, in one line: ``Requested object was not found: Layer
    with requested id=-1 not found``, without the OpenCV version, its C++ source file and line, and
    the function's name, which mean nothing to the user and make the line long."""
    text = " ".join(str(exc).replace("\n>", "\n").split())
    text = _CV_FUNCTION.sub("", _CV_LOCATION.sub("", text))
    text = _CV_CODE.sub(lambda m: f"{m.group(1).strip()}: ", text, count=1).strip().rstrip(":").strip()
    if not text:
        return type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
