"""Face detectors: where are the faces, as ``(K, 4)`` int32 ``x, y, w, h`` boxes, largest first.

- :class:`HaarDetector` (default): OpenCV's frontal-face Haar cascade, shipped inside
  opencv-python, so it needs no download. It runs on a histogram-equalised grayscale copy
  (robust to exposure), downscaled so the longer side is at most ``max_side`` (a 12 MP photo
  takes seconds otherwise, and faces in such photos are large anyway), with a minimum face
  size relative to the image so texture in big photos does not fire.
- :class:`YuNetDetector`: ``cv2.FaceDetectorYN`` with a user-supplied
  ``face_detection_yunet_*.onnx`` (OpenCV Zoo); more robust to pose and lighting.
- :class:`NoDetector`: the whole image is one face (pre-cropped faces, as in FER2013).

Crops: FER2013 faces are square and tight. Running the Haar cascade on FER2013 images
themselves (600 PublicTest faces, upscaled and padded) finds a box of median size 47x47 at
offset (0.5, 0.25) of the 48x48 frame, i.e. a Haar box *is* a FER2013-style crop, so Haar
boxes are used as they are (the predictor's ``margin`` defaults to 0). YuNet boxes are tall (forehead to chin); they are
made square around their centre so the face is not squashed when resized to 48x48.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, Union

import numpy as np

from ..errors import InputError, ModelError

HAAR_CASCADES = {
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "alt2": "haarcascade_frontalface_alt2.xml",
}


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> np.ndarray:
        """``(K, 4)`` int32 ``x, y, w, h`` boxes inside ``image`` (uint8 gray or BGR), largest first."""
        ...


def _to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def sort_largest_first(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    if len(b) < 2:
        return b
    area = b[:, 2].astype(np.int64) * b[:, 3]
    # stable: equal areas keep left-to-right, top-to-bottom order
    order = np.lexsort((b[:, 1], b[:, 0], -area))
    return np.ascontiguousarray(b[order])


def expand_boxes(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Grow each box by ``margin`` of its size (split over both sides), clipped to the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if margin == 0 or len(b) == 0:
        return np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    dx, dy = b[:, 2] * margin / 2, b[:, 3] * margin / 2
    x0 = np.clip(np.floor(b[:, 0] - dx), 0, width)
    y0 = np.clip(np.floor(b[:, 1] - dy), 0, height)
    x1 = np.clip(np.ceil(b[:, 0] + b[:, 2] + dx), 0, width)
    y1 = np.clip(np.ceil(b[:, 1] + b[:, 3] + dy), 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)


def squarify(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Square boxes of side max(w, h) around the same centres, shifted to stay inside the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    side = np.minimum(np.maximum(b[:, 2], b[:, 3]), min(width, height))
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    x0 = np.clip(np.round(cx - side / 2), 0, width - side)
    y0 = np.clip(np.round(cy - side / 2), 0, height - side)
    return np.stack([x0, y0, side, side], axis=1).round().astype(np.int32)


class HaarDetector:
    """OpenCV Haar cascade, tuned for ordinary photos and webcam frames.

    ``scale_factor`` 1.1 and ``min_neighbors`` 5 are OpenCV's documented defaults for
    photos (fewer false positives than 3, still finds frontal faces down to ``min_size``);
    ``min_face`` is the smallest face as a fraction of the image's shorter side, floored at
    ``min_size_px``.
    """

    name = "haar"

    def __init__(
        self,
        cascade: str = "default",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face: float = 0.05,
        min_size_px: int = 24,
        max_side: int = 960,
        equalize: bool = True,
    ):
        import cv2

        file = HAAR_CASCADES.get(cascade, cascade)
        path = Path(file) if Path(file).is_file() else Path(cv2.data.haarcascades) / file
        if not path.is_file():
            raise ModelError(f"Haar cascade not found: {file} (known: {', '.join(HAAR_CASCADES)})")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"cannot load Haar cascade {path}")
        if scale_factor <= 1.0:
            raise InputError(f"scale_factor must be > 1, got {scale_factor}")
        self.cascade_path = path
        self.scale_factor = scale_factor
        self.min_neighbors = int(min_neighbors)
        self.min_face = float(min_face)
        self.min_size_px = int(min_size_px)
        self.max_side = int(max_side)
        self.equalize = equalize

    def detect(self, image: np.ndarray) -> np.ndarray:
        import cv2

        gray = _to_gray(image)
        h, w = gray.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        gh, gw = gray.shape[:2]
        m = max(self.min_size_px, int(round(self.min_face * min(gh, gw))))
        if m > min(gh, gw):
            return np.zeros((0, 4), dtype=np.int32)
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m)
        )
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        if scale != 1.0 and len(boxes):
            boxes = np.round(boxes / scale)
        return sort_largest_first(_clip(boxes, w, h))


class YuNetDetector:
    """``cv2.FaceDetectorYN`` (YuNet) with a user-supplied ONNX model from the OpenCV Zoo."""

    name = "yunet"

    def __init__(
        self,
        model_path: Union[str, Path],
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        square: bool = True,
    ):
        import cv2

        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError("this OpenCV has no FaceDetectorYN (needs opencv-python >= 4.5.4)")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(
                f"YuNet detector model not found: {path} (download face_detection_yunet_2023mar.onnx "
                "from https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet)"
            )
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet detector model {path}: {_cv_msg(exc)}") from exc
        self.model_path = path
        self.square = square
        self._size: Optional[tuple[int, int]] = None

    def detect(self, image: np.ndarray) -> np.ndarray:
        import cv2

        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = bgr.shape[:2]
        if self._size != (w, h):
            self._det.setInputSize((w, h))
            self._size = (w, h)
        try:
            _, faces = self._det.detect(bgr)
        except cv2.error as exc:
            raise ModelError(f"YuNet detection failed: {_cv_msg(exc)}") from exc
        if faces is None or len(faces) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.round(np.asarray(faces)[:, :4]).astype(np.int32)
        if self.square:
            boxes = squarify(_clip(boxes, w, h), w, h)
        return sort_largest_first(_clip(boxes, w, h))


class NoDetector:
    """Each image is already a face crop: one box covering the whole image."""

    name = "none"

    def detect(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.array([[0, 0, w, h]], dtype=np.int32)


# Detector names the CLI accepts (``--detector``); ``haar`` also takes ``haar:VARIANT``
# (a key of HAAR_CASCADES). The CLI validates against these, so they are defined once, here.
DETECTORS: tuple[str, ...] = ("haar", "yunet", "none")


def check_detector_name(name: str) -> str:
    """``name`` if it names a detector (``haar``, ``haar:alt2``, ``yunet``, ``none``), else ValueError."""
    kind, sep, variant = (name or "").strip().lower().partition(":")
    kind = "none" if kind == "no" else kind
    if kind not in DETECTORS or (sep and (kind != "haar" or variant not in HAAR_CASCADES)):
        variants = ", ".join(f"haar:{v}" for v in HAAR_CASCADES if v != "default")
        raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTORS)} (or {variants})")
    return name


def build_detector(name: str = "haar", model: Optional[Union[str, Path]] = None, fast: bool = False) -> Detector:
    """Detector by CLI name: ``haar`` (or ``haar:alt2``), ``yunet`` (needs ``model``), ``none``.

    ``fast`` (the stream mode) steps the Haar cascade's scale pyramid by 1.2 instead of 1.1:
    about 1.7x faster, and a face missed on one detection round is kept by the tracker.
    """
    kind, _, variant = (name or "haar").partition(":")
    kind = kind.lower()
    if kind == "haar":
        sf = 1.2 if fast else 1.1
        if model is not None:
            return HaarDetector(cascade=str(model), scale_factor=sf)
        return HaarDetector(cascade=variant or "default", scale_factor=sf)
    if kind == "yunet":
        if model is None:
            raise ModelError("--detector yunet needs --detector-model face_detection_yunet.onnx")
        return YuNetDetector(model)
    if kind in ("none", "no"):
        return NoDetector()
    raise InputError(f"unknown detector {name!r}; use haar, haar:alt2, yunet or none")


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    from .preprocess import clip_boxes

    return clip_boxes(boxes, width, height)


def _cv_msg(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
