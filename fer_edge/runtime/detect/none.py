"""``none``: each image is already a face crop (as in FER2013), one box covering all of it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from .base import FaceDetections


class NoDetector:
    """Each image is already a face crop: one box covering the whole image."""

    name = "none"
    summary = "no detection: each image is one face"
    variants: tuple[str, ...] = ()
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image
    wants_gray = True  # it looks at nothing: the cheapest input
    finds_faces = False  # "no face found" cannot happen, so there is nothing to advise

    def detect(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.array([[0, 0, w, h]], dtype=np.int32)

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        return FaceDetections.from_boxes(self.detect(image))

    @classmethod
    def create(cls, variant: str = "", model: Optional[Union[str, Path]] = None, fast: bool = False) -> "NoDetector":
        return cls()

    def describe(self, scale: float = 1.0) -> str:
        return "no detector (each image is one face)"

    def remedies(self, scale: float = 1.0) -> list:
        return []
