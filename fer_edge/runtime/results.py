"""What a prediction returns: plain dataclasses that turn into JSON as they are."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class FaceResult:
    """One face: where it is and what expression it shows.

    ``box`` is ``(x, y, w, h)`` in pixels of the input image; ``probabilities`` maps every
    class name to its probability (they sum to 1); ``label``/``score`` are the argmax.
    ``track_id`` is set by the stream mode (the same person keeps the same id).
    ``face_confidence`` is the face detector's score for the face (deepface's name; YuNet's
    score in [0, 1]; in the stream mode that of the detection the track last matched), and
    None where no detector gave one: the Haar cascades (they give no score), ``--no-detect``
    / ``detector="none"`` and :func:`~fer_edge.predict_emotions` on crops.
    """

    box: tuple[int, int, int, int]
    label: str
    score: float
    probabilities: dict[str, float]
    track_id: Optional[int] = None
    face_confidence: Optional[float] = None

    def top_k(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely classes, best first."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: kv[1], reverse=True)
        return ranked[: max(0, k)]

    def to_dict(self, top_k: Optional[int] = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "score": round(float(self.score), 6),
            "probabilities": {k: round(float(v), 6) for k, v in self.probabilities.items()},
            "face_confidence": None if self.face_confidence is None else round(float(self.face_confidence), 6),
        }
        if self.track_id is not None:
            d["track_id"] = self.track_id
        if top_k:
            d["top_k"] = [{"label": c, "score": round(float(p), 6)} for c, p in self.top_k(top_k)]
        return d


@dataclass
class ImageResult:
    """All faces of one input image, or why it could not be processed.

    ``error`` is None on success; an image without faces has ``faces == []`` and no error.
    ``cause``: the library's error behind ``error``, when there is one (its remedies are worded
    by the front end: the CLI names its flags).
    """

    path: Optional[str]
    width: int = 0
    height: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    error: Optional[str] = None
    cause: Optional[Exception] = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, top_k: Optional[int] = None) -> dict[str, Any]:
        """JSON-ready; ``width`` and ``height`` are null for an input that was never read (not 0,
        which would pass for an image's size)."""
        read = self.ok or self.width > 0
        return {
            "path": self.path,
            "width": self.width if read else None,
            "height": self.height if read else None,
            "faces": [f.to_dict(top_k) for f in self.faces],
            "error": self.error,
        }
