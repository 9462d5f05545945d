"""`fer-edge infer`: expressions of the faces in images, folders, globs and video files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

from ..errors import printable
from .options import (
    add_annotated_options, add_detect_scale_option, add_detector_options, add_json_option, add_model_options,
    add_table_options, add_top_k_option, add_verbosity_options, build_predictor,
)
from ..runtime.pipeline import IMAGES, VIDEO_FILE
from .. import jsonout
from ..runtime.imagesize import MAX_PIXELS
from .argtypes import max_pixels, non_empty
from .exitcodes import Exit, help_line

HELP = "classify facial expressions in images, folders, globs or video files"

#: The SOURCE that stands for one image read from standard input (``fer-edge infer - < photo.jpg``);
#: a file of that name is ``./-``.
STDIN = "-"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "infer", help=HELP,
        description=HELP + ". A video file is processed frame by frame as `fer-edge webcam --source FILE` does "
        f"(full-scale detection every {VIDEO_FILE.detect_every} frames, tracking, smoothing; webcam has the options "
        "to change that); its table rows "
        "are named FILE#FRAME and its JSON is under \"videos\". Cameras and stream URLs: `fer-edge webcam`. "
        + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.PARTIAL, Exit.INTERRUPTED))
    p.add_argument("sources", nargs="+", metavar="SOURCE", type=non_empty,
                   help="image files, folders (searched recursively), glob patterns (quote them: 'photos/*.jpg'), "
                   "video files (.mp4, .avi, .mov, .mkv, ...), or - for one image on standard input "
                   "(curl -s URL | fer-edge infer -)")
    add_model_options(p)
    add_detector_options(p)
    p.add_argument("--max-pixels", type=max_pixels, default=MAX_PIXELS, metavar="N",
                   help=f"refuse an image whose header declares more than N pixels, before decoding it "
                   f"(default {MAX_PIXELS:,}: a 2 MB file can declare 30000x30000 and take gigabytes); 0: no limit")
    add_detect_scale_option(p.add_argument_group("stages"), f"default {IMAGES.detect_scale:g}: images and video files "
                            "are looked at whole")
    o = p.add_argument_group("output")
    add_json_option(o, "one JSON document instead of the table")
    add_top_k_option(o)
    add_table_options(o, several_inputs=True)
    add_annotated_options(
        o, "write a copy of each image (and video) with boxes and labels drawn into DIR, under the input's name; "
        "refuses (exit 2, nothing written) when that would overwrite an input or a file already in DIR",
        "with --save-annotated: replace files already in DIR (from an earlier run); never an input")
    add_verbosity_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..runtime.sinks import check_output_path
    from ..runtime.sources import IMAGES, VIDEO, SourceSpec, infer_inputs, require_kind, resolve_source
    from .exitcodes import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL
    from .logs import setup_cli_logging
    from .outputs import check_verb_outputs

    setup_cli_logging(args.verbose, args.quiet)  # before the sources are searched: -v names the files skipped
    if args.overwrite and not args.save_annotated:
        _prepare_dir(None, overwrite=True)  # the usage error, before anything is read

    # what each SOURCE is, before the model loads: a camera or a URL is one line naming `webcam`;
    # standard input is read (and decoded) now too, so a bad one fails before the model loads
    specs = [SourceSpec(IMAGES, STDIN, (STDIN,)) if s == STDIN else
             require_kind(resolve_source(s, default=IMAGES), IMAGES, VIDEO) for s in args.sources]
    preloaded = {STDIN: read_stdin_image(args.max_pixels)} if STDIN in args.sources else {}
    sources = infer_inputs(specs)
    if len(sources) == 1 and sources[0].error is not None:  # an empty folder, a missing file: nothing to run
        raise InputError(sources[0].error)
    # every output is checked before the model loads: a re-run into the same folder costs nothing
    check_verb_outputs(args)  # --csv / --jsonl: not an input, the model or each other
    csv_path = Path(args.csv).expanduser() if args.csv else None
    jsonl_path = Path(args.jsonl).expanduser() if args.jsonl else None
    check_output_path(csv_path, "CSV")
    check_output_path(jsonl_path, "JSONL")
    annotated_dir = _prepare_dir(args.save_annotated, args.overwrite)
    if annotated_dir is not None:
        from .outputs import check_derived_outputs

        check_derived_outputs("--save-annotated", list(_annotated_targets(sources, annotated_dir).values()),
                              [s.path for s in sources], args.overwrite,
                              remedy=f"write next to the earlier run with another folder "
                              f"(--save-annotated {annotated_dir}-2)")
    predictor = build_predictor(args)
    return process(predictor, sources, json_out=args.json, top_k=args.top_k, annotated_dir=annotated_dir,
                   exit_codes=(EXIT_OK, EXIT_PARTIAL, EXIT_INPUT), overwrite=args.overwrite,
                   preloaded=preloaded, csv=csv_path, jsonl=jsonl_path, detect_scale=args.detect_scale)


def read_stdin_image(max_pixels: Optional[int] = MAX_PIXELS):
    """The image piped to standard input (``fer-edge infer -``), decoded; one line when there is
    none (a terminal: exit 2) or it is not an image (exit 3)."""
    from ..errors import UsageError
    from ..runtime.encoded import decode_image, read_binary

    stream = sys.stdin
    if stream is None or stream.isatty():
        raise UsageError("`infer -` reads an image from standard input, which is a terminal here: "
                         "pipe one in (fer-edge infer - < photo.jpg)")
    return decode_image(*read_binary(getattr(stream, "buffer", stream), "standard input"), max_pixels,
                        video_advice="`infer -` reads one image; save the video to a file and run "
                        "`fer-edge infer FILE` or `fer-edge webcam --source FILE`")


def process(predictor, sources, json_out: bool, top_k: int, annotated_dir: Optional[Path],
            exit_codes: tuple[int, int, int], overwrite: bool = False, preloaded: Optional[dict] = None,
            csv: Optional[Path] = None, jsonl: Optional[Path] = None, detect_scale: Optional[float] = None) -> int:
    """Run ``predictor`` over ``sources`` through the pipeline (:func:`fer_edge.runtime.pipeline.run`),
    print the table or JSON, return the exit code.

    Consecutive images are one run (:class:`~fer_edge.runtime.frames.ImageFrames`, those in
    ``preloaded`` already decoded, e.g. standard input), each video its own run
    (:func:`fer_edge.runtime.stream.run_stream`, detected at full scale as a file is). Every run
    feeds the same sinks: the table or the JSON, the annotated copies, ``csv`` and ``jsonl``. The
    annotated copies' names are all decided and checked before the first input is processed
    (:func:`.outputs.check_derived_outputs`): a run that would overwrite an input, or a file that
    was there before (without ``overwrite``), stops before it writes anything.
    """
    from ..runtime.frames import END_INTERRUPTED, ImageFrames
    from ..runtime.pipeline import IMAGES, no_face_in_images, run
    from ..runtime.sinks import JsonlSink
    from ..runtime.timeline import CsvSink
    from .outputs import check_derived_outputs
    from .sinks import AnnotatedImages, JsonImages, Table, Tally

    targets = _annotated_targets(sources, annotated_dir) if annotated_dir is not None else {}
    check_derived_outputs("--save-annotated", list(targets.values()), [s.path for s in sources], overwrite)
    _say_renamed(sources, targets)
    ok_code, partial_code, input_code = exit_codes
    tally = Tally()
    table = None if json_out else Table(sources, top_k)
    images = JsonImages(top_k, targets) if json_out else None
    videos: list[dict[str, Any]] = []
    shared: list[Any] = []  # the named outputs: one file for every input
    if csv is not None:
        shared.append(CsvSink(csv, predictor.model.classes, paths=True))
    if jsonl is not None:
        shared.append(JsonlSink(jsonl, paths=True, top_k=top_k))
    stages = IMAGES.replace(detect_scale=detect_scale)
    done = 0
    interrupted = False
    try:
        for group in _runs(sources):
            if group[0].kind == "video":
                src = group[0]
                video, stopped = _process_video(predictor, src.path, targets.get(src.path), top_k, overwrite,
                                                [s for s in (table,) if s is not None] + shared, detect_scale)
                if video["error"] is not None:
                    tally.fail(src.path, video["error"])
                    for sink in shared:
                        if hasattr(sink, "failed"):  # --jsonl: a line for every failed input, as for images
                            sink.failed(src.path, video["error"])
                if video["summary"] is not None:
                    tally.faces += video["summary"]["faces"]
                    if video["summary"]["warning"]:
                        tally.warnings.append(f"{src.path}: {video['summary']['warning']}")
                if table is not None:
                    table.video_end(src.path, video["summary"], video["error"])
                else:
                    videos.append(video)
                done += 1
                if stopped:  # Ctrl-C during the video: what it did is reported above, then the run stops
                    raise KeyboardInterrupt
                continue
            frames = ImageFrames([s.path for s in group], predictor.max_pixels, preloaded,
                                 errors={s.path: s.error for s in group if s.error is not None})
            sinks = [AnnotatedImages(targets, tally, overwrite), tally, table or images, *shared]
            summary = run(predictor, frames, stages, sinks)
            done += summary.frames + summary.failed
            if summary.end == END_INTERRUPTED:
                raise KeyboardInterrupt
    except KeyboardInterrupt:  # what is done is still reported: the table so far, or the JSON of it
        interrupted = True
    finally:
        for sink in shared:
            sink.close()

    notice, remedies = no_face_in_images(predictor.detector, tally.images_read, stages.detect_scale)
    image_warning = None
    if notice is not None and not tally.image_faces:
        from .wording import remedies as remedy_words

        image_warning = f"{notice}. Try {remedy_words(remedies)}."
    warnings = tally.warnings
    errors = tally.errors
    warning = "; ".join(([image_warning] if image_warning else []) + warnings) or None
    if json_out:
        doc = {
            "model": predictor.model.summary(),
            "detector": getattr(predictor.detector, "name", type(predictor.detector).__name__),
            "images": images.images,
            "videos": videos,
            "errors": errors,
            "summary": {"inputs": len(sources), "failed": len(errors), "faces": tally.faces, "warning": warning,
                        **({"interrupted": True, "processed": done} if interrupted else {})},
        }
        jsonout.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif table is not None:
        table.footer(tally.images_read, len(errors), tally.faces)
    sys.stdout.flush()
    if image_warning:
        print(f"fer-edge: warning: {printable(image_warning)}", file=sys.stderr)
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


def _runs(sources) -> list[list[Any]]:
    """The inputs in order, as runs of the pipeline: consecutive images together, each video alone."""
    runs: list[list[Any]] = []
    for src in sources:
        if src.kind == "video" or not runs or runs[-1][0].kind == "video":
            runs.append([src])
        else:
            runs[-1].append(src)
    return runs


def _process_video(predictor, path: str, annotated: Optional[Path], top_k: int, overwrite: bool,
                   sinks: list, detect_scale: Optional[float]) -> tuple[dict[str, Any], bool]:
    """One video through the stream loop (:func:`fer_edge.runtime.stream.run_stream`, the stages of a
    video file): its JSON entry (``summary``: what ``fer-edge webcam --json`` prints; ``frames``: what
    its ``--jsonl`` writes, with ``top_k``), ``error`` set when it cannot be opened or ends short of
    the frames it declares; and whether Ctrl-C stopped it (its entry holds the frames it got)."""
    from ..errors import InputError, OutputError
    from ..runtime.frames import END_INTERRUPTED, END_TRUNCATED
    from ..runtime.stream import StreamOptions, run_stream
    from .exitcodes import for_ending
    from .sinks import VideoFrames
    from .wording import flag_words, message

    frames = VideoFrames(top_k)
    entry: dict[str, Any] = {"path": path, "error": None, "summary": None, "frames": []}
    # a derived output: a file that appears under its name during the run is kept (as for images);
    # no frame rate is drawn into it (it says nothing about an offline file)
    opts = StreamOptions(detect_scale=detect_scale, output=annotated, output_replace=overwrite, draw_fps=False,
                         frame_sinks=[frames, *sinks])
    try:
        summary = run_stream(predictor, path, opts)
    except OutputError:  # --csv / --jsonl cannot be written: that stops the run, not this input alone
        raise
    except InputError as exc:  # missing, not a video, unreadable codec: like an unreadable image
        entry["error"] = message(exc)
        return entry, False
    entry["frames"] = frames.frames
    entry["summary"] = {**summary.to_dict(flag_words), "exit_code": int(for_ending(summary.end))}
    if summary.end == END_TRUNCATED:
        entry["error"] = f"{path}: {summary.message}"
    return entry, summary.end == END_INTERRUPTED


def _prepare_dir(path: Optional[str], overwrite: bool = False) -> Optional[Path]:
    """The --save-annotated folder, created; ``overwrite`` without it is a usage error (it would
    otherwise be silently ignored, and the user believe something was replaced)."""
    from ..errors import InputError, UsageError

    if path is None:
        if overwrite:
            raise UsageError("--overwrite applies to the annotated copies: use it with --save-annotated DIR")
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
    """``out_dir/<the input's path inside its folder>`` for each input: an image found in a folder or
    a glob keeps its sub-folders (``photos/sub/b.png`` -> ``DIR/sub/b.png``), a file named itself
    goes to ``DIR/<name>``. Other image formats become ``.png``, videos other than ``.avi`` ``.mp4``.
    A name already taken (compared without case, as macOS and Windows do) gets ``-2``, ``-3``, ...;
    :func:`_say_renamed` says which input got which."""
    from ..runtime.sinks import VIDEO_OUTPUT_SUFFIXES

    used: set[str] = set()
    targets: dict[str, Path] = {}
    for src in sources:
        if src.error is not None or src.path in targets:
            continue
        rel = Path("stdin.png" if src.path == STDIN else (src.relative or Path(src.path).name))
        if src.kind == "video":
            ext = rel.suffix.lower() if rel.suffix.lower() in VIDEO_OUTPUT_SUFFIXES else ".mp4"
        else:
            ext = rel.suffix.lower() if rel.suffix.lower() in ANNOTATED_EXTENSIONS else ".png"
        folder = rel.parent
        name, i = folder / f"{rel.stem}{ext}", 2
        while str(name).lower() in used:
            name, i = folder / f"{rel.stem}-{i}{ext}", i + 1
        used.add(str(name).lower())
        targets[src.path] = out_dir / name
    return targets


def _say_renamed(sources, targets: dict[str, Path]) -> None:
    """One line per input whose copy could not take its own name (another input had it)."""
    import logging

    log = logging.getLogger("fer_edge")
    first: dict[str, str] = {}
    for src in sources:
        target = targets.get(src.path)
        if target is None:
            continue
        own = Path("stdin.png" if src.path == STDIN else (src.relative or Path(src.path).name))
        if target.stem != own.stem:
            log.info("fer-edge: %s is drawn into %s (%s was taken by %s)", printable(src.path), printable(str(target)),
                     printable(own.name), printable(first.get(own.name.lower(), "another input")))
        first.setdefault(own.name.lower(), src.path)
