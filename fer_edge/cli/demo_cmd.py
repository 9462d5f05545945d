"""`fer-edge demo`: the packaged model on the packaged sample photo, right after install."""
from __future__ import annotations

import argparse
from typing import Any

from .argtypes import positive_int
from .infer_cmd import add_model_args, add_verbosity_args

HELP = "run the default model on the bundled sample photo (a quick check that everything works)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help=HELP, description=HELP + ". The photo is a public-domain NASA portrait; "
                              "see fer_edge/assets/LICENSES.md.")
    add_model_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="show the K most likely expressions (default 3)")
    p.add_argument("--save-annotated", metavar="DIR", default=None,
                   help="also write the annotated photo into DIR (refuses to replace a file already there)")
    p.add_argument("--overwrite", action="store_true", help="with --save-annotated: replace DIR's copy from an earlier run")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import EXIT_FAILURE, EXIT_OK
    from ..runtime.default_model import sample_image_path
    from ..runtime.sources import Source
    from .infer_cmd import _prepare_dir, build_predictor, process

    # the demo uses infer's defaults: the shipped detector (aligned crops), all faces, no margin
    from ..runtime.detect import DEFAULT_DETECTOR

    args.detector, args.detector_model, args.no_detect, args.max_faces, args.margin = DEFAULT_DETECTOR, None, False, None, 0.0
    predictor = build_predictor(args)
    sample = sample_image_path()
    # a broken sample image is a broken installation, not the user's input
    return process(predictor, [Source(str(sample))], json_out=args.json, top_k=args.top_k,
                   annotated_dir=_prepare_dir(args.save_annotated), exit_codes=(EXIT_OK, EXIT_FAILURE, EXIT_FAILURE),
                   overwrite=args.overwrite)
