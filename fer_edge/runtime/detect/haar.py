"""OpenCV's frontal-face Haar cascade (``haar``, ``haar:alt``, ``haar:alt2``): boxes, no landmarks.

It runs on the plain grayscale image: the histogram equalisation the cascade used to run on
made it miss a 72 px frontal face on a flat gray background that stock ``detectMultiScale``
finds (tests/test_runtime_detect.py), and no case was found where it helped.

Crops: running the cascade on FER2013 images themselves (600 PublicTest faces, upscaled and
padded) finds a box of median size 47x47 at offset (0.5, 0.25) of the 48x48 frame, i.e. a Haar
box *is* a FER2013-style crop and is used as it is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ...errors import InputError, ModelError
from ...remedy import Remedy
from ..boxes import clip_boxes, sort_largest_first
from .base import FaceDetections, PerThread, downscale, scaled_by, to_gray

HAAR_CASCADES = {
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "alt2": "haarcascade_frontalface_alt2.xml",
}


class HaarDetector:
    """OpenCV Haar cascade, tuned for ordinary photos and webcam frames (boxes, no landmarks).

    ``scale_factor`` 1.1 and ``min_neighbors`` 5 are OpenCV's documented defaults for
    photos (fewer false positives than 3, still finds frontal faces down to ``min_size``);
    ``min_face`` is the smallest face as a fraction of the image's shorter side, floored at
    ``min_size_px``. ``equalize`` (off by default, see the module doc) equalises the
    histogram first.
    """

    name = "haar"
    summary = "OpenCV's frontal-face Haar cascade; haar:alt, haar:alt2: its two other cascades"
    variants = tuple(HAAR_CASCADES)  # haar:alt, haar:alt2
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image
    wants_gray = True  # it runs on gray: the stream loop hands it the gray frame it has anyway
    finds_faces = True

    def __init__(
        self,
        cascade: str = "default",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face: float = 0.05,
        min_size_px: int = 24,
        max_side: int = 960,
        equalize: bool = False,
    ):
        import cv2

        file = HAAR_CASCADES.get(cascade, cascade)
        path = Path(file) if Path(file).is_file() else Path(cv2.data.haarcascades) / file
        if not path.is_file():
            raise ModelError(f"Haar cascade not found: {file} (known: {', '.join(HAAR_CASCADES)})")
        if scale_factor <= 1.0:
            raise InputError(f"scale_factor must be > 1, got {scale_factor}")
        self.cascade_path = path
        self._cascades = PerThread(self._load)
        self._cascades.get()  # fail here, not on the first image, when the file is bad
        self.scale_factor = scale_factor
        self.min_neighbors = int(min_neighbors)
        self.min_face = float(min_face)
        self.min_size_px = int(min_size_px)
        self.max_side = int(max_side)
        self.equalize = equalize

    def _load(self) -> Any:
        import cv2

        try:
            cascade = cv2.CascadeClassifier(str(self.cascade_path))
        except (cv2.error, SystemError) as exc:  # a file that is not XML: OpenCV's parser throws
            raise ModelError(f"cannot load Haar cascade {self.cascade_path}: not a cascade XML file") from exc
        if cascade.empty():
            raise ModelError(f"cannot load Haar cascade {self.cascade_path}")
        return cascade

    def detect(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        gray, scale = downscale(to_gray(image), self.max_side)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        gh, gw = gray.shape[:2]
        m = max(self.min_size_px, int(round(self.min_face * min(gh, gw))))
        if m > min(gh, gw):
            return np.zeros((0, 4), dtype=np.int32)
        found = self._cascades.get().detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m)
        )
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        if scale != 1.0 and len(boxes):
            boxes = np.round(boxes / scale)
        return sort_largest_first(clip_boxes(boxes, w, h))

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        return FaceDetections.from_boxes(self.detect(image))

    @classmethod
    def create(cls, variant: str = "", model: Optional[Union[str, Path]] = None, fast: bool = False) -> "HaarDetector":
        """By registry name: ``haar`` or ``haar:VARIANT`` (a key of HAAR_CASCADES); ``model``: a cascade
        XML of the user's. ``fast`` (the stream mode) steps the scale pyramid by 1.2 instead of 1.1:
        about 1.7x faster, and a face missed on one detection round is kept by the tracker."""
        return cls(cascade=str(model) if model is not None else (variant or "default"), scale_factor=1.2 if fast else 1.1)

    def describe(self, scale: float = 1.0) -> str:
        return (f"the Haar cascade {self.cascade_path.name}{scaled_by(scale)} (frontal, upright faces of at least "
                f"{self.min_size_px} px and {self.min_face:.0%} of the shorter side)")

    def remedies(self, scale: float = 1.0) -> list[Remedy]:
        return [Remedy("detector", "yunet", "finds turned, tilted and small faces the cascade misses")]
