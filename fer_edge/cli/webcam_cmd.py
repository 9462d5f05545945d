"""`fer-edge webcam`: live expressions from a camera, a video file or a network stream."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .argtypes import file_with_suffix, float_range, non_empty, positive_int
from .options import (
    add_detect_scale_option, add_detector_options, add_json_option, add_model_options, add_table_options,
    add_verbosity_options, build_predictor,
)
from ..runtime.pipeline import LIVE, VIDEO_FILE
from .outputs import check_verb_outputs, replaces_help
from .. import jsonout
from ..atomic import FIGURE_SUFFIXES
from ..errors import printable
from .exitcodes import Exit, for_ending, help_line
from .wording import flag_words

HELP = "live expression recognition on a camera, video file or stream (rtsp/http)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "webcam",
        help=HELP,
        description=HELP + ". Ends on end of file, --max-frames, q/Esc in the window or Ctrl-C; "
        "outputs are always closed and complete. "
        + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.DEPENDENCY, Exit.INTERRUPTED),
    )
    p.add_argument("--source", "-s", default="0", metavar="SRC", type=non_empty,
                   help="camera index (0, 1, ...), video file or stream URL (rtsp://, http://) (default: 0)")
    add_model_options(p)
    add_detector_options(p)
    s = p.add_argument_group("stream")
    disp = s.add_mutually_exclusive_group()
    disp.add_argument("--display", dest="display", action="store_true", default=None,
                      help="show the annotated frames in a window (q or Esc quits)")
    disp.add_argument("--no-display", dest="display", action="store_false",
                      help="no window (default when there is no graphical display)")
    s.add_argument("--output", "-o", metavar="VIDEO", default=None, type=_video_output,
                   help=replaces_help("write the annotated video here (.mp4 or .avi)"))
    add_table_options(s, several_inputs=False)
    s.add_argument("--plot", metavar="PNG", default=None, type=file_with_suffix(*FIGURE_SUFFIXES),
                   help=replaces_help("draw each tracked face's expression probabilities over time into this image "
                                      f"at the end ({', '.join(FIGURE_SUFFIXES)}; needs matplotlib)"))
    s.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N processed frames")
    s.add_argument("--detect-every", type=positive_int, default=LIVE.detect_every, metavar="N",
                   help=f"run the face detector every N frames and follow the faces in between (default "
                   f"{LIVE.detect_every})")
    add_detect_scale_option(s, f"default: {VIDEO_FILE.detect_scale:g} for a video file, {LIVE.detect_scale:g} "
                            "for a camera or stream")
    s.add_argument("--min-hits", type=positive_int, default=LIVE.min_hits, metavar="N",
                   help=f"report a new face once N detection rounds have found it (default {LIVE.min_hits}: hides "
                   "one-off false detections; 1 = at once)")
    s.add_argument("--no-smooth", dest="smooth", action="store_false",
                   help="no temporal smoothing of the probabilities (labels may flicker)")
    s.add_argument("--smooth-alpha", type=float_range(0.0, 1.0, low_open=True), default=LIVE.alpha, metavar="A",
                   help=f"weight of the newest frame in the moving average (default {LIVE.alpha:g}; 1 = no smoothing)")
    s.add_argument("--no-fps", dest="draw_fps", action="store_false",
                   help="do not draw the frame rate into the window and the --output video")
    s.add_argument("--frame-policy", choices=("auto", "latest", "all"), default="auto",
                   help="latest: always process the newest frame and drop the others (live); all: every frame in "
                   "order (complete outputs); auto: all for video files, latest for cameras and streams")
    add_json_option(s, "the end-of-run summary as JSON")
    add_verbosity_options(p)
    p.set_defaults(func=run)


def _video_output(text: str) -> str:
    """``type=`` for --output: a file name the video writer knows (sinks.VIDEO_OUTPUT_SUFFIXES)."""
    from ..runtime.sinks import VIDEO_OUTPUT_SUFFIXES

    return file_with_suffix(*VIDEO_OUTPUT_SUFFIXES)(text)


def run(args: argparse.Namespace) -> int:
    from ..errors import DeviceError
    from ..runtime.sinks import check_output_path
    from ..runtime.sources import CAMERA, STREAM, VIDEO, require_kind, resolve_source
    from ..runtime.stream import StreamOptions, gui_available, run_stream

    # what --source is (a file of unknown type is tried as a video); images: one line naming `infer`
    source = require_kind(resolve_source(args.source, default=VIDEO), VIDEO, CAMERA, STREAM)
    check_verb_outputs(args)  # no output may be the source video, a model or another output
    output = Path(args.output).expanduser() if args.output else None
    jsonl = Path(args.jsonl).expanduser() if args.jsonl else None
    check_output_path(output, "video")
    check_output_path(jsonl, "JSONL")
    csv_path = Path(args.csv).expanduser() if args.csv else None
    plot_path = Path(args.plot).expanduser() if args.plot else None
    check_output_path(csv_path, "CSV")
    if plot_path is not None:
        from ..runtime.timeline import check_plot_path

        check_plot_path(plot_path, "--plot")  # before the video is processed, not after
    display = gui_available() if args.display is None else args.display
    if display and not gui_available():
        raise DeviceError("--display needs a graphical display (DISPLAY is not set); use --no-display with --output")

    predictor = build_predictor(args, stream=source.live)
    opts = StreamOptions(
        detect_every=args.detect_every,
        detect_scale=args.detect_scale,
        smooth=args.smooth,
        alpha=args.smooth_alpha,
        min_hits=args.min_hits,
        max_frames=args.max_frames,
        display=display,
        output=output,
        jsonl=jsonl,
        frame_policy=args.frame_policy,
        draw_fps=args.draw_fps,
    )
    from ..runtime.timeline import CsvSink, FrameRows

    rows = FrameRows() if plot_path is not None else None
    if rows is not None:
        opts.frame_sinks.append(rows)
    if csv_path is not None:
        opts.frame_sinks.append(CsvSink(csv_path, predictor.model.classes))
    try:
        summary = run_stream(predictor, source, opts)
    finally:
        for sink in opts.frame_sinks:
            sink.close()
    plotted = _plot(rows, plot_path, predictor.model.classes, summary.source)
    if args.json:
        jsonout.dump({**summary.to_dict(flag_words), "exit_code": int(for_ending(summary.end))}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
    print(f"fer-edge webcam: {summary.line()}", file=sys.stderr)
    if summary.message:
        kind = "error" if summary.end in ("lost", "truncated") else "note"
        print(f"fer-edge: {kind}: {printable(summary.message)}", file=sys.stderr)
    if summary.notice:
        print(f"fer-edge: warning: {printable(summary.warning_words(flag_words))}", file=sys.stderr)
    for what, path in (("video", summary.output), ("events", summary.jsonl), ("frames CSV", csv_path),
                       ("timeline plot", plotted)):
        if path:
            print(f"fer-edge webcam: {what} written to {printable(str(path))}", file=sys.stderr)
    return for_ending(summary.end)


def _plot(rows, path, classes, source: str):
    """Draw the timeline after the run (whatever way it ended); a video without faces is a note."""
    if rows is None or path is None:
        return None
    from ..runtime.timeline import plot_timeline

    if not rows.rows:
        print(f"fer-edge: note: no face was found: {path} not drawn", file=sys.stderr)
        return None
    return plot_timeline(rows.rows, path, classes, title=f"expressions over time: {Path(source).name}")
