"""Webcam / video / network-stream mode: the detect-track-classify loop.

Frames come from :mod:`.capture` (sources and the capture thread); results go to :mod:`.sinks`
(video, JSONL) and :mod:`.timeline` (CSV, plot). This module is the loop between them.

Design:

- Frames are read on their own thread (:class:`FrameReader`), so a slow model never
  stalls the camera driver. For cameras and network streams the newest frame wins: a
  frame not yet picked up is replaced (and counted as dropped), nothing queues without
  bound. Video files are processed frame by frame in order by default (a bounded queue
  of a few frames with back-pressure), so the annotated video and the JSONL cover every
  frame; ``frame_policy="latest"`` makes a file behave like a live source.
- Detection runs every ``detect_every`` frames on a frame downscaled by ``detect_scale``;
  in between, each face's box follows the face by template matching
  (:mod:`.tracking`). The classifier runs on every frame, all faces in one batch, and the
  per-track probabilities are smoothed with an EMA so labels do not flicker.
- Every way of ending (end of file, ``max_frames``, ``q``/Esc in the window, Ctrl-C, a
  camera or stream that stops delivering frames) leaves the loop through the same
  ``finally``: the capture thread is stopped, the video writer and the JSONL file are
  closed (so both are complete and readable), and a :class:`StreamSummary` says what
  happened. Ctrl-C and SIGTERM are caught with a signal handler that lets the current frame
  finish; a second Ctrl-C interrupts at once.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from ..errors import InputError
from ..remedy import Remedy, words
from .annotate import draw_faces
from .detect import describe, finds_faces, no_face_remedies, wants_gray
from .api import Predictor
from .capture import (
    END_EOF, END_INTERRUPTED, END_LOST, END_MAX_FRAMES, END_QUIT, END_TRUNCATED, CaptureLike, FrameReader, open_capture,
)
from .preprocess import as_bgr_or_gray
from .sources import VIDEO, SourceSpec, resolve_source
from .sinks import VideoSink, check_output_path, write_jsonl
from .tracking import FaceTracker

log = logging.getLogger("fer_edge")

@dataclass
class StreamOptions:
    detect_every: int = 2  # run the face detector on every Nth frame, follow boxes in between
    detect_scale: float = 0.5  # detect on the frame resized by this factor
    smooth: bool = True  # EMA smoothing of per-face probabilities
    alpha: float = 0.35  # EMA weight of the newest frame
    min_hits: int = 2  # detection rounds that must find a new face before it is reported
    max_frames: Optional[int] = None
    display: bool = False
    output: Optional[Path] = None  # annotated video (mp4v)
    output_replace: bool = True  # False: a file of that name that appears during the run is kept, not replaced
    jsonl: Optional[Path] = None  # one JSON line per processed frame
    frame_policy: str = "auto"  # "auto": files "all", cameras/streams "latest"
    draw: bool = True  # draw boxes/labels/FPS (for display and output)
    show_track_ids: bool = True
    lost_after_s: float = 2.0  # a live source with no frame for this long is lost
    queue_size: int = 4  # frames buffered for the "all" policy
    output_fps: Optional[float] = None  # default: the source's FPS, else 30
    # Per-frame consumers (timeline.CsvSink, timeline.FrameRows, ...): ``add(frame_index,
    # time_s, faces)`` after every processed frame, ``close()`` on every way out.
    frame_sinks: list = field(default_factory=list)


@dataclass
class StreamSummary:
    source: str
    end: str = END_EOF
    frames: int = 0  # frames processed
    faces: int = 0  # faces classified, summed over frames
    frames_with_faces: int = 0
    captured: int = 0  # frames read from the source
    dropped: int = 0  # captured but replaced by a newer frame before processing
    duration_s: float = 0.0
    message: Optional[str] = None
    notice: Optional[str] = None  # e.g. no face found in any frame, and what was tried
    remedies: list[Remedy] = field(default_factory=list)  # what to change about it, by setting
    output: Optional[str] = None
    jsonl: Optional[str] = None
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean milliseconds per frame and stage

    def warning_words(self, name_of: Optional[Callable[[Remedy], Optional[str]]] = None) -> Optional[str]:
        """The notice and its remedies in one line; ``name_of`` words a remedy (the CLI: its flag),
        by default as the Python API's keyword."""
        if self.notice is None:
            return None
        return f"{self.notice}. Try {words(self.remedies, name_of)}." if self.remedies else self.notice

    @property
    def warning(self) -> Optional[str]:
        """:meth:`warning_words` in the Python API's words (``detect_scale=1``)."""
        return self.warning_words()

    @property
    def fps(self) -> float:
        return self.frames / self.duration_s if self.duration_s > 0 else 0.0

    def line(self) -> str:
        text = (
            f"{self.frames} frames, {self.faces} faces ({self.frames_with_faces} frames with a face), "
            f"{self.fps:.1f} FPS over {self.duration_s:.2f}s, ended: {self.end}"
        )
        if self.dropped:
            text += f", {self.dropped} frames dropped to stay live"
        return text

    def to_dict(self, name_of: Optional[Callable[[Remedy], Optional[str]]] = None) -> dict[str, Any]:
        """JSON-ready; ``name_of`` words the warning's remedies (see :meth:`warning_words`)."""
        return {
            "source": self.source,
            "end": self.end,
            "frames": self.frames,
            "faces": self.faces,
            "frames_with_faces": self.frames_with_faces,
            "captured": self.captured,
            "dropped": self.dropped,
            "duration_s": round(self.duration_s, 4),
            "fps": round(self.fps, 2),
            "message": self.message,
            "warning": self.warning_words(name_of),
            "output": self.output,
            "jsonl": self.jsonl,
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
        }


def gui_available() -> bool:
    """Whether cv2.imshow can open a window here (no display on a headless Linux box)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class _StopSignals:
    """Ctrl-C (SIGINT) or SIGTERM (``docker stop``, systemd) asks the loop to stop after the
    current frame, so the outputs are closed properly; a second Ctrl-C interrupts at once."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)

    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                try:
                    self._old[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._handle)
                except (OSError, ValueError):  # not settable on this platform
                    self._old.pop(sig, None)
        return self

    def _handle(self, signum, frame) -> None:
        if self.hit and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


# ---------------------------------------------------------------------------- the loop
def run_stream(
    predictor: Predictor,
    source: Union[int, str, Path, SourceSpec, CaptureLike],
    options: Optional[StreamOptions] = None,
    live: Optional[bool] = None,
    name: Optional[str] = None,
) -> StreamSummary:
    """Process a camera, video file, URL or capture object until it ends; see the module doc.

    ``source``: what the user typed (resolved by :func:`.sources.resolve_source`, a file of
    unknown type taken as a video), a :class:`~.sources.SourceSpec` already resolved, or an
    already open capture object (anything with ``read()``, ``release()`` and ``get()``);
    ``live`` then says whether it behaves like a camera.
    Opening failures raise (DeviceError / InputError); everything after the source is
    open ends in the returned summary, whose ``end`` tells how (``message`` says why).
    """
    import cv2

    opts = options or StreamOptions()
    if opts.min_hits < 1:
        raise InputError(f"StreamOptions.min_hits must be at least 1, got {opts.min_hits}")
    if opts.detect_every < 1:
        raise InputError(f"StreamOptions.detect_every must be at least 1, got {opts.detect_every}")
    if not 0.05 <= opts.detect_scale <= 1.0:
        raise InputError(f"StreamOptions.detect_scale must be in [0.05, 1], got {opts.detect_scale}")
    check_output_path(opts.output, "video")
    check_output_path(opts.jsonl, "JSONL")

    if hasattr(source, "read"):
        cap = source
        is_live = bool(live) if live is not None else True
        src_name = name or type(source).__name__
    else:
        spec = source if isinstance(source, SourceSpec) else resolve_source(source, default=VIDEO)  # type: ignore[arg-type]
        cap = open_capture(spec)
        is_live = spec.live if live is None else live
        src_name = name or spec.name

    policy = opts.frame_policy
    if policy == "auto":
        policy = "latest" if is_live else "all"
    try:
        src_fps = float(cap.get(cv2.CAP_PROP_FPS))
    except Exception:
        src_fps = 0.0
    out_fps = opts.output_fps or (src_fps if 1.0 <= src_fps <= 240.0 else 30.0)
    declared_frames = _declared_frames(cap) if not is_live else 0

    summary = StreamSummary(source=src_name)
    tracker = FaceTracker(alpha=opts.alpha, smooth=opts.smooth, min_hits=opts.min_hits)
    reader = FrameReader(cap, policy, live=is_live, queue_size=opts.queue_size, lost_after_s=opts.lost_after_s)
    video = VideoSink(opts.output, out_fps, replace=opts.output_replace) if opts.output else None
    jsonl = None
    display = opts.display
    window = "fer-edge"
    stage_total: dict[str, float] = collections.defaultdict(float)
    recent: collections.deque[float] = collections.deque(maxlen=30)
    t_start = time.perf_counter()
    try:
        if opts.jsonl:
            try:
                jsonl = open(opts.jsonl, "w", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot write JSONL {opts.jsonl}: {exc.strerror or exc}") from exc
        with _StopSignals() as stop_signal:
            reader.start()
            processed = 0
            quit_requested = False
            while True:
                if stop_signal.hit:
                    summary.end = END_INTERRUPTED
                    break
                if opts.max_frames is not None and processed >= opts.max_frames:
                    summary.end = END_MAX_FRAMES
                    break
                frame = reader.get(0.1)
                if frame is None:
                    if reader.done:
                        summary.end = reader.end or END_EOF
                        summary.message = reader.message
                        break
                    continue

                t0 = time.perf_counter()
                img = as_bgr_or_gray(frame.image)  # the one conversion; then the prepared path
                gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
                if processed % opts.detect_every == 0:
                    # Haar works on gray anyway (converting once serves detection and following)
                    det_in = gray if wants_gray(predictor.detector) else img
                    found = predictor.detect_prepared(det_in, scale=opts.detect_scale)
                    ids, boxes = tracker.update(found.boxes, gray, found.landmarks, found.scores)
                    stage = "detect"
                else:
                    ids, boxes = tracker.follow(gray)
                    stage = "follow"
                t1 = time.perf_counter()
                if len(boxes):
                    # boxes come from detection or the tracker: inside the frame already
                    probs = tracker.smooth(ids, predictor.classify_prepared(img, boxes, tracker.landmarks_of(ids)))
                else:
                    probs = np.zeros((0, len(predictor.model.classes)), dtype=np.float32)
                faces = predictor.faces_from(boxes, probs, ids, tracker.scores_of(ids))
                t2 = time.perf_counter()

                recent.append(t2)
                fps_now = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else None
                if video is not None or display:
                    shown = draw_faces(img, faces, fps=fps_now, show_track_ids=opts.show_track_ids) if opts.draw else img
                    if video is not None:
                        video.write(shown)
                    if display:
                        shown_ok = _show(window, shown)
                        if shown_ok is None:  # the user pressed q/Esc or closed the window
                            quit_requested = True
                        else:
                            display = shown_ok
                t3 = time.perf_counter()
                write_jsonl(jsonl, frame, faces)
                for sink in opts.frame_sinks:
                    sink.add(frame.index, frame.time_s, faces)
                _count(summary, faces)
                processed += 1
                stage_total[stage] += t1 - t0
                stage_total["classify"] += t2 - t1
                stage_total["draw_write"] += t3 - t2
                stage_total[f"{stage}_frames"] += 1
                if quit_requested:
                    summary.end = END_QUIT
                    break
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main loop's handler
        summary.end = END_INTERRUPTED
    finally:
        summary.duration_s = time.perf_counter() - t_start
        reader.stop()
        summary.captured, summary.dropped = reader.captured, reader.dropped
        if summary.end == END_EOF and reader.message:
            summary.message = reader.message
        video_error = None
        if video is not None:
            try:
                video.close()
                summary.output = str(opts.output) if video.frames else None
            except InputError as exc:  # the other outputs are still closed before this is raised
                video_error = exc
        if jsonl is not None:
            jsonl.close()
            summary.jsonl = str(opts.jsonl)
        for sink in opts.frame_sinks:
            sink.close()
        if video_error is not None:
            raise video_error
        if opts.display:
            try:
                cv2.destroyWindow(window)
                cv2.waitKey(1)
            except cv2.error:
                pass
    summary.stage_ms = _stage_ms(stage_total, summary.frames)
    if summary.end == END_EOF and not summary.frames:
        summary.notice = "the video has no frames"
    elif summary.frames and not summary.frames_with_faces and finds_faces(predictor.detector):
        if summary.frames < opts.min_hits * opts.detect_every:  # too short for a face to be confirmed
            summary.remedies = [Remedy("min_hits", 1, f"a face is reported once it has been detected {opts.min_hits} "
                                       f"times, and {summary.frames} frame(s) with detection every "
                                       f"{opts.detect_every} allow fewer")]
        else:
            summary.remedies = no_face_remedies(predictor.detector, opts.detect_scale)
        summary.notice = (f"no face found in any of the {summary.frames} frames, looked for by "
                          f"{describe(predictor.detector, opts.detect_scale)} every {opts.detect_every} frame(s)")
    # Containers state their frame count (MP4/AVI exactly, MKV/WebM as an estimate): a file
    # that ends clearly short of it is damaged, which the exit code should say.
    if summary.end == END_EOF and declared_frames > 0 and summary.captured < declared_frames - max(2, declared_frames // 20):
        summary.end = END_TRUNCATED
        summary.message = f"the video ended after {summary.captured} of its {declared_frames} frames: the file is truncated or damaged"
    return summary


def _show(window: str, img: np.ndarray) -> Optional[bool]:
    """Show a frame; False disables display (no GUI), None means the user asked to quit."""
    import cv2

    try:
        cv2.imshow(window, img)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return None
        if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:
            return None
    except cv2.error as exc:
        log.warning("fer-edge: cannot open a window (%s); continuing without one", str(exc).strip().splitlines()[-1])
        return False
    return True


def _count(summary: StreamSummary, faces: list) -> None:
    summary.frames += 1
    summary.faces += len(faces)
    summary.frames_with_faces += bool(faces)


def _stage_ms(total: dict[str, float], frames: int) -> dict[str, float]:
    out = {}
    for stage in ("detect", "follow"):
        n = total.get(f"{stage}_frames", 0)
        if n:
            out[stage] = 1000 * total[stage] / n
    if frames:
        out["classify"] = 1000 * total.get("classify", 0.0) / frames
        out["draw_write"] = 1000 * total.get("draw_write", 0.0) / frames
    return out


def _declared_frames(cap: Any) -> int:
    """The frame count a video file declares (0 when unknown)."""
    import cv2

    try:
        n = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    except Exception:
        return 0
    return int(n) if np.isfinite(n) and n > 0 else 0
