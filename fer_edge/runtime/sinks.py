"""Sinks of the pipeline (:mod:`.pipeline`): the annotated video and the JSONL events.

Every sink takes each frame's :class:`~.pipeline.FrameResult` in ``add(result)`` and finishes its
file in ``close()``. (The per-frame CSV and rows, and the timeline plot, are in :mod:`.timeline`,
beside the rows they share with the Python API; the table, the JSON document and the annotated
images of ``fer-edge infer`` in :mod:`fer_edge.cli.sinks`.) Outputs are checked before a camera
is opened (:func:`check_output_path`), so a run never ends on its first frame because a file
cannot be written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .. import jsonout
from ..atomic import LineFile, use_suffix


def _disk_full(path: Optional[Path]) -> bool:
    """Whether the file system holding ``path`` has no byte left for it (a cheap statvfs call)."""
    if path is None or not hasattr(os, "statvfs"):
        return False
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    root = hasattr(os, "geteuid") and os.geteuid() == 0  # root may write into the reserved blocks
    return (st.f_bfree if root else st.f_bavail) == 0


class VideoSink:
    """``cv2.VideoWriter`` opened on the first frame (its size is not known before).

    The writer fills a hidden temporary file beside ``path`` (same suffix, so the same
    container); :meth:`close` releases it, reopens it to check that it is a video with a
    readable frame, and only then renames it to ``path``. A full disk used to leave an MP4
    without its index (no ``moov`` atom, not one decodable frame) under the user's name with
    "video written" and exit 0; now nothing is left and :meth:`close` raises. The rename also
    replaces a symbolic link planted at ``path`` as a link, never writing through it.
    """

    def __init__(self, path: Path, fps: float, replace: bool = True, draw: bool = True):
        from ..errors import printable
        from .capture import opencv_can_take

        self.path = Path(path)
        if not opencv_can_take(str(self.path)):  # OpenCV's writer would crash the process on it
            raise InputError(f"cannot write video {printable(str(self.path))}: its name is not valid UTF-8, "
                             "which OpenCV's video writer cannot take; choose another name")
        self.fps = fps
        self.replace = replace
        self.draw = draw  # boxes and labels drawn (False: the frames as they came)
        self.frames = 0
        self._writer = None
        self._tmp: Optional[Path] = None

    def add(self, result) -> None:
        """Sink protocol: the frame (annotated, unless ``draw`` is off) as the next video frame."""
        if result.image is not None:
            self.write(result.annotated() if self.draw else result.image)

    def write(self, img: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = img.shape[:2]
            codec = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            from ..atomic import temp_beside

            self._tmp = temp_beside(self.path)
            writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*codec), float(self.fps), (w, h))
            if not writer.isOpened():  # check_output_path has ruled out the folder and the extension
                self._discard()
                raise InputError(f"cannot write video {self.path}: OpenCV's video writer cannot open it ({codec} codec)")
            self._writer = writer
        self._writer.write(img)
        self.frames += 1
        if _disk_full(self._tmp):  # OpenCV's writer says nothing but a warning per frame: stop at the first
            self._writer.release()
            self._writer = None
            self._discard()
            raise InputError(f"cannot write video {self.path}: No space left on device; nothing was left under that name")

    def close(self) -> None:
        """Finish the file and give it its name; InputError (nothing left) when it is not a video."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if not _readable_video(self._tmp):
            self._discard()
            raise InputError(f"cannot write video {self.path}: the file written has no readable frame "
                             "(a full disk?); nothing was left under that name")
        from ..atomic import finish

        try:
            finish(self._tmp, self.path, replace=self.replace)
        except FileExistsError:
            self._discard()
            raise InputError(f"not writing {self.path}: the file appeared during this run; nothing was replaced") from None
        except OSError as exc:
            self._discard()
            raise InputError(f"cannot write video {self.path}: {exc.strerror or exc}") from None
        self._tmp = None

    def _discard(self) -> None:
        if self._tmp is not None and os.path.lexists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None


def _readable_video(path: Optional[Path]) -> bool:
    """Whether ``path`` opens as a video and its first frame decodes."""
    import cv2

    from .quiet import QuietOpenCV

    if path is None or not path.is_file() or path.stat().st_size == 0:
        return False
    with QuietOpenCV():
        cap = cv2.VideoCapture(str(path))
        try:
            ok, _ = cap.read() if cap.isOpened() else (False, None)
        finally:
            cap.release()
    return bool(ok)


VIDEO_OUTPUT_SUFFIXES = (".mp4", ".avi")


def check_output_path(path: Optional[Path], what: str) -> None:
    """Fail before opening a camera when an output cannot be created, with the real reason.

    The output's folder is created when missing (as ``--save-annotated`` does), and the file
    is probed for writing, so a read-only or virtual folder (``/proc``) is reported as what it
    is rather than as a wrong extension when the video writer fails on the first frame.
    """
    if path is None:
        return
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"cannot write {what} {path}: it is a folder")
    if what == "video" and p.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
        raise InputError(f"cannot write video {path}: {use_suffix(VIDEO_OUTPUT_SUFFIXES)}")
    blocker = next((a for a in p.parents if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise InputError(f"cannot write {what} {path}: {blocker} is a file, not a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists():
            if not os.access(p, os.W_OK):
                raise PermissionError(13, "Permission denied")
        else:
            with open(p, "xb"):  # probe: create and remove again
                pass
            p.unlink()
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


class JsonlSink:
    """One JSON line per frame, flushed so a killed run keeps what it processed.

    A line is ``{"frame", "time", "faces"}``; with ``paths`` (a run over several files: ``fer-edge
    infer``) it starts with ``"path"``, an image's line has no frame or time, and a file that could
    not be read is a line with ``"error"``.
    """

    def __init__(self, path: Path, paths: bool = False, top_k: Optional[int] = None):
        self.path = Path(path)
        self.paths = paths
        self.top_k = top_k
        self._f = LineFile(self.path, "JSONL")  # a link replaced, not followed; whole lines only

    def add(self, result) -> None:
        frame = result.frame
        rec: dict = {"path": frame.path} if self.paths else {}
        if not frame.still:  # an image file has no frame index or time
            rec.update({"frame": frame.index, "time": round(frame.time_s, 4)})
        rec["faces"] = [x.to_dict(self.top_k) for x in result.faces]
        if frame.error is not None:
            rec["error"] = frame.error
        self._f.write(jsonout.dumps(rec) + "\n")  # flushed: a crash or kill -9 still leaves every processed frame

    def failed(self, path: str, error: str) -> None:
        """The line of an input that failed (a video that cannot be opened, or one that ended short of
        the frames it declares, after the lines of the frames it gave): ``{"path", "faces": [], "error"}``,
        as an unreadable image's."""
        self._f.write(jsonout.dumps({"path": path, "faces": [], "error": error}) + "\n")

    def close(self) -> None:
        self._f.close()
