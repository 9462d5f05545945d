"""Face detectors, by name: where are the faces, as ``(K, 4)`` int32 ``x, y, w, h`` boxes, largest first.

One module per detector (:mod:`.yunet`, :mod:`.haar`, :mod:`.none`), each a self-describing
class: its ``name``, ``summary`` (for ``--help``) and ``variants``, the input it wants (``wants_gray``), whether it can miss
a face at all (``finds_faces``), ``describe(scale)`` (what it looks for, in words) and
``remedies(scale)`` (what to change when it found nothing), and ``create(variant, model, fast)``.
:data:`DETECTORS` is the registry: a new detector is one module and one line there.
``create_detector("haar:alt2")`` builds one, as ``create_model(name)`` builds a network.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from ...errors import InputError
from ...remedy import Remedy
from .base import (  # noqa: F401  (the public names of the detector API)
    NUM_LANDMARKS, Detector, FaceDetections, detect_faces, detect_scaled, describe, smallest_face_px,
)
from ..boxes import expand_boxes, sort_largest_first, squarify  # noqa: F401
from .haar import HAAR_CASCADES, HaarDetector
from .none import NoDetector
from .yunet import YUNET_MODEL, YUNET_SMALLEST_FACE_PX, YuNetDetector, yunet_model_path  # noqa: F401

#: Every detector, by the name ``--detector`` / ``detector=`` take (``NAME`` or ``NAME:VARIANT``).
DETECTORS: dict[str, type] = {cls.name: cls for cls in (YuNetDetector, HaarDetector, NoDetector)}
#: The detector used when none is named (``fer-edge infer``, ``webcam``, ``fer_edge.predict``).
DEFAULT_DETECTOR = "yunet"
_ALIASES = {"no": "none"}


def _parse(name: Optional[str]) -> tuple[type, str]:
    kind, sep, variant = (name or DEFAULT_DETECTOR).strip().lower().partition(":")
    cls = DETECTORS.get(_ALIASES.get(kind, kind))
    if cls is None or (sep and variant not in cls.variants):
        raise ValueError(f"unknown detector {name!r}; use {', '.join(detector_names())}")
    return cls, variant


def detector_names() -> list[str]:
    """Every name a detector can be asked for by: ``yunet, haar, haar:alt, haar:alt2, none``."""
    out = []
    for name, cls in DETECTORS.items():
        out.append(name)
        out += [f"{name}:{v}" for v in cls.variants if v != "default"]
    return out


def describe_choices() -> str:
    """Every detector with its summary, the default marked (``--detector``'s help)."""
    return ", ".join(f"{name} ({'default: ' if name == DEFAULT_DETECTOR else ''}{cls.summary})"
                     for name, cls in DETECTORS.items())


def check_detector_name(name: str) -> str:
    """``name`` if it names a detector, else ValueError (argparse's ``type=``)."""
    _parse(name)
    return name


def create_detector(name: str = DEFAULT_DETECTOR, model: Optional[Union[str, Path]] = None,
                    fast: bool = False) -> Detector:
    """A detector by name (``yunet``, ``haar``, ``haar:alt2``, ``none``); ``model``: its own model
    file (a YuNet .onnx, a cascade .xml); ``fast``: the stream mode's settings, where the
    detector has faster ones."""
    try:
        cls, variant = _parse(name)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return cls.create(variant, model, fast)




def wants_gray(detector: Any) -> bool:
    """Whether the detector reads gray images (then the stream loop hands it the gray frame it has)."""
    return bool(getattr(detector, "wants_gray", False))


def finds_faces(detector: Any) -> bool:
    """Whether ``detector`` can miss a face (False for ``none``, which takes every image as one)."""
    return bool(getattr(detector, "finds_faces", True))


def no_face_remedies(detector: Any, scale: float = 1.0) -> list[Remedy]:
    """What to change when ``detector`` found no face at all, run at ``scale``."""
    out = []
    if scale < 1.0:
        px = smallest_face_px(scale, YUNET_SMALLEST_FACE_PX)
        out.append(Remedy("detect_scale", 1, f"faces smaller than about {px} px are missed at {scale:g}"))
    fn = getattr(detector, "remedies", None)
    out += fn(scale) if fn is not None else []
    out.append(Remedy("no_detect", True, "if the inputs are already face crops"))
    return out
