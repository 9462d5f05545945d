"""One loop for every source and every output: frames in, stages, sinks out.

- **Frames** come from a :class:`~.frames.FrameSource` (:func:`~.frames.open_source`): image
  files, a video file, a camera or a stream.
- **Stages** (:class:`Stages`, :class:`FrameStages`): detect, then follow, classify and smooth.
  Which run, and at what scale, is a setting: :data:`IMAGES` looks at every image on its own at
  full scale; :data:`VIDEO_FILE` detects at full scale every 2nd frame and follows faces in
  between (a file is not in a hurry); :data:`LIVE` detects at half scale to keep up with a camera.
- **Sinks** are told when the source is open (``open(source)``, optional), get every frame's
  :class:`FrameResult` through ``add(result)``, and are closed by whoever made them.
  A sink whose ``add`` returns :data:`STOP` ends the run (the window's q / Esc). The table, JSON,
  JSONL, CSV, annotated images, annotated video, the window and the timeline rows are all sinks
  (:mod:`.sinks`, :mod:`.timeline`, :mod:`fer_edge.cli.sinks`).

:func:`run` is the loop. Every way of ending (end of the source, ``max_frames``, a sink's
:data:`STOP`, Ctrl-C, a camera that stops delivering) leaves it through the same ``finally``:
the source is stopped and a :class:`StreamSummary` says what happened. Ctrl-C and SIGTERM are
caught by a handler that lets the current frame finish; a second Ctrl-C interrupts at once.
"""
from __future__ import annotations

import collections
import dataclasses
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import numpy as np

from ..errors import InputError
from ..remedy import Remedy, words
from .detect import describe, finds_faces, no_face_remedies, wants_gray
from .frames import END_EOF, END_INTERRUPTED, END_MAX_FRAMES, END_QUIT, END_TRUNCATED, Frame, FrameSource
from .results import FaceResult, ImageResult

#: Returned by a sink's ``add`` to end the run after this frame (the window: q / Esc).
STOP = "stop"
#: The range of ``detect_scale``: below 0.05 a 640x480 frame is 32x24 and no face is left.
DETECT_SCALE_RANGE = (0.05, 1.0)


def check_detect_scale(scale: Any, name: str = "detect_scale") -> float:
    """``scale`` as a float if it lies in :data:`DETECT_SCALE_RANGE` (not NaN), else InputError."""
    lo, hi = DETECT_SCALE_RANGE
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(scale, bool) or not lo <= value <= hi:
        raise InputError(f"{name} must be in [{lo:g}, {hi:g}], got {scale!r}")
    return value


def check_max_frames(max_frames: Any) -> Optional[int]:
    """``max_frames``: None (every frame) or a whole number of at least 1, else InputError."""
    if max_frames is None:
        return None
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise InputError(f"max_frames must be a whole number of at least 1 (or None for every frame), got {max_frames!r}")
    return int(max_frames)


@dataclass(frozen=True)
class Stages:
    """Which stages a frame goes through, and their settings (checked by :meth:`check`)."""

    detect_every: int = 1  # run the detector on every Nth frame (follow faces in between)
    detect_scale: float = 1.0  # run it on the frame resized by this factor
    track: bool = False  # give faces ids across frames, follow them between detections
    smooth: bool = False  # EMA of each tracked face's probabilities, so labels do not flicker
    alpha: float = 0.35  # EMA weight of the newest frame
    min_hits: int = 1  # detection rounds that must find a new face before it is reported

    def check(self) -> "Stages":
        if self.detect_every < 1:
            raise InputError(f"detect_every must be at least 1, got {self.detect_every}")
        check_detect_scale(self.detect_scale)
        if self.min_hits < 1:
            raise InputError(f"min_hits must be at least 1, got {self.min_hits}")
        if not 0.0 < self.alpha <= 1.0:
            raise InputError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.detect_every > 1 and not self.track:
            raise InputError("detect_every > 1 needs track=True: the frames in between are followed by the tracker")
        return self

    def replace(self, **changes: Any) -> "Stages":
        """These stages with some settings changed (None values are left as they are)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Image files: every image on its own, at full scale.
IMAGES = Stages()
#: A video file: full-scale detection every 2nd frame, tracking and smoothing in between.
VIDEO_FILE = Stages(detect_every=2, detect_scale=1.0, track=True, smooth=True, min_hits=2)
#: A camera or stream: the same at half scale, to keep up with the frames.
LIVE = Stages(detect_every=2, detect_scale=0.5, track=True, smooth=True, min_hits=2)


def stages_for(source: FrameSource) -> Stages:
    """The default stages of a source: :data:`LIVE`, :data:`VIDEO_FILE` or :data:`IMAGES`."""
    from .frames import ImageFrames

    if isinstance(source, ImageFrames):
        return IMAGES
    return LIVE if source.live else VIDEO_FILE


@dataclass(frozen=True)
class Drawing:
    """How annotated frames are drawn (for the window, the annotated video and images)."""

    fps: bool = False  # the processing frame rate in the corner
    track_ids: bool = False


@dataclass
class FrameResult:
    """One frame through the stages: its :class:`~.frames.Frame`, the pixels as prepared
    (BGR or gray; None when the frame could not be read, ``error`` then says why) and its faces."""

    frame: Frame
    image: Optional[np.ndarray]
    faces: list[FaceResult]
    fps: Optional[float] = None  # processing frames/s over the last frames
    drawing: Drawing = Drawing()
    _annotated: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.frame.error is None

    def annotated(self) -> np.ndarray:
        """The frame with boxes and labels drawn (drawn once, shared by every sink that wants it)."""
        if self._annotated is None:
            from .annotate import draw_faces

            if self.image is None:
                raise ValueError("a frame that could not be read has no picture")
            self._annotated = draw_faces(self.image, self.faces, fps=self.fps if self.drawing.fps else None,
                                         show_track_ids=self.drawing.track_ids)
        return self._annotated

    def image_result(self) -> ImageResult:
        """The frame as the :class:`~.results.ImageResult` the image API returns."""
        f = self.frame
        if self.image is None:
            return ImageResult(path=f.path, error=f.error, cause=f.cause)
        h, w = self.image.shape[:2]
        return ImageResult(path=f.path, width=w, height=h, faces=list(self.faces), error=f.error, cause=f.cause)


@dataclass
class StreamSummary:
    """What a run did: how it ended (``end``, one of ``frames.END_*``; ``message`` says why when it
    ended early) and what it saw."""

    source: str
    end: str = END_EOF
    frames: int = 0  # frames processed (images read)
    failed: int = 0  # frames that could not be read (image files)
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


class FrameStages:
    """The stages one source's frames go through, with their state (the tracker) and timings."""

    def __init__(self, predictor: Any, stages: Stages):
        from .tracking import FaceTracker

        self.predictor = predictor
        self.stages = stages.check()
        self.tracker = (FaceTracker(alpha=stages.alpha, smooth=stages.smooth, min_hits=stages.min_hits)
                        if stages.track else None)
        self._gray_detector = wants_gray(predictor.detector)
        self._n = 0
        self.total: dict[str, float] = collections.defaultdict(float)

    def run(self, img: np.ndarray) -> list[FaceResult]:
        """The faces of one prepared frame (BGR or gray, from ``as_bgr_or_gray``)."""
        p, st = self.predictor, self.stages
        t0 = time.perf_counter()
        if self.tracker is None:
            found = p.detect_prepared(img, scale=st.detect_scale)
            t1 = time.perf_counter()
            probs = p.classify_prepared(img, found.boxes, found.landmarks) if len(found.boxes) else None
            faces = p.faces_from(found.boxes, probs, scores=found.scores) if probs is not None else []
            stage = "detect"
        else:
            import cv2

            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
            if self._n % st.detect_every == 0:
                found = p.detect_prepared(gray if self._gray_detector else img, scale=st.detect_scale)
                ids, boxes = self.tracker.update(found.boxes, gray, found.landmarks, found.scores)
                stage = "detect"
            else:
                ids, boxes = self.tracker.follow(gray)
                stage = "follow"
            t1 = time.perf_counter()
            if len(boxes):  # boxes come from detection or the tracker: inside the frame already
                probs = self.tracker.smooth(ids, p.classify_prepared(img, boxes, self.tracker.landmarks_of(ids)))
            else:
                probs = np.zeros((0, len(p.model.classes)), dtype=np.float32)
            faces = p.faces_from(boxes, probs, ids, self.tracker.scores_of(ids))
        t2 = time.perf_counter()
        self._n += 1
        self.total[stage] += t1 - t0
        self.total[f"{stage}_frames"] += 1
        self.total["classify"] += t2 - t1
        return faces

    def stage_ms(self, frames: int) -> dict[str, float]:
        out = {}
        for stage in ("detect", "follow"):
            n = self.total.get(f"{stage}_frames", 0)
            if n:
                out[stage] = 1000 * self.total[stage] / n
        if frames:
            out["classify"] = 1000 * self.total.get("classify", 0.0) / frames
            out["draw_write"] = 1000 * self.total.get("draw_write", 0.0) / frames
        return out


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


def run(predictor: Any, source: FrameSource, stages: Optional[Stages] = None, sinks: Iterable[Any] = (),
        *, max_frames: Optional[int] = None, drawing: Drawing = Drawing()) -> StreamSummary:
    """Every frame of ``source`` through ``stages`` (default: :func:`stages_for` the source) into
    ``sinks``; see the module doc. The sinks are not closed here: whoever opened them closes them."""
    import cv2

    from .preprocess import as_bgr_or_gray

    max_frames = check_max_frames(max_frames)
    frame_stages = FrameStages(predictor, stages or stages_for(source))
    sinks = list(sinks)
    summary = StreamSummary(source=source.name)
    recent: collections.deque[float] = collections.deque(maxlen=30)
    t_start = time.perf_counter()
    try:
        with _StopSignals() as stop_signal:
            source.start()
            for sink in sinks:
                if hasattr(sink, "open"):
                    sink.open(source)
            while True:
                if stop_signal.hit:
                    summary.end = END_INTERRUPTED
                    break
                if max_frames is not None and summary.frames >= max_frames:
                    summary.end = END_MAX_FRAMES
                    break
                frame = source.get(0.1)
                if frame is None:
                    if source.done:
                        summary.end = source.end or END_EOF
                        summary.message = source.message
                        break
                    continue
                if frame.image is None:
                    result = FrameResult(frame, None, [], drawing=drawing)
                    summary.failed += 1
                else:
                    img = as_bgr_or_gray(frame.image)  # the one conversion; then the prepared path
                    try:
                        faces = frame_stages.run(img)
                    except (ValueError, cv2.error) as exc:  # an image OpenCV decoded but cannot process
                        frame = dataclasses.replace(frame, error=f"cannot process image {frame.path}: {exc}")
                        result = FrameResult(frame, None, [], drawing=drawing)
                        summary.failed += 1
                    else:
                        recent.append(time.perf_counter())
                        fps = ((len(recent) - 1) / (recent[-1] - recent[0])
                               if len(recent) > 1 and recent[-1] > recent[0] else None)
                        result = FrameResult(frame, img, faces, fps=fps, drawing=drawing)
                        summary.frames += 1
                        summary.faces += len(faces)
                        summary.frames_with_faces += bool(faces)
                t = time.perf_counter()
                stop = False
                for sink in sinks:
                    stop = sink.add(result) == STOP or stop
                frame_stages.total["draw_write"] += time.perf_counter() - t
                if stop:
                    summary.end = END_QUIT
                    break
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the loop's handler
        summary.end = END_INTERRUPTED
    finally:
        summary.duration_s = time.perf_counter() - t_start
        source.stop()
        summary.captured, summary.dropped = source.captured, source.dropped
        if summary.end == END_EOF and source.message:
            summary.message = source.message
    summary.stage_ms = frame_stages.stage_ms(summary.frames)
    _explain(summary, source, frame_stages)
    return summary


def no_face_in_images(detector: Any, images: int, scale: float = 1.0) -> tuple[Optional[str], list[Remedy]]:
    """The notice, and what to change, when ``detector`` found no face in any of ``images`` images
    read (None when none was read, or the detector cannot miss: ``none``)."""
    if not images or not finds_faces(detector):
        return None, []
    where = "the image" if images == 1 else f"any of the {images} images"
    return (f"no face found in {where}, looked for by {describe(detector, scale)}",
            no_face_remedies(detector, scale))


def _explain(summary: StreamSummary, source: FrameSource, frame_stages: FrameStages) -> None:
    """The notice of a run that saw no face (what was tried, what to change) and the ending of a
    video file that stopped short of the frames it declares."""
    from .frames import ImageFrames

    st, detector = frame_stages.stages, frame_stages.predictor.detector
    if isinstance(source, ImageFrames):
        if not summary.faces:
            summary.notice, summary.remedies = no_face_in_images(detector, summary.frames, st.detect_scale)
        return
    if summary.end == END_EOF and not summary.frames:
        summary.notice = "the video has no frames"
    elif summary.frames and not summary.frames_with_faces and finds_faces(detector):
        if st.track and summary.frames < st.min_hits * st.detect_every:  # too short for a face to be confirmed
            summary.remedies = [Remedy("min_hits", 1, f"a face is reported once it has been detected {st.min_hits} "
                                       f"times, and {summary.frames} frame(s) with detection every "
                                       f"{st.detect_every} allow fewer")]
        else:
            summary.remedies = no_face_remedies(detector, st.detect_scale)
        summary.notice = (f"no face found in any of the {summary.frames} frames, looked for by "
                          f"{describe(detector, st.detect_scale)} every {st.detect_every} frame(s)")
    # Containers state their frame count (MP4/AVI exactly, MKV/WebM as an estimate): a file
    # that ends clearly short of it is damaged, which the exit code should say.
    declared = source.declared_frames
    if summary.end == END_EOF and declared > 0 and summary.captured < declared - max(2, declared // 20):
        summary.end = END_TRUNCATED
        summary.message = (f"the video ended after {summary.captured} of its {declared} frames: "
                           "the file is truncated or damaged")
