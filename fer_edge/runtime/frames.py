"""Sources as frames: :func:`open_source` turns an image, a folder, a glob, a video file, a camera
or a stream into one kind of thing, a :class:`FrameSource` that hands out :class:`Frame` objects
(pixels, the file they came from, their index, their time).

The pipeline (:mod:`.pipeline`) runs on that interface alone, so ``fer-edge infer photos/`` and
``fer-edge webcam`` are the same loop over different frames:

- :class:`ImageFrames`: image files, read and decoded one by one in the loop's own thread (an
  image that cannot be read is a frame with ``error`` set, and the loop goes on);
- :class:`CaptureFrames`: a video, camera or stream, read on the capture thread of
  :class:`~.capture.FrameReader` (live sources drop stale frames, files go frame by frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from ..errors import FerEdgeError

# How a source ended (StreamSummary.end; the CLI maps each to an exit code: cli/exitcodes.py).
END_EOF = "eof"  # a video file ended, or the last image was read
END_MAX_FRAMES = "max_frames"
END_QUIT = "quit"  # q / Esc in the display window
END_INTERRUPTED = "interrupted"  # Ctrl-C / SIGINT / SIGTERM
END_LOST = "lost"  # a camera or stream stopped delivering frames
END_TRUNCATED = "truncated"  # a video file ended well before the frame count it declares


@dataclass
class Frame:
    """One frame: ``image`` its pixels (None when it could not be read: ``error`` says why, ``cause``
    is the library's error); ``path`` the file it came from (None for a camera or stream)."""

    index: int  # 0-based index among the source's frames (0 for each image file)
    time_s: float  # media time for files, seconds since start for live sources, 0 for images
    image: Optional[np.ndarray]
    path: Optional[str] = None
    error: Optional[str] = None
    cause: Optional[Exception] = None
    still: bool = False  # an image file: it has no frame index or time of its own


class FrameSource(Protocol):
    """What the pipeline reads frames from (:class:`ImageFrames`, :class:`CaptureFrames`)."""

    name: str  # what the user typed, for messages
    live: bool  # a camera or stream: frames may be dropped to stay current
    fps: float  # the source's frame rate (0: unknown)
    declared_frames: int  # the frame count a video file states (0: unknown)
    captured: int
    dropped: int
    end: Optional[str]  # how the source ended (one of capture.END_*), None while it runs
    message: Optional[str]

    def start(self) -> Any: ...

    def get(self, timeout: float = 0.1) -> Optional[Frame]: ...

    @property
    def done(self) -> bool: ...

    def stop(self) -> None: ...


class ImageFrames:
    """Image files as frames, in order; each decoded when the loop asks for it (at most
    ``max_pixels`` pixels, see :mod:`.imagesize`). ``preloaded``: images already decoded, by the
    path they are listed under (standard input); ``errors``: entries that are a failure already,
    by the name they are listed under (a folder without images)."""

    live = False
    fps = 0.0
    declared_frames = 0
    dropped = 0

    def __init__(self, paths: Sequence[str], max_pixels: Optional[int] = None,
                 preloaded: Optional[Mapping[str, np.ndarray]] = None, name: str = "images",
                 errors: Optional[Mapping[str, str]] = None):
        from .imagesize import MAX_PIXELS

        self.paths = list(paths)
        self.max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
        self.preloaded = dict(preloaded or {})
        self.errors = dict(errors or {})  # sources known to have failed already (a folder without images)
        self.name = name
        self.captured = 0
        self.end: Optional[str] = None
        self.message: Optional[str] = None

    def start(self) -> "ImageFrames":
        return self

    def get(self, timeout: float = 0.1) -> Optional[Frame]:
        if self.captured >= len(self.paths):
            self.end = END_EOF
            return None
        path = self.paths[self.captured]
        self.captured += 1
        if path in self.errors:
            return Frame(0, 0.0, None, path, error=self.errors[path], still=True)
        image = self.preloaded.get(path)
        if image is not None:
            return Frame(0, 0.0, image, path, still=True)
        from .sources import read_image

        try:
            return Frame(0, 0.0, read_image(path, self.max_pixels), path, still=True)
        except FerEdgeError as exc:
            return Frame(0, 0.0, None, path, error=str(exc), cause=exc, still=True)

    @property
    def done(self) -> bool:
        return self.captured >= len(self.paths)

    def stop(self) -> None:
        if self.end is None:
            self.end = END_EOF


class CaptureFrames:
    """A video file, camera or stream (or an open capture object, anything with ``read()``,
    ``release()`` and ``get()``) as frames, read on :class:`~.capture.FrameReader`'s thread.

    ``policy``: ``"latest"`` (live: the newest frame wins), ``"all"`` (every frame, in order) or
    ``"auto"`` (all for files, latest for cameras and streams).
    """

    def __init__(self, source: Any, *, live: Optional[bool] = None, name: Optional[str] = None,
                 policy: str = "auto", queue_size: int = 4, lost_after_s: float = 2.0):
        import cv2

        from .capture import FrameReader, open_capture
        from .sources import VIDEO, SourceSpec, resolve_source

        if hasattr(source, "read"):
            cap, is_live, self.name, self.path = source, True if live is None else bool(live), \
                name or type(source).__name__, None
        else:
            spec = source if isinstance(source, SourceSpec) else resolve_source(source, default=VIDEO)
            cap = open_capture(spec)
            is_live = spec.live if live is None else live
            self.name = name or spec.name
            self.path = spec.paths[0] if spec.kind == VIDEO and spec.paths else None
        self.live = is_live
        try:
            self.fps = float(cap.get(cv2.CAP_PROP_FPS))
        except Exception:
            self.fps = 0.0
        self.declared_frames = 0 if is_live else _declared_frames(cap)
        if policy == "auto":
            policy = "latest" if is_live else "all"
        self._reader = FrameReader(cap, policy, live=is_live, queue_size=queue_size, lost_after_s=lost_after_s)
        self._stopped = False

    def start(self) -> "CaptureFrames":
        self._reader.start()
        return self

    def get(self, timeout: float = 0.1) -> Optional[Frame]:
        frame = self._reader.get(timeout)
        if frame is not None:
            frame.path = self.path
        return frame

    @property
    def done(self) -> bool:
        return self._reader.done

    def stop(self) -> None:
        if not self._stopped:  # once: the capture is released once
            self._stopped = True
            self._reader.stop()

    captured = property(lambda self: self._reader.captured)
    dropped = property(lambda self: self._reader.dropped)
    end = property(lambda self: self._reader.end)
    message = property(lambda self: self._reader.message)


def open_source(source: Union[str, Any], *, max_pixels: Optional[int] = None, default: str = "video",
                **capture_options: Any) -> FrameSource:
    """Frames from whatever the user named: an image, a folder or a glob of images
    (:class:`ImageFrames`), a video file, a camera index or a stream URL (:class:`CaptureFrames`),
    or a :class:`~.sources.SourceSpec` already resolved. ``default``: the kind of a file whose
    name says neither (``"video"`` or ``"images"``). ``capture_options`` go to :class:`CaptureFrames`."""
    from ..errors import InputError
    from .sources import IMAGES, SourceSpec, resolve_source

    if hasattr(source, "read"):
        return CaptureFrames(source, **capture_options)
    spec = source if isinstance(source, SourceSpec) else resolve_source(source, default=default)
    if spec.kind == IMAGES:
        if spec.error is not None:
            raise InputError(spec.error)
        return ImageFrames(spec.paths, max_pixels, name=spec.text)
    return CaptureFrames(spec, **capture_options)


def _declared_frames(cap: Any) -> int:
    """The frame count a video file declares (0 when unknown)."""
    import cv2

    try:
        n = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    except Exception:
        return 0
    return int(n) if np.isfinite(n) and n > 0 else 0
