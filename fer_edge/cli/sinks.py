"""The sinks only the CLI has: the table, the JSON document, the annotated image copies, and the
tally of what failed. Each takes the pipeline's :class:`~fer_edge.runtime.pipeline.FrameResult`
in ``add(result)``, as the library's sinks do (:mod:`fer_edge.runtime.sinks`,
:mod:`fer_edge.runtime.timeline`), so ``fer-edge infer`` runs images and videos through the one
loop and every output sees every frame.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError, printable
from .wording import message


def image_result(result):
    """A still frame as an :class:`~fer_edge.runtime.results.ImageResult`, its error in the CLI's words."""
    res = result.image_result()
    return dataclasses.replace(res, error=message(res.cause)) if res.cause is not None else res


class Tally:
    """What a run read and what failed, per input (``errors``: ``{"path", "error"}``, in order)."""

    def __init__(self) -> None:
        self.images_read = 0
        self.image_faces = 0
        self.faces = 0
        self.errors: list[dict[str, str]] = []
        self.warnings: list[str] = []

    def add(self, result) -> None:
        self.faces += len(result.faces)
        if result.frame.still:
            if result.ok:
                self.images_read += 1
                self.image_faces += len(result.faces)
            else:
                self.errors.append({"path": result.frame.path or "", "error": image_result(result).error or ""})

    def fail(self, path: str, error: str) -> None:
        self.errors.append({"path": path, "error": error})


class AnnotatedImages:
    """A copy of each image with its boxes and labels, under the name decided before the run
    (``targets``), written whole and never over a file that was there (unless ``overwrite``).
    A copy that cannot be written makes its input a failed one (``tally``); a name that another
    process takes during the run is a warning, and the batch goes on."""

    def __init__(self, targets: dict[str, Path], tally: Tally, overwrite: bool = False):
        self.targets = targets
        self.tally = tally
        self.overwrite = overwrite

    def add(self, result) -> None:
        import cv2

        from .outputs import AppearedDuringRun, write_new_file

        path = result.frame.path
        if not (result.frame.still and result.ok and path in self.targets):
            return
        target = self.targets[path]
        try:
            try:  # DIR/sub/ for an image found in photos/sub/
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create folder {target.parent}: {exc.strerror or exc}") from None
            ok, buf = cv2.imencode(target.suffix, result.annotated())
            if not ok:
                raise InputError(f"cannot encode {target}")
            write_new_file(target, buf.tobytes(), overwrite=self.overwrite)
        except AppearedDuringRun as exc:  # another run writes there: skip this one, go on
            self.tally.warnings.append(f"{exc}; skipped")
        except InputError as exc:  # the copy could not be written (a full disk): this input failed
            self.tally.fail(path, str(exc))


class VideoFrames:
    """One video's frames as ``infer --json`` lists them (what ``webcam --jsonl`` writes, with ``top_k``)."""

    def __init__(self, top_k: int):
        self.top_k = top_k
        self.frames: list[dict[str, Any]] = []

    def add(self, result) -> None:
        self.frames.append({"frame": result.frame.index, "time": round(result.frame.time_s, 4),
                            "faces": [f.to_dict(self.top_k) for f in result.faces]})


class JsonImages:
    """The ``"images"`` entries of ``infer --json``; ``annotated`` names each image's copy."""

    def __init__(self, top_k: int, annotated: Optional[dict[str, Path]] = None):
        self.top_k = top_k
        self.annotated = annotated or {}
        self.images: list[dict[str, Any]] = []

    def add(self, result) -> None:
        if not result.frame.still:
            return
        entry = image_result(result).to_dict(self.top_k)
        if result.frame.path in self.annotated:
            entry["annotated"] = str(self.annotated[result.frame.path])
        self.images.append(entry)


class Table:
    """Plain-text table printed row by row as frames come (so big folders show progress)."""

    def __init__(self, sources, top_k: int, out=None):
        self.top_k = top_k
        self.out = out or sys.stdout
        self.videos = self.frames = 0
        widest = max((len(s.path) + (6 if s.kind == "video" else 0) for s in sources), default=4)
        self.w_path = min(max(4, widest), 60)
        head = f"{'path':<{self.w_path}}  {'face':>4}  {'box (x,y,w,h)':<19}  {'label':<9} {'score':>5}"
        if top_k > 1:
            head += f"  top-{top_k}"
        self._print(head)
        self._print("-" * len(head))

    def _print(self, text: str) -> None:
        print(text, file=self.out)

    def _p(self, path: Optional[str]) -> str:
        p = printable(path or "<array>")
        return p if len(p) <= self.w_path else "..." + p[-(self.w_path - 3):]

    def add(self, result) -> None:
        if result.frame.still:
            self.row(image_result(result))
            return
        named = self._p(f"{result.frame.path}#{result.frame.index}")
        for i, f in enumerate(result.faces, 1):
            self._face(named, f.track_id if f.track_id is not None else i, f)

    def row(self, res) -> None:
        path = self._p(res.path)
        if not res.ok:
            self._print(f"{path:<{self.w_path}}  {'-':>4}  error: {printable(res.error)}")
        elif not res.faces:
            self._print(f"{path:<{self.w_path}}  {'-':>4}  no face found")
        for i, f in enumerate(res.faces, 1):
            self._face(path, i, f)

    def video_end(self, path: str, summary: Optional[dict[str, Any]], error: Optional[str]) -> None:
        """After a video's rows (``FILE#FRAME``, the face column its track id): none found, or its error."""
        self.videos += 1
        shown = self._p(path)
        if summary is None:
            self._print(f"{shown:<{self.w_path}}  {'-':>4}  error: {printable(error or '')}")
            return
        self.frames += summary["frames"]
        if not summary["faces"]:
            self._print(f"{shown:<{self.w_path}}  {'-':>4}  no face found in {summary['frames']} frames")
        if error is not None:
            self._print(f"{shown:<{self.w_path}}  {'-':>4}  error: {printable(error)}")

    def _face(self, path: str, i: int, f) -> None:
        box, ranked = ",".join(str(v) for v in f.box), f.top_k(self.top_k)
        line = f"{path:<{self.w_path}}  {i:>4}  {box:<19}  {f.label:<9} {f.score:5.3f}"
        if self.top_k > 1:
            line += "  " + ", ".join(f"{c} {p:.2f}" for c, p in ranked)
        self._print(line)

    def footer(self, images: int, failed: int, faces: int) -> None:
        """``images``: the images read (a source that found none, or a file that is not an image, is
        among the ``failed``, not the images)."""
        videos = f", {self.videos} video(s) ({self.frames} frames)" if self.videos else ""
        self._print(f"{images} image(s){videos}, {faces} face(s), {failed} failed")
