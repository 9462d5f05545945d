"""`fer-edge infer`: expressions of the faces in images, folders and globs.

Also home of the model/detector options shared with `webcam` and `demo`, so the three
verbs spell them the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from .argtypes import detector_name, float_range, onnx_device, positive_int

HELP = "classify facial expressions in images, folders or globs"


# ---------------------------------------------------------------------------- shared options
def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", metavar="PATH", default=None,
                   help="exported .onnx model, or 'default': the model shipped with fer-edge (the default)")
    g.add_argument("--device", default="auto", metavar="DEVICE", type=onnx_device,
                   help="auto (CUDA if onnxruntime-gpu works, else CPU), cpu, cuda, cuda:N, tensorrt (default: auto)")
    g.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="onnxruntime intra-op threads (default: onnxruntime's choice, all cores)")


def add_detector_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("face detection")
    g.add_argument("--detector", default="yunet", metavar="NAME", type=detector_name,
                   help="yunet (default: the YuNet model shipped with fer-edge; faces are aligned), "
                   "haar (OpenCV Haar cascade), haar:alt2, none")
    g.add_argument("--detector-model", metavar="PATH", default=None,
                   help="another detector model file: a YuNet .onnx for --detector yunet, a cascade .xml for haar")
    g.add_argument("--no-detect", action="store_true",
                   help="treat every input as an already cropped face (like FER2013 images)")
    g.add_argument("--max-faces", type=positive_int, default=None, metavar="N",
                   help="keep only the N largest faces per image (1 = the main face)")
    g.add_argument("--margin", type=float_range(0.0, 2.0), default=0.0, metavar="F",
                   help="grow detected boxes by this fraction of their size (default 0: Haar boxes already match FER2013 crops; "
                   "aligned YuNet crops are framed like FER2013 and ignore it)")


def add_verbosity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")


def build_predictor(args: argparse.Namespace, stream: bool = False):
    """A Predictor from the shared options (the model is loaded and validated here).

    ``stream`` picks the detector settings tuned for speed (see ``build_detector(fast=True)``).
    """
    from ..runtime.api import Predictor
    from ..runtime.logs import setup_cli_logging

    setup_cli_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    detector = "none" if args.no_detect else args.detector
    from ..runtime.detect import build_detector
    from ..runtime.model import FerModel

    model = FerModel.load(args.model, device=args.device, threads=args.threads)
    return Predictor(model, detector=build_detector(detector, args.detector_model, fast=stream),
                     max_faces=args.max_faces, margin=args.margin)


# ---------------------------------------------------------------------------- the verb
def register(subparsers: Any) -> None:
    p = subparsers.add_parser("infer", help=HELP, description=HELP + ". Exit codes: 0 ok, 3 no readable input, "
                              "4 model problem, 5 device problem, 7 some inputs failed (the others were processed).")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="image files, folders (searched recursively) or glob patterns (quote them: 'photos/*.jpg')")
    add_model_args(p)
    add_detector_args(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    o.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="show the K most likely expressions per face (default 3)")
    o.add_argument("--save-annotated", metavar="DIR", default=None,
                   help="write a copy of each image with boxes and labels drawn into DIR, under the image's name; "
                   "refuses (exit 2, nothing written) when that would overwrite an input or a file already in DIR")
    o.add_argument("--overwrite", action="store_true",
                   help="with --save-annotated: replace files already in DIR (from an earlier run); never an input")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL
    from ..runtime.sources import expand_sources

    predictor = build_predictor(args)
    sources = expand_sources(args.sources)
    annotated_dir = _prepare_dir(args.save_annotated)
    return process(predictor, sources, json_out=args.json, top_k=args.top_k, annotated_dir=annotated_dir,
                   exit_codes=(EXIT_OK, EXIT_PARTIAL, EXIT_INPUT), overwrite=args.overwrite)


def process(predictor, sources, json_out: bool, top_k: int, annotated_dir: Optional[Path],
            exit_codes: tuple[int, int, int], overwrite: bool = False) -> int:
    """Run ``predictor`` over ``sources``, print the table or JSON, return the exit code.

    The annotated copies' names are all decided and checked before the first image is
    processed (:func:`.outputs.check_derived_outputs`): a run that would overwrite an input,
    or a file that was there before (without ``overwrite``), stops before it writes anything.
    """
    from ..runtime.results import ImageResult
    from .outputs import check_derived_outputs

    targets = _annotated_targets(sources, annotated_dir) if annotated_dir is not None else {}
    check_derived_outputs("--save-annotated", list(targets.values()), [s.path for s in sources], overwrite)
    ok_code, partial_code, input_code = exit_codes
    table = None if json_out else _Table(sources, top_k)
    images: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    n_faces = 0
    for src in sources:
        if src.error is not None:
            res = ImageResult(path=src.path, error=src.error)
        else:
            res = predictor.process_path(src.path)
            if res.ok and src.path in targets:
                _save_annotated(src.path, res, targets[src.path], overwrite)
        if not res.ok:
            errors.append({"path": res.path or "", "error": res.error or ""})
        n_faces += len(res.faces)
        if table is not None:
            table.row(res)
        else:
            images.append(res.to_dict(top_k))

    warning = no_face_warning(predictor.detector, len(sources) - len(errors), n_faces)
    if json_out:
        doc = {
            "model": predictor.model.summary(),
            "detector": getattr(predictor.detector, "name", type(predictor.detector).__name__),
            "images": images,
            "errors": errors,
            "summary": {"inputs": len(sources), "failed": len(errors), "faces": n_faces, "warning": warning},
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif table is not None:
        table.footer(len(sources), len(errors), n_faces)
    sys.stdout.flush()
    if warning:
        print(f"fer-edge: warning: {warning}", file=sys.stderr)

    if not errors:
        return ok_code
    if len(errors) == 1 and len(sources) == 1:
        print(f"fer-edge: error: {errors[0]['error']}", file=sys.stderr)
        return input_code
    print(f"fer-edge: error: {len(errors)} of {len(sources)} inputs failed:", file=sys.stderr)
    for e in errors:
        print(f"  {e['error']}", file=sys.stderr)
    return input_code if len(errors) == len(sources) else partial_code


def no_face_warning(detector, images: int, faces: int) -> Optional[str]:
    """The warning for a run whose detector found no face in any of the ``images`` it read
    (None when a face was found, nothing was read, or there is no detector)."""
    if faces or not images or getattr(detector, "name", "") == "none":
        return None
    from ..runtime.detect import describe_detector, no_face_advice

    return (f"no face found in {'the image' if images == 1 else f'any of the {images} images'}, "
            f"looked for by {describe_detector(detector)}. Try {no_face_advice(detector)}.")


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
    """``out_dir/<image name>`` for each input (other formats as ``.png``); the same name from
    different folders gets ``-2``, ``-3``, ... (compared without case, as macOS and Windows do)."""
    used: set[str] = set()
    targets: dict[str, Path] = {}
    for src in sources:
        if src.error is not None or src.path in targets:
            continue
        p = Path(src.path)
        ext = p.suffix.lower() if p.suffix.lower() in ANNOTATED_EXTENSIONS else ".png"
        name, i = f"{p.stem}{ext}", 2
        while name.lower() in used:
            name, i = f"{p.stem}-{i}{ext}", i + 1
        used.add(name.lower())
        targets[src.path] = out_dir / name
    return targets


def _save_annotated(path: str, res, target: Path, overwrite: bool) -> None:
    """Encode in memory and create the file exclusively (see :func:`.outputs.write_new_file`)."""
    import cv2

    from ..errors import InputError
    from ..runtime.annotate import draw_faces
    from ..runtime.sources import read_image
    from .outputs import write_new_file

    img = draw_faces(read_image(path), res.faces)
    ok, buf = cv2.imencode(target.suffix, img)
    if not ok:
        raise InputError(f"cannot encode {target}")
    write_new_file(target, buf.tobytes(), overwrite=overwrite)


class _Table:
    """Plain-text table printed row by row (so big folders show progress as they go)."""

    def __init__(self, sources, top_k: int):
        self.top_k = top_k
        widest = max((len(s.path) for s in sources), default=4)
        self.w_path = min(max(4, widest), 60)
        head = f"{'path':<{self.w_path}}  {'face':>4}  {'box (x,y,w,h)':<19}  {'label':<9} {'score':>5}"
        if top_k > 1:
            head += f"  top-{top_k}"
        print(head)
        print("-" * len(head))

    def _p(self, path: Optional[str]) -> str:
        p = path or "<array>"
        return p if len(p) <= self.w_path else "..." + p[-(self.w_path - 3):]

    def row(self, res) -> None:
        path = self._p(res.path)
        if not res.ok:
            print(f"{path:<{self.w_path}}  {'-':>4}  error: {res.error}")
        elif not res.faces:
            print(f"{path:<{self.w_path}}  {'-':>4}  no face found")
        for i, f in enumerate(res.faces, 1):
            box = ",".join(str(v) for v in f.box)
            line = f"{path:<{self.w_path}}  {i:>4}  {box:<19}  {f.label:<9} {f.score:5.3f}"
            if self.top_k > 1:
                line += "  " + ", ".join(f"{c} {p:.2f}" for c, p in f.top_k(self.top_k))
            print(line)

    def footer(self, inputs: int, failed: int, faces: int) -> None:
        print(f"{inputs} image(s), {faces} face(s), {failed} failed")
