"""Where the webcam loop's frames come from: opening a source (camera, file, URL) and the capture thread.

What the user typed becomes a :class:`~.sources.SourceSpec` in :func:`.sources.resolve_source`
(the one source resolver); :func:`open_capture` opens a video, camera or stream with OpenCV (one-line errors, OpenCV's own warnings silenced), and :class:`FrameReader`
reads frames on their own thread so a slow model never stalls the camera driver: on cameras and
streams the newest frame wins, video files go frame by frame with back-pressure.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from ..errors import DeviceError, InputError
from .frames import (  # noqa: F401  (the endings are read from here too)
    END_EOF, END_INTERRUPTED, END_LOST, END_MAX_FRAMES, END_QUIT, END_TRUNCATED, Frame,
)
from .quiet import QuietOpenCV
from .sources import CAMERA, IMAGE_SEQUENCE, STREAM, VIDEO, SourceSpec, input_file_mode, require_kind

log = logging.getLogger("fer_edge")



class CaptureLike(Protocol):
    """What the loop needs from ``cv2.VideoCapture`` (tests inject their own)."""

    def read(self) -> tuple[bool, Optional[np.ndarray]]: ...

    def release(self) -> None: ...

    def get(self, prop: int) -> float: ...


# ---------------------------------------------------------------------------- opening
def open_capture(spec: SourceSpec, timeout_s: float = 10.0):
    """Open a video, camera or stream ``spec`` with OpenCV; raises DeviceError (camera, URL),
    InputError (file) or, for image sources, the one line of :func:`.sources.require_kind`."""
    require_kind(spec, VIDEO, CAMERA, STREAM)
    if spec.kind == VIDEO:
        p = Path(spec.capture_target)  # type: ignore[arg-type]
        if not IMAGE_SEQUENCE.search(p.name):  # what the system says (missing, not permitted), not OpenCV's guess
            input_file_mode(p, "video", spec.name, opencv_opens=True)  # a named pipe would block OpenCV for ever
            try:  # may we read it? (non-blocking: a named pipe's open does not wait for a writer)
                os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK))
            except OSError as exc:
                raise InputError(f"cannot read video {spec.name}: {exc.strerror or exc}") from None
    with QuietOpenCV():
        cap, opened = _open(spec, timeout_s) if spec.kind != STREAM else _open_interruptibly(spec, timeout_s)
    if not opened:
        if cap is not None:
            cap.release()
        if spec.kind == VIDEO:
            raise InputError(f"cannot open video {spec.name}: not a video, or a codec OpenCV cannot read")
        if spec.kind == CAMERA:
            raise DeviceError(f"cannot open {spec.name}: no such camera, or it is in use or not permitted")
        raise DeviceError(f"cannot open stream {spec.name}")
    return cap


def _open(spec: SourceSpec, timeout_s: float):
    import cv2

    cap = None
    target = spec.capture_target
    try:
        if spec.kind == STREAM:
            ms = int(timeout_s * 1000)
            try:
                cap = cv2.VideoCapture(
                    target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
                )
            except (cv2.error, TypeError, AttributeError):
                cap = cv2.VideoCapture(target)
        elif isinstance(target, str):
            cap = open_video_file(target)
        else:
            cap = cv2.VideoCapture(target)
        opened = cap.isOpened()
    except cv2.error:
        opened = False
    return cap, opened


def _open_interruptibly(spec: SourceSpec, timeout_s: float):
    """:func:`_open` on a thread of its own: FFmpeg's open of a stream that never answers blocks
    in C for up to ``timeout_s``, where Python runs no signal handler, so Ctrl-C and SIGTERM
    waited for it (7 s). The caller waits in short, interruptible steps instead; an abandoned
    open releases its capture when it ends."""
    result: list = []
    abandoned = threading.Event()

    def work() -> None:
        cap, opened = _open(spec, timeout_s)
        if abandoned.is_set():
            if cap is not None:
                cap.release()
            return
        result.append((cap, opened))

    t = threading.Thread(target=work, name="fer-edge-open", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(0.05)
    except BaseException:  # KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it)
        abandoned.set()
        raise
    return result[0] if result else (None, False)


def opencv_can_take(path: str) -> bool:
    """Whether OpenCV can be given ``path`` as it is. A name that is not valid UTF-8 (Python
    keeps its bytes as lone surrogates) makes OpenCV's Python binding crash the process."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_video_file(path: str):
    """``cv2.VideoCapture`` on a video file, whatever bytes its name holds.

    A name OpenCV cannot take is opened through a symbolic link with an ASCII name in a private
    temporary folder; FFmpeg holds the file open from then on, so the link is removed at once."""
    import tempfile

    import cv2

    if opencv_can_take(path):
        return cv2.VideoCapture(path)
    suffix = Path(path).suffix if opencv_can_take(Path(path).suffix) and Path(path).suffix.isascii() else ""
    folder = tempfile.mkdtemp(prefix="fer-edge-video-")
    link = os.path.join(folder, "video" + suffix)
    try:
        os.symlink(os.path.abspath(path), link)
        return cv2.VideoCapture(link)
    finally:
        if os.path.lexists(link):
            os.unlink(link)
        os.rmdir(folder)


# ---------------------------------------------------------------------------- capture thread
class FrameReader:
    """Reads frames on a daemon thread; ``get()`` hands them to the processing loop.

    ``policy="latest"``: one slot, a new frame replaces an unconsumed one (counted in
    ``dropped``). ``policy="all"``: a queue of ``queue_size`` frames; the reader waits
    when it is full, so every frame is processed and memory stays bounded.
    """

    def __init__(self, cap: CaptureLike, policy: str, live: bool, queue_size: int = 4, lost_after_s: float = 2.0):
        if policy not in ("latest", "all"):
            raise ValueError(f"frame policy must be 'latest' or 'all', got {policy!r}")
        self.cap = cap
        self.policy = policy
        self.live = live
        self.queue_size = max(1, queue_size) if policy == "all" else 1
        self.lost_after_s = lost_after_s
        self.captured = 0
        self.dropped = 0
        self.end: Optional[str] = None
        self.message: Optional[str] = None
        self._q: collections.deque[Frame] = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fer-edge-capture", daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> "FrameReader":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _finish(self, end: str, message: Optional[str] = None) -> None:
        with self._cv:
            if self.end is None:
                self.end, self.message = end, message
            self._cv.notify_all()

    def _media_time(self) -> Optional[float]:
        if self.live:
            return None
        try:
            import cv2

            ms = float(self.cap.get(cv2.CAP_PROP_POS_MSEC))
            return ms / 1000.0 if np.isfinite(ms) and ms >= 0 else None
        except Exception:
            return None

    def _run(self) -> None:
        last_ok = time.monotonic()
        try:
            while not self._stop:
                ok, img = self.cap.read()
                if not ok or img is None:
                    if not self.live:
                        self._finish(END_EOF)
                        return
                    if time.monotonic() - last_ok > self.lost_after_s:
                        self._finish(END_LOST, f"no frame for {self.lost_after_s:.1f}s after {self.captured} frames")
                        return
                    time.sleep(0.005)
                    continue
                last_ok = time.monotonic()
                t = self._media_time()
                frame = Frame(self.captured, t if t is not None else last_ok - self._t0, img)
                self.captured += 1
                with self._cv:
                    if self.policy == "latest":
                        self.dropped += len(self._q)
                        self._q.clear()
                    else:
                        while len(self._q) >= self.queue_size and not self._stop:
                            self._cv.wait(0.1)
                        if self._stop:
                            return
                    self._q.append(frame)
                    self._cv.notify_all()
        except Exception as exc:  # a driver or decoder error: the source is gone
            first = str(exc).strip().splitlines()
            self._finish(END_LOST, f"reading frames failed: {first[-1] if first else type(exc).__name__}")
        finally:
            with self._cv:
                if self.end is None:
                    self.end = END_INTERRUPTED if self._stop else END_EOF
                self._cv.notify_all()

    def get(self, timeout: float = 0.1) -> Optional[Frame]:
        """The next frame, or None when none arrived within ``timeout`` (check :attr:`done`)."""
        with self._cv:
            if not self._q and self.end is None:
                self._cv.wait(timeout)
            if self._q:
                frame = self._q.popleft()
                self._cv.notify_all()  # room in the queue
                return frame
            return None

    @property
    def done(self) -> bool:
        """The source has ended and every delivered frame has been taken."""
        with self._cv:
            return self.end is not None and not self._q

    def stop(self, join_timeout: float = 3.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(join_timeout)
        if not self._thread.is_alive():
            try:
                self.cap.release()
            except Exception:  # releasing a broken device must not hide the real outcome
                pass
        else:
            log.warning("fer-edge: the capture thread did not stop within %.0fs; leaving it to exit with the process", join_timeout)
