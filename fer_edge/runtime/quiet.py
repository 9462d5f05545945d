"""Silence for OpenCV's own log lines, which fer-edge replaces with one line of its own."""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

log = logging.getLogger("fer_edge")

#: Whether :class:`QuietOpenCV` may also point file descriptor 2 at /dev/null while it is held:
#: libjpeg and libpng print ``Premature end of JPEG file`` with ``fprintf(stderr)``, past
#: OpenCV's logging. Only a process that owns its stderr may do that (the CLI turns it on);
#: a library user's stderr is never touched.
silence_native_stderr = False


class QuietOpenCV:
    """Silence OpenCV's own multi-line warnings while probing a source; we report one line.

    FFmpeg logs through its own channel (``moov atom not found``, ``Connection refused``): its
    level is read from ``OPENCV_FFMPEG_LOGLEVEL`` when OpenCV first starts FFmpeg, so it is set
    to quiet (-8) for the process unless the user set it. Left alone when the ``fer_edge`` logger
    is at DEBUG (``-v``), where the details help.
    """

    # OpenCV's log level is one setting for the process: nested and concurrent users share one
    # silence, and the level the first one found is restored when the last one leaves.
    _lock = threading.Lock()
    _depth = 0
    _saved: Optional[int] = None
    _saved_fd: Optional[int] = None

    def __enter__(self) -> "QuietOpenCV":
        self._active = not log.isEnabledFor(logging.DEBUG)
        if not self._active:
            return self
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        cls = type(self)
        with cls._lock:
            cls._depth += 1
            if cls._depth == 1:
                cls._saved_fd = _point_stderr_at_devnull() if silence_native_stderr else None
                try:
                    import cv2

                    cls._saved = cv2.utils.logging.getLogLevel()
                    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
                except Exception:  # an OpenCV build without cv2.utils.logging
                    cls._saved = None
        return self

    def __exit__(self, *exc) -> None:
        if not self._active:
            return
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                if cls._saved_fd is not None:
                    _restore_stderr(cls._saved_fd)
                    cls._saved_fd = None
                if cls._saved is not None:
                    import cv2

                    cv2.utils.logging.setLogLevel(cls._saved)
                    cls._saved = None


def _point_stderr_at_devnull() -> Optional[int]:
    """A duplicate of fd 2 (to restore), with fd 2 now /dev/null; None where that fails."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        return saved
    except (OSError, ValueError, AttributeError):
        return None


def _restore_stderr(saved: int) -> None:
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)


__all__ = ["QuietOpenCV", "silence_native_stderr"]
