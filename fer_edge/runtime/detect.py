"""Face detectors: where are the faces, as ``(K, 4)`` int32 ``x, y, w, h`` boxes, largest first.

- :class:`YuNetDetector` (default): YuNet (2023mar, 232 KB, Apache-2.0) shipped inside the
  package (``fer_edge/assets/detectors/``, licence and provenance beside the file), run by
  OpenCV's ``cv2.FaceDetectorYN``, so it needs nothing beyond opencv-python. Besides the
  box it returns five landmarks (eyes, nose, mouth corners), from which
  :mod:`.align` crops each face upright and framed like FER2013. Published WIDER FACE
  (hard) AP 0.75 against 0.14 for the Haar cascade; it finds rotated, small and
  half-lit faces the cascade misses, at 3-4 ms on a 320x240 frame on 2 cores.
- :class:`HaarDetector`: OpenCV's frontal-face Haar cascade (``--detector haar``), boxes
  only. It runs on the plain grayscale image: the histogram equalisation the cascade used
  to run on made it miss a 72 px frontal face on a flat gray background that stock
  ``detectMultiScale`` finds (tests/test_runtime_detect.py), and no case was found where it helped.
- :class:`NoDetector`: the whole image is one face (pre-cropped faces, as in FER2013).

:meth:`detect` returns boxes (the stable API); :meth:`detect_faces` returns
:class:`FaceDetections` (boxes, landmarks, scores), what the predictor uses to align.

Crops: running the Haar cascade on FER2013 images themselves (600 PublicTest faces,
upscaled and padded) finds a box of median size 47x47 at offset (0.5, 0.25) of the 48x48
frame, i.e. a Haar box *is* a FER2013-style crop and is used as it is. YuNet boxes are
tall (forehead to chin); they are made square around their centre, which is how a face
without landmarks would be cropped; faces with landmarks are aligned instead (:mod:`.align`).

Threads: OpenCV's detector objects are not safe to share (a ``CascadeClassifier`` must not
run concurrently; ``FaceDetectorYN`` keeps the input size as state, set by
``setInputSize`` before each frame size). Each detector therefore keeps one OpenCV object
per thread (``threading.local``), created lazily from the same settings, rather than one
object behind a lock. Measured by ``python scripts/bench_detector_threads.py --frames 60``
(2 threads on the 2 shared cores, load average ~7): Haar 119 ms per frame per-thread vs
149 ms with a lock (1.25x); YuNet 45.7 vs 42.6 ms (the same within noise: its network
already uses both cores through OpenCV's thread pool). A thread's own object costs 2-7 ms
(YuNet) or ~14-38 ms (cascade) once. Per-thread objects never make one thread wait for
another's frame, so they are used for both.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union

import numpy as np

from ..errors import InputError, ModelError

HAAR_CASCADES = {
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "alt2": "haarcascade_frontalface_alt2.xml",
}

#: The detector used when none is named (``fer-edge infer``, ``webcam``, ``fer_edge.predict``).
DEFAULT_DETECTOR = "yunet"
#: The shipped YuNet model, relative to the ``fer_edge`` package (licence: assets/detectors/LICENSE).
YUNET_MODEL = "assets/detectors/face_detection_yunet_2023mar.onnx"
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
        b = self.boxes.astype(np.int64).reshape(-1, 4)
        x0, y0 = np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height)
        x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, width), np.clip(b[:, 1] + b[:, 3], 0, height)
        out = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)
        keep = (out[:, 2] > 0) & (out[:, 3] > 0)
        return FaceDetections(np.ascontiguousarray(out[keep]), self.landmarks[keep], self.scores[keep])

    def largest_first(self) -> "FaceDetections":
        return self.take(_largest_first_order(self.boxes))


class Detector(Protocol):
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
    found = _unclipped(detector, image)
    if getattr(detector, "clips_boxes", False):
        return found
    h, w = image.shape[:2]
    return found.clipped(w, h)


def _unclipped(detector: Any, image: np.ndarray) -> FaceDetections:
    fn = getattr(detector, "detect_faces", None)
    return fn(image) if fn is not None else FaceDetections.from_boxes(detector.detect(image))


def _to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _largest_first_order(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(b) < 2:
        return np.arange(len(b))
    # stable: equal areas keep left-to-right, top-to-bottom order
    return np.lexsort((b[:, 1], b[:, 0], -(b[:, 2] * b[:, 3])))


def sort_largest_first(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    return np.ascontiguousarray(b[_largest_first_order(b)])


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


class _PerThread:
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


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side``, and the factor used."""
    import cv2

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, scale


class HaarDetector:
    """OpenCV Haar cascade, tuned for ordinary photos and webcam frames (boxes, no landmarks).

    ``scale_factor`` 1.1 and ``min_neighbors`` 5 are OpenCV's documented defaults for
    photos (fewer false positives than 3, still finds frontal faces down to ``min_size``);
    ``min_face`` is the smallest face as a fraction of the image's shorter side, floored at
    ``min_size_px``. ``equalize`` (off by default, see the module doc) equalises the
    histogram first.
    """

    name = "haar"
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image

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
        self._cascades = _PerThread(self._load)
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
        gray, scale = _downscale(_to_gray(image), self.max_side)
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
        return sort_largest_first(_clip(boxes, w, h))

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        return FaceDetections.from_boxes(self.detect(image))


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
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image

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
                raise ModelError(f"the YuNet face detector is not installed ({path} is missing); reinstall fer-edge "
                                 "or use --detector haar")
            raise ModelError(
                f"YuNet detector model not found: {path} (face_detection_yunet_2023mar.onnx ships with fer-edge; "
                "leave out --detector-model to use it)"
            )
        if not 0.0 < score_threshold < 1.0:
            raise InputError(f"score_threshold must be in (0, 1), got {score_threshold}")
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.square = square
        self.max_side = int(max_side)
        self._states = _PerThread(self._load)
        self._states.get()  # fail here, not on the first frame, when the model is bad

    def _load(self) -> _YuNetState:
        import cv2

        try:
            det = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.score_threshold,
                                            self.nms_threshold, self.top_k)
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet detector model {self.model_path}: {_cv_msg(exc)}") from exc
        return _YuNetState(det)

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_faces(image).boxes

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        import cv2

        H, W = image.shape[:2]
        small, scale = _downscale(image, self.max_side)
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
            raise ModelError(f"YuNet detection failed: {_cv_msg(exc)}") from exc
        f = np.asarray(faces if faces is not None else (), dtype=np.float32).reshape(-1, 15)
        f = f[np.isfinite(f).all(axis=1)]
        if len(f) == 0:
            return FaceDetections.from_boxes(np.zeros((0, 4), np.int32))
        boxes = np.round(f[:, :4]).astype(np.int32)
        if self.square:
            boxes = squarify(_clip_keep(boxes, w, h), w, h)
        found = FaceDetections(boxes, f[:, 4:14].reshape(-1, NUM_LANDMARKS, 2).copy(), f[:, 14].copy())
        return found.rescaled(1.0 / scale, W, H).largest_first()


class NoDetector:
    """Each image is already a face crop: one box covering the whole image."""

    name = "none"
    clips_boxes = True  # detect() / detect_faces() give boxes inside the image

    def detect(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.array([[0, 0, w, h]], dtype=np.int32)

    def detect_faces(self, image: np.ndarray) -> FaceDetections:
        return FaceDetections.from_boxes(self.detect(image))


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


def build_detector(name: str = DEFAULT_DETECTOR, model: Optional[Union[str, Path]] = None,
                   fast: bool = False) -> Detector:
    """Detector by CLI name: ``yunet`` (default; ``model`` None = the shipped one), ``haar``
    (or ``haar:alt2``; ``model`` = a cascade XML), ``none``.

    ``fast`` (the stream mode) steps the Haar cascade's scale pyramid by 1.2 instead of 1.1:
    about 1.7x faster, and a face missed on one detection round is kept by the tracker.
    YuNet's cost does not depend on it.
    """
    kind, _, variant = (name or DEFAULT_DETECTOR).partition(":")
    kind = kind.strip().lower()
    if kind == "haar":
        sf = 1.2 if fast else 1.1
        if model is not None:
            return HaarDetector(cascade=str(model), scale_factor=sf)
        return HaarDetector(cascade=variant or "default", scale_factor=sf)
    if kind == "yunet":
        return YuNetDetector(model)
    if kind in ("none", "no"):
        return NoDetector()
    raise InputError(f"unknown detector {name!r}; use yunet, haar, haar:alt, haar:alt2 or none")


def describe_detector(detector: Any, scale: float = 1.0) -> str:
    """What a detector looks for, in words, for the "no face found" warnings."""
    name = getattr(detector, "name", type(detector).__name__)
    where = f" on frames scaled by {scale:g}" if scale != 1.0 else ""
    if isinstance(detector, YuNetDetector):
        smallest = int(round(20 / scale))
        return (f"the YuNet detector (score >= {detector.score_threshold:g}{where}; faces from about "
                f"{smallest} px, frontal to half-profile)")
    if isinstance(detector, HaarDetector):
        return (f"the Haar cascade {detector.cascade_path.name}{where} (frontal, upright faces of at least "
                f"{detector.min_size_px} px and {detector.min_face:.0%} of the shorter side)")
    return f"the {name} detector{where}"


def no_face_advice(detector: Any, scale: float = 1.0) -> str:
    """What to change when a detector found no face at all (one line, for the CLI warnings)."""
    tips = []
    if scale < 1.0:
        tips.append(f"--detect-scale 1 (faces smaller than about {int(round(20 / scale))} px are missed at {scale:g})")
    if isinstance(detector, HaarDetector):
        tips.append("--detector yunet (finds turned, tilted and small faces the cascade misses)")
    elif isinstance(detector, YuNetDetector):
        tips.append("more light, or a larger face in the picture (YuNet needs about 20 px at the detection scale)")
    tips.append("--no-detect if the inputs are already face crops")
    return "; ".join(tips)


def detect_scaled(detector: Any, image: np.ndarray, scale: float = 1.0) -> FaceDetections:
    """Detections of ``detector`` in ``image``, run on a copy resized by ``scale`` (< 1: the
    stream mode's speed knob) and mapped back to ``image`` coordinates."""
    import cv2

    h, w = image.shape[:2]
    if scale == 1.0:
        return detect_faces(detector, image)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return _unclipped(detector, small).rescaled(1.0 / scale, w, h)  # rescaled() clips to image


def _clip_keep(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes clipped to the image, keeping every row (empty ones become 0-sized)."""
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    x0, y0 = np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height)
    x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, width), np.clip(b[:, 1] + b[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    from .preprocess import clip_boxes

    return clip_boxes(boxes, width, height)


def _cv_msg(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
