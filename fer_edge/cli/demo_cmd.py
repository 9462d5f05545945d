"""`fer-edge demo`: the packaged model on the packaged sample photo, right after install."""
from __future__ import annotations

import argparse
from typing import Any

from .options import add_annotated_options, add_json_option, add_model_options, add_top_k_option, add_verbosity_options

HELP = "run the default model on the bundled sample photo (a quick check that everything works)"


def register(subparsers: Any) -> None:
    from .exitcodes import Exit, help_line

    p = subparsers.add_parser("demo", help=HELP, description=HELP + ". The photo is a public-domain NASA portrait; "
                              "see fer_edge/assets/LICENSES.md. "
                              + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.INTERRUPTED))
    add_model_options(p)
    add_json_option(p, "one JSON document instead of the table")
    add_top_k_option(p)
    add_annotated_options(p, "also write the annotated photo into DIR (refuses to replace a file already there)",
                          "with --save-annotated: replace DIR's copy from an earlier run")
    add_verbosity_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .exitcodes import EXIT_INPUT, EXIT_OK
    from ..runtime.default_model import sample_image_path
    from ..runtime.sources import Source
    from .infer_cmd import _prepare_dir, process
    from .options import build_predictor

    # the demo uses infer's defaults: the shipped detector (aligned crops), all faces, no margin
    from ..runtime.detect import DEFAULT_DETECTOR

    args.detector, args.detector_model, args.no_detect, args.max_faces, args.margin = DEFAULT_DETECTOR, None, False, None, 0.0
    annotated_dir = _prepare_dir(args.save_annotated, args.overwrite)  # before the model loads
    predictor = build_predictor(args)
    sample = sample_image_path()
    # the sample photo unreadable, or its annotated copy unwritable: exit 3, as for infer's one input
    return process(predictor, [Source(str(sample))], json_out=args.json, top_k=args.top_k,
                   annotated_dir=annotated_dir, exit_codes=(EXIT_OK, EXIT_INPUT, EXIT_INPUT),
                   overwrite=args.overwrite)
