"""``fer_edge.analyze_images``: a folder (or files, or a glob) of images in one call, as a table.

The image counterpart of :func:`~.video.analyze_video`, on the same pipeline as ``fer-edge infer``:
one :class:`~.results.ImageResult` per image, and :meth:`ImageAnalysis.to_pandas` with one row per
face, the columns ``infer --csv`` writes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..errors import MissingDependencyError
from .imagesize import MAX_PIXELS
from .pipeline import IMAGES, StreamSummary, run
from .results import ImageResult
from .timeline import CsvSink, columns

PathLike = Union[str, Path]


def image_columns(classes: Sequence[str]) -> list[str]:
    """The table's columns: ``path``, ``face`` (1 = the largest), the box, label, score, one per class."""
    return ["path", "face"] + [c for c in columns(classes) if c not in ("frame", "time", "track_id")]


@dataclass
class ImageAnalysis:
    """Every image's result (``results``, failures included: ``ok`` is False and ``error`` says
    why) and how the run went (``summary``)."""

    results: list[ImageResult]
    summary: StreamSummary
    classes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if not r.ok]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per face: path, face, x, y, w, h, label, score and one probability per class."""
        out = []
        for r in self.results:
            for i, f in enumerate(r.faces, 1):
                x, y, w, h = (int(v) for v in f.box)
                row: dict[str, Any] = {"path": r.path, "face": i, "x": x, "y": y, "w": w, "h": h,
                                       "label": f.label, "score": round(float(f.score), 6)}
                row.update({c: round(float(f.probabilities[c]), 6) for c in self.classes})
                out.append(row)
        return out

    def to_pandas(self):
        """:meth:`rows` as a DataFrame (needs pandas); an image without a face has no row."""
        try:
            import pandas as pd
        except ImportError:
            raise MissingDependencyError("pandas is not installed; to_pandas() needs it: pip install pandas") from None
        return pd.DataFrame(self.rows(), columns=image_columns(self.classes))


class _Results:
    """Sink: every image's :class:`~.results.ImageResult`, in order."""

    def __init__(self) -> None:
        self.results: list[ImageResult] = []

    def add(self, result) -> None:
        self.results.append(result.image_result())


def analyze_images(
    sources: Union[PathLike, Sequence[PathLike]],
    model=None,
    *,
    detector: Optional[str] = None,
    detector_model: Optional[PathLike] = None,
    max_faces: Optional[int] = None,
    device: str = "auto",
    max_pixels: Optional[int] = MAX_PIXELS,
    csv: Optional[PathLike] = None,
) -> ImageAnalysis:
    """Expressions of the faces in every image of ``sources``: image files, folders (searched
    recursively) and glob patterns, one or a list. A source that finds no image, and an image
    that cannot be read, are results with ``error`` set; the others are read.

    ``csv`` also writes the table (``infer --csv``'s columns: path, frame, time, track_id, the box,
    label, score, the probabilities; frame, time and track_id empty for images).

    >>> result = fer_edge.analyze_images("photos/")
    >>> df = result.to_pandas()                  # needs pandas
    >>> df.groupby("label").size()
    """
    from .api import Predictor
    from .frames import ImageFrames
    from .sources import IMAGES as IMAGE_SOURCE, infer_inputs, resolve_source

    if isinstance(sources, (str, os.PathLike)):
        items = [sources]
    elif isinstance(sources, (list, tuple)):
        items = list(sources)
    else:
        raise TypeError(f"sources must be an image file, a folder, a glob pattern or a list of them, "
                        f"got {type(sources).__name__}")
    specs = [resolve_source(s, default=IMAGE_SOURCE) for s in items]
    named_video = next((s.text for s in specs if s.kind == "video"), None)
    if named_video is not None:  # a video named as such; one a pattern matches is left to analyze_video
        from ..errors import InputError

        raise InputError(f"{named_video} is a video: use fer_edge.analyze_video")
    found = [s for s in infer_inputs(specs) if s.kind != "video"]
    predictor = Predictor(model, max_faces=max_faces, device=device, max_pixels=max_pixels,
                          **({} if detector is None else {"detector": detector, "detector_model": detector_model}))
    frames = ImageFrames([s.path for s in found], max_pixels, errors={s.path: s.error for s in found if s.error})
    results = _Results()
    table = CsvSink(Path(csv), predictor.model.classes, paths=True) if csv else None
    try:
        summary = run(predictor, frames, IMAGES, [results] + ([table] if table else []))
    finally:
        if table is not None:
            table.close()
    return ImageAnalysis(results.results, summary, list(predictor.model.classes))
