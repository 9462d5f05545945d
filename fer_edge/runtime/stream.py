"""Webcam / video / network-stream mode: :func:`run_stream`, the pipeline (:mod:`.pipeline`)
over a video, camera or stream with the stream outputs (annotated video, JSONL, the window).

Frames are read on their own thread (:class:`~.capture.FrameReader`, through
:class:`~.frames.CaptureFrames`), so a slow model never stalls the camera driver. For cameras and
network streams the newest frame wins: a frame not yet picked up is replaced (and counted as
dropped), nothing queues without bound. Video files are processed frame by frame in order by
default (a bounded queue of a few frames with back-pressure), so the annotated video and the
JSONL cover every frame; ``frame_policy="latest"`` makes a file behave like a live source.

Detection runs every ``detect_every`` frames on the frame resized by ``detect_scale`` (by
default 1 for a video file, 0.5 for a camera or stream: :data:`.pipeline.VIDEO_FILE`,
:data:`.pipeline.LIVE`); in between, each face's box follows the face by template matching
(:mod:`.tracking`). The classifier runs on every frame, all faces in one batch, and the
per-track probabilities are smoothed with an EMA so labels do not flicker. Every way of ending
closes the outputs, so each is complete and readable.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .api import Predictor
from .capture import CaptureLike
from .frames import CaptureFrames
from .pipeline import (  # noqa: F401  (StreamSummary: what run_stream returns)
    LIVE, STOP, VIDEO_FILE, Drawing, FrameResult, Stages, StreamSummary, run,
)
from .sinks import JsonlSink, VideoSink, check_output_path
from .sources import SourceSpec
from ..errors import InputError

log = logging.getLogger("fer_edge")


@dataclass
class StreamOptions:
    """The settings of :func:`run_stream`. The stage settings left None take the source's
    defaults (:data:`.pipeline.VIDEO_FILE` for a file, :data:`.pipeline.LIVE` for a camera or stream)."""

    detect_every: Optional[int] = None  # run the face detector on every Nth frame, follow boxes in between
    detect_scale: Optional[float] = None  # detect on the frame resized by this factor
    smooth: Optional[bool] = None  # EMA smoothing of per-face probabilities
    alpha: Optional[float] = None  # EMA weight of the newest frame
    min_hits: Optional[int] = None  # detection rounds that must find a new face before it is reported
    max_frames: Optional[int] = None
    display: bool = False
    output: Optional[Path] = None  # annotated video (mp4v)
    output_replace: bool = True  # False: a file of that name that appears during the run is kept, not replaced
    jsonl: Optional[Path] = None  # one JSON line per processed frame
    frame_policy: str = "auto"  # "auto": files "all", cameras/streams "latest"
    draw: bool = True  # draw boxes and labels (for display and output)
    draw_fps: bool = True  # and the processing frame rate in the corner
    show_track_ids: bool = True
    lost_after_s: float = 2.0  # a live source with no frame for this long is lost
    queue_size: int = 4  # frames buffered for the "all" policy
    output_fps: Optional[float] = None  # default: the source's FPS, else 30
    # More sinks (timeline.CsvSink, timeline.FrameRows, ...): ``add(result)`` after every frame
    # (a :class:`~.pipeline.FrameResult`); whoever made them closes them.
    frame_sinks: list = field(default_factory=list)

    def stages(self, live: bool) -> Stages:
        """The stages for a live or a file source, with the settings given here."""
        return (LIVE if live else VIDEO_FILE).replace(detect_every=self.detect_every, detect_scale=self.detect_scale,
                                                      smooth=self.smooth, alpha=self.alpha, min_hits=self.min_hits)


def gui_available() -> bool:
    """Whether cv2.imshow can open a window here (no display on a headless Linux box)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# ---------------------------------------------------------------------------- the run
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
    opts = options or StreamOptions()
    for is_live in (False, True):  # the settings given are checked before anything opens
        opts.stages(is_live).check()
    check_output_path(opts.output, "video")
    check_output_path(opts.jsonl, "JSONL")
    frames = CaptureFrames(source, live=live, name=name, policy=opts.frame_policy, queue_size=opts.queue_size,
                           lost_after_s=opts.lost_after_s)
    out_fps = opts.output_fps or (frames.fps if 1.0 <= frames.fps <= 240.0 else 30.0)
    video = VideoSink(opts.output, out_fps, replace=opts.output_replace, draw=opts.draw) if opts.output else None
    jsonl = window = None
    summary: Optional[StreamSummary] = None
    try:
        jsonl = JsonlSink(opts.jsonl) if opts.jsonl else None
        window = Window(draw=opts.draw) if opts.display else None
        sinks = [s for s in (video, window, jsonl) if s is not None] + list(opts.frame_sinks)
        summary = run(predictor, frames, opts.stages(frames.live), sinks, max_frames=opts.max_frames,
                      drawing=Drawing(fps=opts.draw_fps, track_ids=opts.show_track_ids))
    finally:
        frames.stop()  # when a sink could not be opened, the capture is released all the same
        video_error = None
        if video is not None:
            try:
                video.close()
            except InputError as exc:  # the other outputs are still closed before this is raised
                video_error = exc
        for sink in (jsonl, window):  # the ones made here; frame_sinks are their owner's to close
            if sink is not None:
                sink.close()
        if video_error is not None:
            raise video_error
    if video is not None and video.frames:
        summary.output = str(opts.output)
    if jsonl is not None:
        summary.jsonl = str(opts.jsonl)
    return summary


class Window:
    """Sink: the annotated frames in a window (``cv2.imshow``); q, Esc or closing it ends the run.
    Where no window can open, it says so once and the run goes on without it."""

    NAME = "fer-edge"

    def __init__(self, draw: bool = True):
        self.draw = draw
        self.open = True

    def add(self, result: FrameResult) -> Optional[str]:
        import cv2

        if not self.open or result.image is None:
            return None
        try:
            cv2.imshow(self.NAME, result.annotated() if self.draw else result.image)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or cv2.getWindowProperty(self.NAME, cv2.WND_PROP_VISIBLE) < 1:
                return STOP
        except cv2.error as exc:
            log.warning("fer-edge: cannot open a window (%s); continuing without one", str(exc).strip().splitlines()[-1])
            self.open = False
        return None

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.NAME)
            cv2.waitKey(1)
        except cv2.error:
            pass
