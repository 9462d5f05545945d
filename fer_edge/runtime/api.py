"""The Python API: a detector and a model combined, mirroring ``fer-edge infer``.

>>> import fer_edge
>>> faces = fer_edge.predict("photo.jpg")          # packaged default model, YuNet detector, aligned crops
>>> faces[0].label, faces[0].score, faces[0].box
('happy', 0.91, (108, 51, 79, 79))

For many images, build one :class:`Predictor` and reuse it (the session and detector are
created once). An image is a file path (``str`` or ``pathlib.Path``), a numpy array in
OpenCV's convention (uint8 BGR ``(H, W, 3)``, BGRA or gray ``(H, W)``; turn an RGB array into
BGR with ``rgb[:, :, ::-1]``), a PIL image (RGB, converted here), or an encoded image: its
``bytes`` (``bytearray``, ``memoryview``), a binary file object, a ``data:image/...;base64,``
URI or an ``http(s)://`` URL (fetched; see :mod:`.encoded` for the timeout and size cap);
a video goes to :func:`fer_edge.analyze_video`. A list of images is classified in one model call and
gives one list of faces per image. Faces that are already cropped (FER2013-style, or from your
own detector) go to :func:`predict_emotions`.

Threads: :func:`predict`, a :class:`Predictor` and its :class:`FerModel` may be shared by any
number of threads, and answer each call exactly as they answer it alone (a web service needs
one Predictor, not one per request): the built-in detectors keep one OpenCV object per thread,
the ONNX Runtime session's ``run`` is thread-safe, and nothing per call is kept on the objects.
A detector object of your own, passed as ``Predictor(detector=obj)``, is called from every
calling thread and must be thread-safe itself. docs/RUNTIME.md, "Threads and long runs",
has the measured throughput per thread count.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import FerEdgeError
from .boxes import clip_boxes, expand_boxes
from .detect import DEFAULT_DETECTOR, Detector, FaceDetections, create_detector, detect_scaled
from .model import FerModel
from .preprocess import as_bgr_or_gray, faces_to_batch
from .results import FaceResult, ImageResult
from .imagesize import MAX_PIXELS
from .inputs import ImageInput, image_from_path, is_batch, to_image, to_images

ImageLike = ImageInput  # a path or URL, encoded bytes or a file object, a BGR numpy array or a PIL image
ModelLike = Union[FerModel, str, Path, None]


class Predictor:
    """Find faces and classify their expressions; one batched model call per image.

    ``model``: a :class:`FerModel`, a path to an exported ``.onnx``, or None for the
    packaged default. ``detector``: ``"yunet"`` (default, shipped; ``detector_model`` picks
    another YuNet file), ``"haar"``, ``"haar:alt2"``, ``"none"`` (inputs are face crops) or
    any object with ``detect(image) -> (K, 4) boxes`` (optionally ``detect_faces(image) ->
    FaceDetections`` with landmarks). ``align``: faces with landmarks are turned upright and
    framed like FER2013 (:mod:`.align`); False crops every face from its box. ``max_faces``
    keeps the largest faces only; ``margin`` grows each detected box by that fraction of its
    size (0 = FER2013-like Haar crops, see :mod:`.detect`; aligned crops ignore it).

    Safe to share between threads (see the module doc); keep no per-call state on it.
    """

    def __init__(
        self,
        model: ModelLike = None,
        detector: Union[str, Detector] = DEFAULT_DETECTOR,
        detector_model: Optional[Union[str, Path]] = None,
        max_faces: Optional[int] = None,
        margin: float = 0.0,
        device: str = "auto",
        threads: Optional[int] = None,
        align: bool = True,
        max_pixels: Optional[int] = MAX_PIXELS,
    ):
        self.model = model if isinstance(model, FerModel) else FerModel.load(model, device=device, threads=threads)
        if not isinstance(detector, str) and not callable(getattr(detector, "detect", None)):
            raise TypeError(f"detector must be a detector name (yunet, haar, none) or an object with a detect(image) "
                            f"method, got {type(detector).__name__}")
        self.detector: Detector = create_detector(detector, detector_model) if isinstance(detector, str) else detector
        self.max_faces = check_max_faces(max_faces)
        self.margin = check_margin(margin)
        self.align = bool(align)
        self.max_pixels = check_max_pixels(max_pixels)

    # --------------------------------------------------------------- building blocks
    # A frame travels one way: converted once (to_image / as_bgr_or_gray, at the public
    # boundary), detected (boxes clipped once, in detect_scaled), cropped and classified.
    # The public methods below take any image and any boxes; the *_prepared ones take an
    # image already converted and boxes inside it (what detection and the tracker give),
    # and are what predict() and the stream loop run.
    def detect(self, image: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Face boxes ``(K, 4)`` in ``image`` coordinates, largest first, ``max_faces`` applied.

        ``scale < 1`` runs the detector on a downscaled copy (the stream mode's speed knob)
        and maps the boxes back.
        """
        return self.detect_faces(image, scale).boxes

    def detect_faces(self, image: np.ndarray, scale: float = 1.0) -> FaceDetections:
        """Like :meth:`detect`, with each face's landmarks and score (what :meth:`classify` aligns with)."""
        from .pipeline import check_detect_scale

        return self.detect_prepared(as_bgr_or_gray(image), check_detect_scale(scale, "scale"))

    def detect_prepared(self, img: np.ndarray, scale: float = 1.0) -> FaceDetections:
        """:meth:`detect_faces` of an image already converted by ``as_bgr_or_gray`` (no copy, no check)."""
        found = detect_scaled(self.detector, img, scale)
        if self.max_faces is not None:
            found = found.take(slice(0, self.max_faces))
        if self.margin:
            h, w = img.shape[:2]
            found = FaceDetections(expand_boxes(found.boxes, self.margin, w, h), found.landmarks, found.scores)
        return found

    def classify(self, image: np.ndarray, boxes: np.ndarray, landmarks: Optional[np.ndarray] = None) -> np.ndarray:
        """Class probabilities ``(K, num_classes)`` for the faces at ``boxes``, in one model call.

        ``landmarks`` ``(K, 5, 2)`` (from :meth:`detect_faces`; NaN rows for faces without)
        aligns those faces when the predictor's ``align`` is on.
        """
        return self.model.predict_proba(self.face_batch(image, boxes, landmarks))

    def classify_prepared(self, img: np.ndarray, boxes: np.ndarray, landmarks: Optional[np.ndarray] = None) -> np.ndarray:
        """:meth:`classify` for an image already converted and boxes inside it (from detection or tracking)."""
        return self.model.predict_proba(self.face_batch_prepared(img, boxes, landmarks))

    def face_batch(self, image: np.ndarray, boxes: np.ndarray, landmarks: Optional[np.ndarray] = None) -> np.ndarray:
        """The model input ``(K, C, S, S)`` for the faces at ``boxes`` (what :meth:`classify` runs);
        boxes are clipped to the image, and each must overlap it."""
        img = as_bgr_or_gray(image)
        b = clip_boxes(boxes, img.shape[1], img.shape[0])
        if len(b) != len(np.asarray(boxes).reshape(-1, 4)):
            raise ValueError("every box must overlap the image")
        if landmarks is not None and np.asarray(landmarks).size != len(b) * 10:
            raise ValueError(f"landmarks must be (K, 5, 2) for the K = {len(b)} boxes, got shape {np.shape(landmarks)}")
        return self.face_batch_prepared(img, b, landmarks)

    def face_batch_prepared(self, img: np.ndarray, boxes: np.ndarray, landmarks: Optional[np.ndarray] = None) -> np.ndarray:
        """:meth:`face_batch` for an image already converted and boxes inside it (no conversion, no clipping)."""
        return faces_to_batch(img, boxes, self.model.contract, landmarks=landmarks if self.align else None)

    def faces_from(self, boxes: np.ndarray, probs: np.ndarray, track_ids: Optional[list[int]] = None,
                   scores: Optional[np.ndarray] = None) -> list[FaceResult]:
        """Pack boxes and probabilities into :class:`FaceResult` objects; ``scores`` (K,) are the
        detector's (``FaceDetections.scores``: NaN, or None for all, where it gave none)."""
        classes = self.model.classes
        out = []
        for i, (box, p) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), probs)):
            k = int(np.argmax(p))
            out.append(
                FaceResult(
                    box=tuple(int(v) for v in box),  # type: ignore[arg-type]
                    label=classes[k],
                    score=float(p[k]),
                    probabilities={c: float(v) for c, v in zip(classes, p)},
                    track_id=None if track_ids is None else int(track_ids[i]),
                    face_confidence=None if scores is None else detector_score(scores[i]),
                )
            )
        return out

    # --------------------------------------------------------------- whole images
    def predict(self, image: Union[ImageLike, Sequence[ImageLike]]) -> Union[list[FaceResult], list[list[FaceResult]]]:
        """All faces of one image (path, URL, bytes, file object, BGR array or PIL image: see the
        module doc); an image without faces gives ``[]``.

        A list of images gives a list of face lists, one per image, from one model call
        (:meth:`predict_batch`).
        """
        if is_batch(image):
            return self.predict_batch(image)
        return self._predict_prepared(to_image(image, self.max_pixels))

    def _predict_prepared(self, img: np.ndarray) -> list[FaceResult]:
        found = self.detect_prepared(img)
        return self.faces_from(found.boxes, self.classify_prepared(img, found.boxes, found.landmarks),
                               scores=found.scores)

    def predict_batch(self, images: Sequence[ImageLike]) -> list[list[FaceResult]]:
        """Faces of several images: detection per image, then every face of every image
        through the model in ONE call (what a GPU or a batched CPU session is fastest at)."""
        imgs = to_images(images, self.max_pixels)
        found = [self.detect_prepared(img) for img in imgs]
        batches = [self.face_batch_prepared(img, f.boxes, f.landmarks) for img, f in zip(imgs, found) if len(f.boxes)]
        probs = self.model.predict_proba(np.concatenate(batches)) if batches else None
        out, start = [], 0
        for f in found:
            k = len(f.boxes)
            out.append(self.faces_from(f.boxes, probs[start:start + k], scores=f.scores) if k else [])
            start += k
        return out

    def classify_crops(self, faces: Sequence[ImageLike]) -> list[FaceResult]:
        """Expressions of images that are each one face already cropped (no detection): one
        :class:`FaceResult` per crop, its box the whole crop, all crops in one model call."""
        imgs = to_images(faces, self.max_pixels)
        if not imgs:
            return []
        boxes = [np.array([[0, 0, img.shape[1], img.shape[0]]], dtype=np.int32) for img in imgs]
        probs = self.model.predict_proba(np.concatenate(
            [faces_to_batch(img, b, self.model.contract) for img, b in zip(imgs, boxes)]))
        return [self.faces_from(b, p[None])[0] for b, p in zip(boxes, probs)]

    def predict_image(self, image: np.ndarray, path: Optional[str] = None) -> ImageResult:
        img = as_bgr_or_gray(image)
        h, w = img.shape[:2]
        return ImageResult(path=path, width=w, height=h, faces=self._predict_prepared(img))

    def process_path(self, path: Union[str, Path]) -> ImageResult:
        """Like :meth:`predict` for a file, but a bad file becomes ``ImageResult.error``."""
        import cv2

        try:
            img = image_from_path(Path(path), self.max_pixels)
        except FerEdgeError as exc:
            return ImageResult(path=str(path), error=str(exc), cause=exc)
        try:
            return self.predict_image(img, path=str(path))
        except (ValueError, cv2.error) as exc:  # an image OpenCV decoded but cannot process
            return ImageResult(path=str(path), width=img.shape[1], height=img.shape[0],
                               error=f"cannot process image {path}: {exc}")

    def iter_paths(self, paths: Iterable[Union[str, Path]]) -> Iterator[ImageResult]:
        for p in paths:
            yield self.process_path(p)


def detector_score(score: float) -> Optional[float]:
    """A detector's score as :attr:`FaceResult.face_confidence`: None for NaN (the detector gives none)."""
    value = float(score)
    return value if np.isfinite(value) else None


def check_max_faces(max_faces: Optional[int], name: str = "max_faces") -> Optional[int]:
    """``max_faces`` (None: every face) if it is at least 1, else ValueError (``fer-edge --max-faces``
    checks its value here too)."""
    if max_faces is not None and (isinstance(max_faces, bool) or int(max_faces) != max_faces or max_faces < 1):
        raise ValueError(_must(name, f"be at least 1, got {max_faces}"))
    return None if max_faces is None else int(max_faces)


MARGIN_RANGE = (0.0, 2.0)


def check_max_pixels(max_pixels: Optional[int], name: str = "max_pixels") -> Optional[int]:
    """``max_pixels``, checked: None or 0 (no limit) or a positive whole number."""
    if max_pixels is None or max_pixels == 0:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 0:
        raise ValueError(f"{name} must be a positive whole number of pixels, or 0 for no limit; got {max_pixels!r}")
    return int(max_pixels)


def check_margin(margin: float, name: str = "margin") -> float:
    """``margin`` as a float if it is in [0, 2] (not NaN), else ValueError (``fer-edge --margin`` too)."""
    lo, hi = MARGIN_RANGE
    value = float(margin)
    if not lo <= value <= hi:
        raise ValueError(_must(name, f"be in [{lo:g}, {hi:g}], got {margin}"))
    return value


def _must(name: str, rule: str) -> str:
    """``"margin must be in [0, 2], got 3"``; without a name (argparse names the option) ``"must be ..."``."""
    return f"{name} must {rule}" if name else f"must {rule}"


_cache: dict[tuple, Predictor] = {}
_cache_lock = threading.Lock()


def predict(
    image: ImageLike,
    model: ModelLike = None,
    *,
    detector: str = DEFAULT_DETECTOR,
    detector_model: Optional[Union[str, Path]] = None,
    max_faces: Optional[int] = None,
    device: str = "auto",
    max_pixels: Optional[int] = MAX_PIXELS,
) -> Union[list[FaceResult], list[list[FaceResult]]]:
    """Faces and expressions in one image: ``fer_edge.predict("photo.jpg")``.

    ``image``: a file path, an ``http(s)://`` URL or ``data:image/...;base64,`` URI, encoded
    image ``bytes`` or a binary file object, a numpy BGR array, a PIL image, or a list of these
    (then one list of faces per image, all faces classified in one model call). The first call loads
    the model (the packaged default when ``model`` is None or ``"default"``) and keeps it for
    later calls with the same arguments. An encoded image that declares more than ``max_pixels``
    pixels (default :data:`~.imagesize.MAX_PIXELS`; None or 0 for no limit) is refused before it
    is decoded. Raises :class:`~fer_edge.errors.InputError` for an
    unreadable image and :class:`~fer_edge.errors.ModelError` for a missing or invalid model.
    """
    return _shared(model, detector, detector_model, max_faces, device, max_pixels).predict(image)


def predict_emotions(
    faces: Union[ImageLike, Sequence[ImageLike]],
    model: ModelLike = None,
    *,
    device: str = "auto",
    max_pixels: Optional[int] = MAX_PIXELS,
) -> Union[FaceResult, list[FaceResult]]:
    """Expressions of faces that are already cropped (hsemotion's ``predict_emotions``).

    ``faces``: one face crop (any image :func:`predict` takes) or a list of them; no detection
    runs, each crop is one face. Gives a :class:`FaceResult` (box = the whole crop) per
    crop, a list for a list, all crops in one model call.

    >>> fer_edge.predict_emotions(face_crop).label
    'happy'
    """
    predictor = _shared(model, "none", None, None, device, max_pixels)
    if is_batch(faces):
        return predictor.classify_crops(faces)
    return predictor.classify_crops([faces])[0]


def _shared(model: ModelLike, detector: str, detector_model, max_faces: Optional[int], device: str,
            max_pixels: Optional[int] = MAX_PIXELS) -> Predictor:
    """One Predictor per set of arguments, kept for later calls (at most 4)."""
    from .default_model import resolve_model_path

    key_model = model if isinstance(model, FerModel) else str(resolve_model_path(model).resolve())
    key = (key_model, detector, str(detector_model) if detector_model else None, max_faces, device, max_pixels)
    with _cache_lock:
        predictor = _cache.get(key)
        if predictor is None:
            predictor = Predictor(model, detector=detector, detector_model=detector_model, max_faces=max_faces, device=device,
                                  max_pixels=max_pixels)
            if len(_cache) >= 4:
                _cache.pop(next(iter(_cache)))
            _cache[key] = predictor
    return predictor
