"""Silence for OpenCV's own log lines, which fer-edge replaces with one line of its own."""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

log = logging.getLogger("fer_edge")


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

    def __enter__(self) -> "QuietOpenCV":
        self._active = not log.isEnabledFor(logging.DEBUG)
        if not self._active:
            return self
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        cls = type(self)
        with cls._lock:
            cls._depth += 1
            if cls._depth == 1:
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
            if cls._depth == 0 and cls._saved is not None:
                import cv2

                cv2.utils.logging.setLogLevel(cls._saved)
                cls._saved = None


__all__ = ["QuietOpenCV"]
