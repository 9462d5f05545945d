"""Per-frame video results: one row per frame and face, as a list, a CSV file, a pandas
DataFrame and a timeline plot of each tracked face's expression probabilities.

The rows are what users of ``fer``'s ``Video.analyze`` reach for: a table they can filter,
aggregate and plot. :class:`FrameRows` collects them during :func:`~.stream.run_stream`
(it is a frame sink, like :class:`CsvSink`, which writes them as they come so a killed
run still leaves every processed frame on disk).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..errors import InputError, MissingDependencyError
from ..labels import CLASSES
from .results import FaceResult

PLOT_HINT = "pip install matplotlib (or the [eval] extra: pip install 'fer-edge[eval]')"


@dataclass(frozen=True)
class FrameFace:
    """One face in one frame: when, which track, where, and the expression probabilities."""

    frame: int  # 0-based index of the frame in the source
    time: float  # seconds: media time for files, since the start for live sources
    track_id: Optional[int]
    x: int
    y: int
    w: int
    h: int
    label: str
    score: float
    probabilities: dict[str, float]

    @classmethod
    def of(cls, frame: int, time_s: float, face: FaceResult) -> "FrameFace":
        x, y, w, h = (int(v) for v in face.box)
        return cls(frame, float(time_s), face.track_id, x, y, w, h, face.label, float(face.score),
                   dict(face.probabilities))

    def to_dict(self) -> dict[str, Any]:
        """Flat: the probabilities are columns named after the classes (what CSV and pandas want)."""
        d: dict[str, Any] = {"frame": self.frame, "time": round(self.time, 4), "track_id": self.track_id,
                             "x": self.x, "y": self.y, "w": self.w, "h": self.h,
                             "label": self.label, "score": round(self.score, 6)}
        d.update({c: round(float(p), 6) for c, p in self.probabilities.items()})
        return d


def columns(classes: Sequence[str] = CLASSES) -> list[str]:
    return ["frame", "time", "track_id", "x", "y", "w", "h", "label", "score", *classes]


class FrameRows:
    """Frame sink that keeps every row in memory (:attr:`rows`)."""

    def __init__(self) -> None:
        self.rows: list[FrameFace] = []

    def add(self, result) -> None:
        """Sink protocol (a :class:`~.pipeline.FrameResult`)."""
        self.rows.extend(FrameFace.of(result.frame.index, result.frame.time_s, f) for f in result.faces)

    def close(self) -> None:
        pass


class CsvSink:
    """Frame sink writing one CSV row per frame and face, flushed per frame.

    The probability columns follow the model's classes (``classes``); a frame without a
    face writes no row (the frame index jumps), as in ``fer``'s output.
    """

    def __init__(self, path: Union[str, Path], classes: Sequence[str] = CLASSES, paths: bool = False):
        self.path = Path(path)
        self.classes = list(classes)
        self.paths = paths  # a first "path" column (a run over several files: fer-edge infer)
        self.rows = 0
        self._f = None  # opened with the first frame: a source that never opens leaves no empty CSV
        self._w: Optional[csv.DictWriter] = None

    def _open(self) -> csv.DictWriter:
        if self._w is None:
            from ..atomic import LineFile

            self._f = LineFile(self.path, "CSV", newline="")  # a link replaced, not followed; whole rows only
            fields = (["path"] if self.paths else []) + columns(self.classes)
            self._buf = io.StringIO()
            self._w = csv.DictWriter(self._buf, fieldnames=fields, extrasaction="ignore")
            self._w.writeheader()
            self._flush()
        return self._w

    def _flush(self) -> None:
        """The rows formatted since the last call, written and flushed together (a frame's rows
        reach the file whole or, on a full disk, not at all)."""
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        self._f.write(text)

    def add(self, result) -> None:
        """Sink protocol (a :class:`~.pipeline.FrameResult`): a row per face, flushed."""
        w = self._open()
        frame = result.frame
        for f in result.faces:
            row = FrameFace.of(frame.index, frame.time_s, f).to_dict()
            if self.paths:
                row["path"] = frame.path
                if frame.still:
                    row.update(frame="", time="")  # an image file has no frame index or time
            w.writerow(row)
            self.rows += 1
        self._flush()

    def open(self, source=None) -> None:
        """Sink protocol: the source is open; the file is created with its header (so a run that
        processed frames without any face still leaves the header, and a source that never opened
        leaves no file)."""
        self._open()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def to_dataframe(rows: Sequence[FrameFace], classes: Sequence[str] = CLASSES):
    """The rows as a pandas DataFrame, one column per field and class (needs pandas)."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError("pandas is not installed; to_pandas() needs it: pip install pandas") from None
    return pd.DataFrame([r.to_dict() for r in rows], columns=columns(classes))


def require_matplotlib(needed_by: str = "the timeline plot") -> None:
    """Fail before a video is processed when the plot asked for cannot be drawn; ``needed_by``
    names what asked for it (the CLI: its flag)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"matplotlib is not installed; {needed_by} needs it: {PLOT_HINT}") from None


def check_plot_path(path: Union[str, Path], needed_by: str = "the timeline plot") -> Path:
    """Fail before a video is processed when the plot cannot be written: matplotlib missing,
    a suffix it has no writer for, a folder, or a folder that cannot be created (which is created
    when missing, as every output's is). Returns the path, ``~`` expanded."""
    require_matplotlib(needed_by)
    from ..atomic import figure_format
    from .sinks import check_output_path

    out = Path(path).expanduser()
    if not out.is_dir():
        figure_format(out)  # before check_output_path creates the folder
    check_output_path(out, "plot")
    return out


def _rgb(label: str) -> tuple[float, float, float]:
    """The class's annotation colour (BGR, for drawing on photos), darkened enough to read as a
    thin line on white: the light yellow of happy and grey of neutral would fade otherwise."""
    from .annotate import color_for

    b, g, r = color_for(label)
    luma = (0.299 * r + 0.587 * g + 0.114 * b) / 255
    k = min(1.0, 0.62 / luma) if luma > 0 else 1.0
    return (r * k / 255, g * k / 255, b * k / 255)


def plot_timeline(rows: Sequence[FrameFace], path: Union[str, Path], classes: Sequence[str] = CLASSES,
                  title: str = "", max_tracks: int = 4, dpi: int = 100) -> Path:
    """PNG of the expression probabilities of each tracked face over time.

    One panel per track (the ``max_tracks`` seen in the most frames, in order of first
    appearance), one line per class in the class's annotation colour, so the plot reads like
    the annotated video. A frame where the track is not seen leaves a gap, not a slope.
    """
    path = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    by_track: dict[Optional[int], list[FrameFace]] = {}
    for r in rows:
        by_track.setdefault(r.track_id, []).append(r)
    if not by_track:
        raise InputError("no face was found in the video: there is nothing to plot")
    tracks = sorted(by_track, key=lambda t: -len(by_track[t]))[:max_tracks]
    tracks.sort(key=lambda t: by_track[t][0].frame)
    t_end = max(r.time for r in rows)
    frame_dt = _typical_step(rows)

    fig, axes = plt.subplots(len(tracks), 1, figsize=(9, 1.1 + 1.9 * len(tracks)), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, track in zip(axes[:, 0], tracks):
        seq = sorted(by_track[track], key=lambda r: r.frame)
        times = [r.time for r in seq]
        for c in classes:
            ys = [r.probabilities.get(c, float("nan")) for r in seq]
            t_gap, y_gap = _with_gaps(times, ys, frame_dt)
            ax.plot(t_gap, y_gap, color=_rgb(c), linewidth=1.8, label=c)
        name = f"face #{track}" if track is not None else "face"
        top = max(classes, key=lambda c: sum(r.probabilities.get(c, 0.0) for r in seq))
        ax.set_title(f"{name}: {len(seq)} frames, mostly {top}", fontsize=10, loc="left")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(0, max(t_end, 1e-3))
        ax.set_ylabel("probability")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    try:  # under the panels (matplotlib >= 3.7); inside the figure's bottom edge before that
        fig.legend(handles, labels, loc="outside lower center", ncol=len(classes), fontsize=9, frameon=False)
    except ValueError:
        fig.legend(handles, labels, loc="lower center", ncol=len(classes), fontsize=9, frameon=False)
    from ..atomic import save_figure

    try:
        save_figure(fig, path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def _typical_step(rows: Sequence[FrameFace]) -> float:
    """Median time between consecutive frames (to tell a gap in a track from the frame rate)."""
    import numpy as np

    t = np.unique(np.array([r.time for r in rows], dtype=np.float64))
    return float(np.median(np.diff(t))) if len(t) > 1 else 0.0


def _with_gaps(times: list[float], ys: list[float], step: float) -> tuple[list[float], list[float]]:
    """Insert a NaN where a track was not seen for more than a few frames, so the line breaks."""
    if step <= 0:
        return times, ys
    t_out, y_out = [], []
    for i, (t, y) in enumerate(zip(times, ys)):
        if i and t - times[i - 1] > 3.5 * step:
            t_out.append((t + times[i - 1]) / 2)
            y_out.append(float("nan"))
        t_out.append(t)
        y_out.append(y)
    return t_out, y_out
