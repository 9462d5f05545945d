"""``fer_edge.analyze_video``: a whole video (or a number of camera frames) in one call.

What ``fer``'s ``Video.analyze`` gives its users, on the same loop as ``fer-edge webcam``
(detection every few frames, tracking, smoothing): one :class:`~.timeline.FrameFace` per
frame and face, as a list, a pandas DataFrame or a timeline plot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from .results import FaceResult  # noqa: F401  (re-exported for type hints in docs)
from .sources import SourceSpec
from .stream import StreamOptions, StreamSummary, run_stream
from .timeline import CsvSink, FrameFace, FrameRows, plot_timeline, to_dataframe


@dataclass
class VideoAnalysis:
    """Rows of a processed video and how the run went (:attr:`summary`: frames, FPS, ending)."""

    rows: list[FrameFace]
    summary: StreamSummary
    classes: list[str] = field(default_factory=list)

    def to_pandas(self):
        """One DataFrame row per frame and face; columns frame, time, track_id, x, y, w, h,
        label, score and one per class (needs pandas)."""
        return to_dataframe(self.rows, self.classes)

    def plot(self, path: Union[str, Path], title: str = "") -> Path:
        """The timeline PNG of ``fer-edge webcam --plot`` (needs matplotlib)."""
        return plot_timeline(self.rows, path, self.classes, title=title)

    def tracks(self) -> dict[Optional[int], list[FrameFace]]:
        """Rows grouped by track id, in frame order."""
        out: dict[Optional[int], list[FrameFace]] = {}
        for r in self.rows:
            out.setdefault(r.track_id, []).append(r)
        return out


def analyze_video(
    source: Union[str, Path, int],
    model=None,
    *,
    detector: Optional[str] = None,
    detector_model: Optional[Union[str, Path]] = None,
    max_faces: Optional[int] = None,
    device: str = "auto",
    max_frames: Optional[int] = None,
    detect_every: Optional[int] = None,
    detect_scale: Optional[float] = None,
    smooth: Optional[bool] = None,
    csv: Optional[Union[str, Path]] = None,
    output: Optional[Union[str, Path]] = None,
) -> VideoAnalysis:
    """Expressions of every face in every frame of ``source`` (a video file, a camera index or a
    stream URL; ``max_frames`` bounds a live source).

    ``model`` is a path, a :class:`~.model.FerModel`, ``"default"`` or None (the packaged
    model); ``detector`` a detector name as for :class:`~.api.Predictor` (None: its default).
    ``csv`` and ``output`` also write the per-frame CSV and the annotated video. The stage
    settings left None take the source's defaults: a video file is detected at full scale every 2nd
    frame (:data:`.pipeline.VIDEO_FILE`), a camera or stream at half scale with the detector's fast
    settings (:data:`.pipeline.LIVE`). Raises the
    errors of ``fer-edge webcam`` (``InputError`` for an unreadable video, ...); a run that
    ends early (a lost camera, a truncated file) returns what it processed, and
    ``summary.end`` / ``summary.message`` say why.

    >>> result = fer_edge.analyze_video("clip.mp4")
    >>> df = result.to_pandas()                  # needs pandas
    >>> df.groupby("track_id")["happy"].mean()
    """
    from .api import Predictor
    from .detect import create_detector
    from .sources import VIDEO, resolve_source

    spec = source if isinstance(source, SourceSpec) else resolve_source(source, default=VIDEO)
    kwargs = {} if detector is None else {"detector": create_detector(detector, detector_model, fast=spec.live)}
    predictor = Predictor(model, max_faces=max_faces, device=device, **kwargs)
    return analyze(predictor, spec, max_frames=max_frames, detect_every=detect_every, detect_scale=detect_scale,
                   smooth=smooth, csv=csv, output=output)


def analyze(
    predictor,
    source: Union[str, Path, int, SourceSpec],
    *,
    max_frames: Optional[int] = None,
    detect_every: Optional[int] = None,
    detect_scale: Optional[float] = None,
    smooth: Optional[bool] = None,
    csv: Optional[Union[str, Path]] = None,
    output: Optional[Union[str, Path]] = None,
    frame_sinks: Sequence = (),
    output_replace: bool = True,
    draw_fps: bool = False,
) -> VideoAnalysis:
    """:func:`analyze_video` with a :class:`~.api.Predictor` already built (``fer-edge infer``
    on a video shares the one it uses for images). ``frame_sinks``: more sinks (``add(result)`` /
    ``close()``, see :class:`~.stream.StreamOptions`); ``output_replace=False``: a file named
    ``output`` that appears during the run is kept; ``draw_fps``: the processing frame rate drawn
    into ``output`` (off: it says nothing about an offline file)."""
    from ..samefile import refuse_overwriting_inputs
    from .pipeline import check_max_frames

    max_frames = check_max_frames(max_frames)  # before any output is opened
    src = source.paths[0] if isinstance(source, SourceSpec) and source.paths else source
    refuse_overwriting_inputs({"output": output, "csv": csv}, [src, getattr(predictor.model, "path", None)])
    classes = list(predictor.model.classes)
    rows = FrameRows()
    opts = StreamOptions(detect_every=detect_every, detect_scale=detect_scale, smooth=smooth, max_frames=max_frames,
                         output=Path(output) if output else None, output_replace=output_replace,
                         frame_sinks=[rows, *frame_sinks], draw_fps=draw_fps)
    table = CsvSink(Path(csv), classes) if csv else None
    if table is not None:
        opts.frame_sinks.append(table)
    try:
        summary = run_stream(predictor, source, opts)
    finally:
        if table is not None:
            table.close()
    return VideoAnalysis(rows=rows.rows, summary=summary, classes=classes)
