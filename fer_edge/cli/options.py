"""Options that several verbs share, defined once so every verb spells and checks them the same way.

``infer``, ``webcam`` and ``demo`` take the model options, ``infer`` and ``webcam`` the
face-detection options; every verb that prints a report takes ``--json``. Values are checked
by the ``type=`` functions of :mod:`.argtypes` (which call the library's own checks where the
library has one). :func:`build_predictor` turns the parsed model and detector options into a
:class:`~fer_edge.runtime.api.Predictor`.
"""
from __future__ import annotations

import argparse

from .argtypes import (
    detector_name, float_range, margin, max_faces, non_empty, onnx_device, positive_int, thread_count,
)
from ..runtime.imagesize import MAX_PIXELS


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model, --device, --threads (the exported model and where it runs)."""
    g = p.add_argument_group("model")
    from ..runtime.default_model import DEFAULT_MODEL_NAME, describe_packaged

    g.add_argument("--model", "-m", metavar="PATH", default=None, type=non_empty,
                   help=f"exported .onnx model, or a model shipped with fer-edge: {describe_packaged()} "
                   f"(default: {DEFAULT_MODEL_NAME})")
    add_device_option(g)
    g.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help="onnxruntime intra-op threads (default: onnxruntime's choice, all cores)")


def add_device_option(p, help: str = "auto (CUDA if onnxruntime-gpu works, else CPU), cpu, cuda, cuda:N, tensorrt "
                      "(default: auto)") -> None:
    """--device: an ONNX Runtime device, its syntax checked by argparse (whether it is present: exit 5 later)."""
    p.add_argument("--device", default="auto", metavar="DEVICE", type=onnx_device, help=help)


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """--detector, --detector-model, --no-detect, --max-faces, --margin (how faces are found)."""
    g = p.add_argument_group("face detection")
    from ..runtime.detect import DEFAULT_DETECTOR, describe_choices

    g.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME", type=detector_name, help=describe_choices())
    g.add_argument("--detector-model", metavar="PATH", default=None, type=non_empty,
                   help="another detector model file: a YuNet .onnx for --detector yunet, a cascade .xml for haar")
    g.add_argument("--no-detect", action="store_true",
                   help="treat every input as an already cropped face (like FER2013 images)")
    g.add_argument("--max-faces", type=max_faces, default=None, metavar="N",
                   help="keep only the N largest faces per image (1 = the main face)")
    g.add_argument("--margin", type=margin, default=0.0, metavar="F",
                   help="grow detected boxes by this fraction of their size (default 0: Haar boxes already match FER2013 crops; "
                   "aligned YuNet crops are framed like FER2013 and ignore it)")


def add_detect_scale_option(p, default_help: str) -> None:
    """--detect-scale F: the detector runs on the frame resized by F (None: the source's default)."""
    from ..runtime.pipeline import DETECT_SCALE_RANGE

    lo, hi = DETECT_SCALE_RANGE
    p.add_argument("--detect-scale", type=float_range(lo, hi), default=None, metavar="F",
                   help=f"run the face detector on the frame resized by F, in [{lo:g}, {hi:g}]: smaller is faster and "
                   f"misses small faces ({default_help})")


def add_table_options(g, several_inputs: bool) -> None:
    """--jsonl FILE and --csv FILE: a line per frame, a row per face, written as the run goes. With
    ``several_inputs`` (infer) each starts with the input's path."""
    from ..runtime.timeline import columns
    from .outputs import replaces_help

    cols = (["path"] if several_inputs else []) + [c for c in columns(()) if c != "score"]
    first = "path, frame and time (a video's frames)" if several_inputs else "frame, time"
    g.add_argument("--jsonl", metavar="FILE", default=None, type=non_empty,
                   help=replaces_help(f"write one JSON line per {'image and ' if several_inputs else ''}processed frame "
                                      f"({first}, faces with track id, box, label, probabilities"
                                      f"{'; error for an input that failed' if several_inputs else ''})"))
    g.add_argument("--csv", metavar="FILE", default=None, type=non_empty,
                   help=replaces_help(f"write one CSV row per {'image or ' if several_inputs else ''}frame and face: "
                                      f"{', '.join(cols)}, score and the probability of each expression"
                                      f"{' (frame, time and track_id empty for an image)' if several_inputs else ''}"))


def add_json_option(p: argparse.ArgumentParser, what: str = "one JSON document") -> None:
    """--json: ``what`` goes to stdout as JSON (logs and progress stay on stderr)."""
    p.add_argument("--json", action="store_true", help=f"print {what} on stdout")


def add_top_k_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K",
                   help="show the K most likely expressions per face (default 3)")


def add_annotated_options(p: argparse.ArgumentParser, save_help: str, overwrite_help: str) -> None:
    """--save-annotated DIR and --overwrite (derived output files, see :mod:`.outputs`)."""
    p.add_argument("--save-annotated", metavar="DIR", default=None, type=non_empty, help=save_help)
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)


def add_verbosity_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")


def build_predictor(args: argparse.Namespace, stream: bool = False):
    """A Predictor from the model and detector options (the model is loaded and validated here).

    ``stream`` picks the detector settings tuned for speed, for a live source (see ``create_detector(fast=True)``).
    """
    from ..runtime.api import Predictor
    from ..runtime.detect import create_detector
    from .logs import setup_cli_logging
    from ..runtime.model import FerModel

    setup_cli_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    detector = "none" if args.no_detect else args.detector
    model = FerModel.load(args.model, device=args.device, threads=args.threads)
    return Predictor(model, detector=create_detector(detector, args.detector_model, fast=stream),
                     max_faces=args.max_faces, margin=args.margin,
                     max_pixels=getattr(args, "max_pixels", MAX_PIXELS))
