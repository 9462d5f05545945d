"""`fer-edge infer`: expressions of the faces in images, folders, globs and video files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

from ..errors import printable
from .options import (
    add_annotated_options, add_detector_options, add_json_option, add_model_options, add_top_k_option,
    add_verbosity_options, build_predictor,
)
from .. import jsonout
from ..runtime.imagesize import MAX_PIXELS
from .argtypes import max_pixels
from .exitcodes import Exit, help_line

HELP = "classify facial expressions in images, folders, globs or video files"

#: The SOURCE that stands for one image read from standard input (``fer-edge infer - < photo.jpg``);
#: a file of that name is ``./-``.
STDIN = "-"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "infer", help=HELP,
        description=HELP + ". A video file is processed frame by frame as `fer-edge webcam --source FILE` does "
        "(detection every 2nd frame, tracking, smoothing; webcam has the options to change that); its table rows "
        "are named FILE#FRAME and its JSON is under \"videos\". Cameras and stream URLs: `fer-edge webcam`. "
        + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.PARTIAL, Exit.INTERRUPTED))
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="image files, folders (searched recursively), glob patterns (quote them: 'photos/*.jpg'), "
                   "video files (.mp4, .avi, .mov, .mkv, ...), or - for one image on standard input "
                   "(curl -s URL | fer-edge infer -)")
    add_model_options(p)
    add_detector_options(p)
    p.add_argument("--max-pixels", type=max_pixels, default=MAX_PIXELS, metavar="N",
                   help=f"refuse an image whose header declares more than N pixels, before decoding it "
                   f"(default {MAX_PIXELS:,}: a 2 MB file can declare 30000x30000 and take gigabytes); 0: no limit")
    o = p.add_argument_group("output")
    add_json_option(o, "one JSON document instead of the table")
    add_top_k_option(o)
    add_annotated_options(
        o, "write a copy of each image (and video) with boxes and labels drawn into DIR, under the input's name; "
        "refuses (exit 2, nothing written) when that would overwrite an input or a file already in DIR",
        "with --save-annotated: replace files already in DIR (from an earlier run); never an input")
    add_verbosity_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from .exitcodes import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL
    from .logs import setup_cli_logging
    from ..runtime.sources import IMAGES, VIDEO, SourceSpec, infer_inputs, require_kind, resolve_source

    setup_cli_logging(args.verbose, args.quiet)  # before the sources are searched: -v names the files skipped

    # what each SOURCE is, before the model loads: a camera or a URL is one line naming `webcam`;
    # standard input is read (and decoded) now too, so a bad one fails before the model loads
    specs = [SourceSpec(IMAGES, STDIN, (STDIN,)) if s == STDIN else
             require_kind(resolve_source(s, default=IMAGES), IMAGES, VIDEO) for s in args.sources]
    preloaded = {STDIN: read_stdin_image(args.max_pixels)} if STDIN in args.sources else {}
    sources = infer_inputs(specs)
    if len(sources) == 1 and sources[0].error is not None:  # an empty folder, a missing file: nothing to run
        raise InputError(sources[0].error)
    annotated_dir = _prepare_dir(args.save_annotated)
    if annotated_dir is not None:  # before the model loads: a re-run into the same folder costs nothing
        from .outputs import check_derived_outputs

        check_derived_outputs("--save-annotated", list(_annotated_targets(sources, annotated_dir).values()),
                              [s.path for s in sources], args.overwrite,
                              remedy=f"write next to the earlier run with another folder "
                              f"(--save-annotated {annotated_dir}-2)")
    predictor = build_predictor(args)
    video_predictor = None
    if any(s.kind == "video" for s in sources):
        video_predictor = _stream_predictor(predictor, args)
    return process(predictor, sources, json_out=args.json, top_k=args.top_k, annotated_dir=annotated_dir,
                   exit_codes=(EXIT_OK, EXIT_PARTIAL, EXIT_INPUT), overwrite=args.overwrite,
                   video_predictor=video_predictor, preloaded=preloaded)


def read_stdin_image(max_pixels: Optional[int] = MAX_PIXELS):
    """The image piped to standard input (``fer-edge infer -``), decoded; one line when there is
    none (a terminal: exit 2) or it is not an image (exit 3)."""
    from ..errors import UsageError
    from ..runtime.encoded import decode_image, read_binary

    stream = sys.stdin
    if stream is None or stream.isatty():
        raise UsageError("`infer -` reads an image from standard input, which is a terminal here: "
                         "pipe one in (fer-edge infer - < photo.jpg)")
    return decode_image(*read_binary(getattr(stream, "buffer", stream), "standard input"), max_pixels)


def _stream_predictor(predictor, args: argparse.Namespace):
    """The predictor `webcam` would build (its detector tuned for frames), sharing the loaded model."""
    from ..runtime.api import Predictor
    from ..runtime.detect import create_detector

    detector = "none" if args.no_detect else args.detector
    return Predictor(predictor.model, detector=create_detector(detector, args.detector_model, fast=True),
                     max_faces=predictor.max_faces, margin=predictor.margin, align=predictor.align,
                     max_pixels=predictor.max_pixels)


def process(predictor, sources, json_out: bool, top_k: int, annotated_dir: Optional[Path],
            exit_codes: tuple[int, int, int], overwrite: bool = False, video_predictor=None,
            preloaded: Optional[dict] = None) -> int:
    """Run ``predictor`` over ``sources``, print the table or JSON, return the exit code.

    Images go through :meth:`Predictor.process_path` (those in ``preloaded``, already decoded
    under the path they are listed by, e.g. standard input, through ``predict_image``), videos
    (``Source.kind == "video"``) through :func:`fer_edge.runtime.video.analyze` with
    ``video_predictor`` (default: ``predictor``). The annotated copies' names are all decided and
    checked before the first input is processed (:func:`.outputs.check_derived_outputs`): a run
    that would overwrite an input, or a file that was there before (without ``overwrite``), stops
    before it writes anything.
    """
    from ..errors import InputError
    import dataclasses

    from ..runtime.results import ImageResult
    from .outputs import AppearedDuringRun, check_derived_outputs
    from .wording import message

    targets = _annotated_targets(sources, annotated_dir) if annotated_dir is not None else {}
    check_derived_outputs("--save-annotated", list(targets.values()), [s.path for s in sources], overwrite)
    ok_code, partial_code, input_code = exit_codes
    table = None if json_out else _Table(sources, top_k)
    images: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    warnings: list[str] = []
    n_faces = image_faces = images_read = done = 0
    interrupted = False
    try:
        for src in sources:
            if src.kind == "video":
                video = _process_video(video_predictor or predictor, src.path, targets.get(src.path), top_k,
                                       overwrite)
                if video["error"] is not None:
                    errors.append({"path": src.path, "error": video["error"]})
                if video["summary"] is not None:
                    n_faces += video["summary"]["faces"]
                    if video["summary"]["warning"]:
                        warnings.append(f"{src.path}: {video['summary']['warning']}")
                if table is not None:
                    table.video(video)
                else:
                    videos.append(video)
                done += 1
                continue
            if src.error is not None:
                res = ImageResult(path=src.path, error=src.error)
            else:
                image = (preloaded or {}).get(src.path)
                res = predictor.process_path(src.path) if image is None else predictor.predict_image(image, path=src.path)
                if res.cause is not None:  # the library's error, in the CLI's words (its flags)
                    res = dataclasses.replace(res, error=message(res.cause))
                if res.ok and src.path in targets:
                    try:
                        _save_annotated(src.path, res, targets[src.path], overwrite, image)
                    except AppearedDuringRun as exc:  # another run writes there: skip this one, go on
                        warnings.append(f"{exc}; skipped")
                    except InputError as exc:  # the copy could not be written (a full disk): this input failed
                        errors.append({"path": src.path, "error": str(exc)})
            if not res.ok:
                errors.append({"path": res.path or "", "error": res.error or ""})
            else:
                images_read += 1
            n_faces += len(res.faces)
            image_faces += len(res.faces)
            if table is not None:
                table.row(res)
            else:
                images.append(res.to_dict(top_k))
            done += 1
    except KeyboardInterrupt:  # what is done is still reported: the table so far, or the JSON of it
        interrupted = True

    image_warning = no_face_warning(predictor.detector, images_read, image_faces)
    warning = "; ".join(([image_warning] if image_warning else []) + warnings) or None
    if json_out:
        doc = {
            "model": predictor.model.summary(),
            "detector": getattr(predictor.detector, "name", type(predictor.detector).__name__),
            "images": images,
            "videos": videos,
            "errors": errors,
            "summary": {"inputs": len(sources), "failed": len(errors), "faces": n_faces, "warning": warning,
                        **({"interrupted": True, "processed": done} if interrupted else {})},
        }
        jsonout.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif table is not None:
        table.footer(images_read, len(errors), n_faces)
    sys.stdout.flush()
    if image_warning:
        print(f"fer-edge: warning: {image_warning}", file=sys.stderr)
    for w in warnings:
        print(f"fer-edge: warning: {printable(w)}", file=sys.stderr)
    if interrupted:  # the CLI's handler then says "interrupted" and exits 130, as for any verb
        print(f"fer-edge: stopped after {done} of {len(sources)} inputs; the results above are theirs",
              file=sys.stderr)
        raise KeyboardInterrupt

    if not errors:
        return ok_code
    if len(errors) == 1 and len(sources) == 1:
        print(f"fer-edge: error: {printable(errors[0]['error'])}", file=sys.stderr)
        return input_code
    print(f"fer-edge: error: {len(errors)} of {len(sources)} inputs failed:", file=sys.stderr)
    for e in errors:
        print(f"  {printable(e['error'])}", file=sys.stderr)
    return input_code if len(errors) == len(sources) else partial_code


class _Frames:
    """Frame sink keeping every processed frame with its faces (frames without a face too)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, float, list]] = []

    def add(self, frame: int, time_s: float, faces) -> None:
        self.frames.append((frame, time_s, list(faces)))

    def close(self) -> None:
        pass


def _process_video(predictor, path: str, annotated: Optional[Path], top_k: int,
                   overwrite: bool = False) -> dict[str, Any]:
    """One video through the stream loop (:func:`fer_edge.runtime.video.analyze`): its JSON entry
    (``summary``: what ``fer-edge webcam --json`` prints; ``frames``: what its ``--jsonl`` writes,
    with ``top_k``), ``error`` set when it cannot be opened or ends short of the frames it declares."""
    from ..errors import InputError
    from ..runtime.capture import END_INTERRUPTED, END_TRUNCATED
    from ..runtime.video import analyze

    frames = _Frames()
    entry: dict[str, Any] = {"path": path, "error": None, "summary": None, "frames": []}
    try:
        # a derived output: a file that appears under its name during the run is kept (as for images)
        result = analyze(predictor, path, output=annotated, frame_sinks=[frames], output_replace=overwrite)
    except InputError as exc:  # missing, not a video, unreadable codec: like an unreadable image
        entry["error"] = str(exc)
        return entry
    summary = result.summary
    if summary.end == END_INTERRUPTED:
        raise KeyboardInterrupt
    entry["frames"] = [{"frame": i, "time": round(t, 4), "faces": [f.to_dict(top_k) for f in faces]}
                       for i, t, faces in frames.frames]
    from .exitcodes import for_ending
    from .wording import flag_words

    entry["summary"] = {**summary.to_dict(flag_words), "exit_code": int(for_ending(summary.end))}
    if summary.end == END_TRUNCATED:
        entry["error"] = f"{path}: {summary.message}"
    return entry


def no_face_warning(detector, images: int, faces: int) -> Optional[str]:
    """The warning for a run whose detector found no face in any of the ``images`` it read
    (None when a face was found, nothing was read, or there is no detector)."""
    from ..runtime.detect import describe, finds_faces, no_face_remedies
    from .wording import remedies

    if faces or not images or not finds_faces(detector):
        return None
    return (f"no face found in {'the image' if images == 1 else f'any of the {images} images'}, "
            f"looked for by {describe(detector)}. Try {remedies(no_face_remedies(detector))}.")


def _prepare_dir(path: Optional[str]) -> Optional[Path]:
    from ..errors import InputError

    if path is None:
        return None
    d = Path(path).expanduser()
    if d.exists() and not d.is_dir():
        raise InputError(f"--save-annotated must be a folder, {d} is a file")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {d}: {exc.strerror or exc}") from exc
    return d


ANNOTATED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _annotated_targets(sources, out_dir: Path) -> dict[str, Path]:
    """``out_dir/<input name>`` for each input (other image formats as ``.png``, videos other than
    ``.avi`` as ``.mp4``); the same name from different folders gets ``-2``, ``-3``, ... (compared
    without case, as macOS and Windows do)."""
    from ..runtime.sinks import VIDEO_OUTPUT_SUFFIXES

    used: set[str] = set()
    targets: dict[str, Path] = {}
    for src in sources:
        if src.error is not None or src.path in targets:
            continue
        p = Path("stdin.png" if src.path == STDIN else src.path)
        if src.kind == "video":
            ext = p.suffix.lower() if p.suffix.lower() in VIDEO_OUTPUT_SUFFIXES else ".mp4"
        else:
            ext = p.suffix.lower() if p.suffix.lower() in ANNOTATED_EXTENSIONS else ".png"
        name, i = f"{p.stem}{ext}", 2
        while name.lower() in used:
            name, i = f"{p.stem}-{i}{ext}", i + 1
        used.add(name.lower())
        targets[src.path] = out_dir / name
    return targets


def _save_annotated(path: str, res, target: Path, overwrite: bool, image=None) -> None:
    """Encode in memory and create the file exclusively (see :func:`.outputs.write_new_file`);
    ``image``: the input's pixels when they were read already (standard input), else ``path`` is read."""
    import cv2

    from ..errors import InputError
    from ..runtime.annotate import draw_faces
    from ..runtime.sources import read_image
    from .outputs import write_new_file

    img = draw_faces(read_image(path) if image is None else image, res.faces)
    ok, buf = cv2.imencode(target.suffix, img)
    if not ok:
        raise InputError(f"cannot encode {target}")
    write_new_file(target, buf.tobytes(), overwrite=overwrite)


class _Table:
    """Plain-text table printed row by row (so big folders show progress as they go)."""

    def __init__(self, sources, top_k: int):
        self.top_k = top_k
        self.videos = self.frames = 0
        widest = max((len(s.path) + (6 if s.kind == "video" else 0) for s in sources), default=4)
        self.w_path = min(max(4, widest), 60)
        head = f"{'path':<{self.w_path}}  {'face':>4}  {'box (x,y,w,h)':<19}  {'label':<9} {'score':>5}"
        if top_k > 1:
            head += f"  top-{top_k}"
        print(head)
        print("-" * len(head))

    def _p(self, path: Optional[str]) -> str:
        p = printable(path or "<array>")
        return p if len(p) <= self.w_path else "..." + p[-(self.w_path - 3):]

    def row(self, res) -> None:
        path = self._p(res.path)
        if not res.ok:
            print(f"{path:<{self.w_path}}  {'-':>4}  error: {printable(res.error)}")
        elif not res.faces:
            print(f"{path:<{self.w_path}}  {'-':>4}  no face found")
        for i, f in enumerate(res.faces, 1):
            self._face(path, i, f)

    def video(self, entry: dict[str, Any]) -> None:
        """A video's faces, one row per frame and face (``FILE#FRAME``; the face column is the track id)."""
        self.videos += 1
        path = self._p(entry["path"])
        if entry["summary"] is None:
            print(f"{path:<{self.w_path}}  {'-':>4}  error: {printable(entry['error'])}")
            return
        self.frames += entry["summary"]["frames"]
        for frame in entry["frames"]:
            named = self._p(f"{entry['path']}#{frame['frame']}")
            for i, f in enumerate(frame["faces"], 1):
                self._face(named, f.get("track_id", i), f)
        if not entry["summary"]["faces"]:
            print(f"{path:<{self.w_path}}  {'-':>4}  no face found in {entry['summary']['frames']} frames")
        if entry["error"] is not None:
            print(f"{path:<{self.w_path}}  {'-':>4}  error: {printable(entry['error'])}")

    def _face(self, path: str, i: int, f) -> None:
        """One face: a FaceResult, or its JSON dict (a video's frames are kept as JSON)."""
        if isinstance(f, dict):
            box, label, score = ",".join(str(v) for v in f["box"]), f["label"], f["score"]
            ranked = sorted(f["probabilities"].items(), key=lambda kv: kv[1], reverse=True)[: self.top_k]
        else:
            box, label, score, ranked = ",".join(str(v) for v in f.box), f.label, f.score, f.top_k(self.top_k)
        line = f"{path:<{self.w_path}}  {i:>4}  {box:<19}  {label:<9} {score:5.3f}"
        if self.top_k > 1:
            line += "  " + ", ".join(f"{c} {p:.2f}" for c, p in ranked)
        print(line)

    def footer(self, images: int, failed: int, faces: int) -> None:
        """``images``: the images read (a source that found none, or a file that is not an image, is
        among the ``failed``, not the images)."""
        videos = f", {self.videos} video(s) ({self.frames} frames)" if self.videos else ""
        print(f"{images} image(s){videos}, {faces} face(s), {failed} failed")
