"""YuNet (2023mar, 232 KB, Apache-2.0), the default detector, run by OpenCV's ``cv2.FaceDetectorYN``.

Shipped inside the package (``fer_edge/assets/detectors/``, licence and provenance beside the
file), so it needs nothing beyond opencv-python. Besides the box it returns five landmarks
(eyes, nose, mouth corners), from which :mod:`..align` crops each face upright and framed like
FER2013. Published WIDER FACE (hard) AP 0.75 against 0.14 for the Haar cascade; it finds rotated,
small and half-lit faces the cascade misses, at 3-4 ms on a 320x240 frame on 2 cores.

YuNet boxes are tall (forehead to chin); they are made square around their centre, which is how a
face without landmarks would be cropped; faces with landmarks are aligned instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ...errors import InputError, ModelError
from ...remedy import Remedy
from ..boxes import clip_boxes_keep, squarify
from .base import NUM_LANDMARKS, FaceDetections, PerThread, cv_message, downscale, scaled_by, smallest_face_px

#: The shipped YuNet model, relative to the ``fer_edge`` package (licence: assets/detectors/LICENSE).
YUNET_MODEL = "assets/detectors/face_detection_yunet_2023mar.onnx"
#: About the smallest face, in pixels at the detection scale, that YuNet scores above 0.6.
YUNET_SMALLEST_FACE_PX = 20


def yunet_model_path() -> Path:
    """The YuNet model shipped inside the package."""
    return Path(str(resources.files("fer_edge").joinpath(YUNET_MODEL)))


#: YuNet answers an input 32 px or less on a side with boxes of score 1.0 on nothing at all (or
#: NaN boxes); measured on blank 8-32 px strips. Smaller inputs are padded up to this (replicated
#: edge, so no new edges), and the boxes kept are clipped to the unpadded image.
YUNET_MIN_SIDE = 64


@dataclass
class _YuNetState:
    det: Any  # cv2.FaceDetectorYN
    size: Optional[tuple[int, int]] = None


class YuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN``: boxes, five landmarks and a score per face.

    ``model_path`` None is the model shipped with fer-edge. ``score_threshold`` 0.6 keeps
    faces down to ~20 px (a 40 px face in a 640x480 frame detected at half size scores
    0.7-0.8; a frontal 100 px face 0.9+). ``max_side``: photos larger than this are
    detected on a downscaled copy (time grows with the pixel count: ~11 ms at 640x480).
    ``square`` makes the tall boxes square around their centre.
    """

    name = "yunet"
    summary = "the YuNet model shipped with fer-edge; faces are aligned"
    variants: tuple[str, ...] = ()
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image
    wants_gray = False  # its network reads colour
    finds_faces = True

    def __init__(
        self,
        model_path: Optional[Union[str, Path]] = None,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        square: bool = True,
        max_side: int = 1280,
    ):
        import cv2

        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError("this OpenCV has no FaceDetectorYN (needs opencv-python >= 4.5.4)")
        path = yunet_model_path() if model_path is None else Path(model_path).expanduser()
        if not path.is_file():
            if model_path is None:
                raise ModelError(f"the YuNet face detector is not installed ({path} is missing); reinstall fer-edge",
                                 remedies=[Remedy("detector", "haar", "OpenCV's cascade, which needs no file")])
            raise ModelError(
                f"YuNet detector model not found: {path} (face_detection_yunet_2023mar.onnx ships with fer-edge)",
                remedies=[Remedy("detector_model", None, "leave it out to use the shipped model")])
        if not 0.0 < score_threshold < 1.0:
            raise InputError(f"score_threshold must be in (0, 1), got {score_threshold}")
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.square = square
        self.max_side = int(max_side)
        self._states = PerThread(self._load)
        self._smoke_test()  # fail here, not on the first frame, when the model is bad

    def _smoke_test(self) -> None:
        """Load the model and run it once on a small blank image: OpenCV loads any ONNX graph,
        and one that is not a YuNet network (another input size, other outputs) fails only when
        run. Run now, that is a model error before any input is read or output written, not a
        failure at the first image; it costs a few milliseconds (64x64 pixels), once per detector."""
        self._states.get()  # a file OpenCV cannot load at all: _load's own message
        blank = np.full((YUNET_MIN_SIDE, YUNET_MIN_SIDE, 3), 128, np.uint8)
        try:
            self.detect_faces(blank)
        except Exception as exc:  # OpenCV's error (wrapped by detect_faces), or outputs of another shape
            reason = cv_message(exc.__cause__ if isinstance(exc, ModelError) and exc.__cause__ else exc)
            raise ModelError(f"YuNet detector model {self.model_path} loads but fails when run: {reason}",
                             remedies=[Remedy("detector_model", None, "the shipped model")]) from None

    def _load(self) -> _YuNetState:
        import cv2

        try:
            det = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.score_threshold,
                                            self.nms_threshold, self.top_k)
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet detector model {self.model_path}: {cv_message(exc)}") from exc
        return _YuNetState(det)

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_faces(image).boxes

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        import cv2

        H, W = image.shape[:2]
        small, scale = downscale(image, self.max_side)
        bgr = small if small.ndim == 3 else cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        h, w = bgr.shape[:2]
        if h < YUNET_MIN_SIDE or w < YUNET_MIN_SIDE:
            bgr = cv2.copyMakeBorder(bgr, 0, max(0, YUNET_MIN_SIDE - h), 0, max(0, YUNET_MIN_SIDE - w),
                                     cv2.BORDER_REPLICATE)
        size = (bgr.shape[1], bgr.shape[0])
        state = self._states.get()
        if state.size != size:
            state.det.setInputSize(size)
            state.size = size
        try:
            _, faces = state.det.detect(bgr)
        except cv2.error as exc:
            raise ModelError(f"YuNet detection failed: {cv_message(exc)}") from exc
        f = np.asarray(faces if faces is not None else (), dtype=np.float32).reshape(-1, 15)
        f = f[np.isfinite(f).all(axis=1)]
        if len(f) == 0:
            return FaceDetections.from_boxes(np.zeros((0, 4), np.int32))
        boxes = np.round(f[:, :4]).astype(np.int32)
        if self.square:
            boxes = squarify(clip_boxes_keep(boxes, w, h), w, h)
        found = FaceDetections(boxes, f[:, 4:14].reshape(-1, NUM_LANDMARKS, 2).copy(), f[:, 14].copy())
        return found.rescaled(1.0 / scale, W, H).largest_first()

    @classmethod
    def create(cls, variant: str = "", model: Optional[Union[str, Path]] = None, fast: bool = False) -> "YuNetDetector":
        """By registry name: ``yunet``; ``model``: another YuNet .onnx (None: the shipped one).
        Its cost does not depend on ``fast``."""
        return cls(model)

    def describe(self, scale: float = 1.0) -> str:
        return (f"the YuNet detector (score >= {self.score_threshold:g}{scaled_by(scale)}; faces from about "
                f"{smallest_face_px(scale, YUNET_SMALLEST_FACE_PX)} px, frontal to half-profile)")

    def remedies(self, scale: float = 1.0) -> list[Remedy]:
        return [Remedy(None, why=f"more light, or a larger face in the picture (YuNet needs about "
                                 f"{YUNET_SMALLEST_FACE_PX} px at the detection scale)")]
