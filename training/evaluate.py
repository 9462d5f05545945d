"""``fer-edge eval``: score a training checkpoint or an exported ONNX model on a split.

An ``.onnx`` model is evaluated through the runtime (:class:`fer_edge.runtime.model.FerModel`),
exactly as an edge device would run it, and this path never imports torch. A
checkpoint is evaluated with torch (imported only then).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from fer_edge.data.dataset import SPLIT_TO_USAGE
from fer_edge.errors import InputError, ModelError
from fer_edge.labels import CLASSES, IMAGE_SIZE

from .metrics import EvalReport, compute_report, markdown_table, per_class_csv
from .splits import canonical_split, compute, load
from fer_edge import jsonout
from fer_edge.atomic import output_text


def load_split(data: str, split: str, ferplus: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """Faces (N, 48, 48) uint8 and labels of one split; InputError when it is empty.

    With ``ferplus`` (fer2013new.csv) the labels are FER+'s majority labels and the faces the
    majority protocol leaves out are not returned (fer_edge.data.ferplus)."""
    from .splits import labelled

    if not Path(data).exists():
        raise InputError(f"{data}: no such file or directory")
    name = canonical_split(split)
    sub = load(data, ferplus).subset(name)
    if len(sub.labels) == 0:
        raise InputError(f"{data}: no faces in split {SPLIT_TO_USAGE[name]} ({name})")
    images, labels, _ = labelled(sub)
    if len(labels) == 0:
        raise InputError(f"{ferplus}: no face of split {SPLIT_TO_USAGE[name]} has a FER+ majority label")
    return images, labels


def normalize_np(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 ``(pixel - mean) / std``, with the C++ core when built."""
    try:
        from fer_edge import _native

        return _native.normalize(images, float(mean), float(std))
    except (ImportError, AttributeError):
        return ((images.astype(np.float32) - np.float32(mean)) / np.float32(std))[:, None]


@dataclass
class Scorer:
    """A model loaded once that maps faces ``(N, 48, 48) uint8`` to logits, normalised its way.

    ``fer-edge eval`` scores the split once and ``--robustness`` nine more times; loading the
    model (an ONNX Runtime session, or a checkpoint into torch) once serves all of them.
    """

    name: str
    backend: str  # "onnxruntime" (through the runtime, no torch) or "torch"
    extra: dict
    mean: float
    std: float
    per_split: bool  # normalise each scored set with its own statistics
    run: Callable[[np.ndarray], np.ndarray]  # normalised (N, 1, 48, 48) float32 -> logits
    classes: tuple[str, ...] = CLASSES
    temperature: float = 1.0  # the model's calibration: probabilities are softmax(logits / temperature)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        mean, std = self.mean, self.std
        if self.per_split:
            s = compute(images, "split")
            mean, std = s.mean, s.std
        return self.run(normalize_np(images, mean, std))


def _onnx_scorer(path: str, split_stats: bool, device: str, threads: Optional[int], batch_size: int) -> Scorer:
    from fer_edge.runtime.model import FerModel

    model = FerModel.load(path, device=device, threads=threads)
    c = model.contract
    if c.input_size != IMAGE_SIZE or c.channels != 1:
        raise ModelError(f"{path}: expects {c.channels}x{c.input_size}x{c.input_size} input, data is 1x{IMAGE_SIZE}x{IMAGE_SIZE}")

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([model.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    return Scorer(c.model, "onnxruntime", {"providers": model.providers, "contract": json.loads(c.to_json())},
                  c.mean, c.std, split_stats or c.normalization == "per_split", run, tuple(c.classes),
                  float(c.temperature))


def _checkpoint_scorer(path: str, split_stats: bool, device: str, batch_size: int) -> Scorer:
    from fer_edge.errors import require

    require("torch")
    import torch

    from .checkpoint import build_from_checkpoint, load_checkpoint
    from .devices import resolve_device
    from .predict import predict_logits

    ckpt = load_checkpoint(path)
    model = build_from_checkpoint(ckpt, path).to(resolve_device(device))

    def run(x: np.ndarray) -> np.ndarray:
        return predict_logits(model, torch.from_numpy(x), batch_size=batch_size).cpu().numpy()

    norm = ckpt["norm"]
    return Scorer(ckpt["model_name"], "torch",
                  {"epoch": ckpt["epoch"], "checkpoint_val_accuracy": ckpt["best_val_accuracy"]},
                  norm["mean"], norm["std"], split_stats or ckpt.get("normalization") == "per_split", run,
                  tuple(ckpt.get("classes") or CLASSES), float(ckpt.get("temperature", 1.0)))


def scorer(model_path: str, *, device: str = "auto", threads: Optional[int] = None, split_stats: bool = False,
           batch_size: int = 256) -> Scorer:
    """Load ``model_path`` (``.onnx`` through the runtime, else a checkpoint in torch) for scoring."""
    if Path(model_path).suffix.lower() == ".onnx":
        return _onnx_scorer(model_path, split_stats, "cpu" if device == "auto" else device, threads, batch_size)
    return _checkpoint_scorer(model_path, split_stats, device, batch_size)


def check_label_set(classes: tuple[str, ...], ferplus: Optional[str], model_path: str) -> None:
    """A FER+ model is scored against FER+ labels and a FER2013 model against FER2013's: say which file is missing."""
    from fer_edge.labels import FERPLUS_CLASSES

    if ferplus and tuple(classes) != FERPLUS_CLASSES:
        raise InputError(f"{model_path} predicts {len(classes)} classes, not FER+'s 8: score it without --ferplus")
    if not ferplus and tuple(classes) != CLASSES:
        if tuple(classes) == FERPLUS_CLASSES:
            raise InputError(f"{model_path} is a FER+ model (8 classes): give its labels with --ferplus fer2013new.csv")
        raise InputError(f"{model_path} predicts classes {', '.join(classes)[:80]}, not FER2013's 7")


def evaluate(model_path: str, data: str, split: str = "validation", *, device: str = "auto",
             threads: Optional[int] = None, split_stats: bool = False,
             ferplus: Optional[str] = None) -> tuple[EvalReport, dict]:
    """Evaluate ``model_path`` (``.onnx`` or checkpoint) on ``split`` of ``data``; returns report and ROC curves.

    ``ferplus``: score a FER+ model against the FER+ majority labels of the same faces."""
    from fer_edge.runtime.default_model import resolve_model_path

    from .calibration import calibration

    p = resolve_model_path(model_path)  # "default": the packaged model
    if not p.exists():
        raise ModelError(f"{model_path}: model not found")
    model_path = str(p)
    score = scorer(model_path, device=device, threads=threads, split_stats=split_stats)
    check_label_set(score.classes, ferplus, model_path)
    images, labels = load_split(data, split, ferplus=ferplus)
    logits = score(images)
    report, curves = compute_report(labels, logits, score.classes, model=score.name, model_path=str(model_path),
                                    data=str(data), split=SPLIT_TO_USAGE[canonical_split(split)], backend=score.backend)
    cal = calibration(logits, labels, score.temperature)
    report.ece, report.nll, report.temperature = cal["ece"], cal["nll"], cal["temperature"]
    report.mean_confidence = cal["mean_confidence"]
    report.label_set = "ferplus" if ferplus else "fer2013"
    if ferplus:
        report.extra["protocol"] = ("FER+ majority: single votes dropped, a face is labelled when one class holds "
                                    "more than half of the remaining votes (so no ties), faces whose majority is "
                                    "unknown or not a face, or without a majority, left out")
        report.extra["ferplus"] = str(ferplus)
    report.extra.update(score.extra)
    return report, curves


REPORT_FILES = ("report.json", "report.md", "per_class.csv", "confusion.csv", "confusion.png", "roc.png")


def write_report(report: EvalReport, curves: dict, out_dir: str | Path,
                 notes: Optional[list[str]] = None) -> list[Path]:
    """report.json, report.md, per_class.csv, confusion.csv, confusion.png and roc.png in ``out_dir``.

    Plots that cannot be drawn (matplotlib missing or failing) are not silently left out:
    the reason is appended to ``notes`` (and logged when ``notes`` is None).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    output_text(out / "report.json", jsonout.dumps(report.to_dict(), indent=2) + "\n")
    output_text(out / "report.md", markdown_table(report))
    output_text(out / "per_class.csv", per_class_csv(report))
    output_text(out / "confusion.csv",
                "true\\pred," + ",".join(report.classes) + "\n"
                + "".join(f"{n}," + ",".join(map(str, row)) + "\n"
                          for n, row in zip(report.classes, report.confusion_matrix)))
    written += [out / f for f in REPORT_FILES[:4]]
    from .plots import PlotUnavailable, plot_confusion, plot_roc

    title = f"{report.model} on {report.split}"
    for name, draw in (("confusion.png", lambda f: plot_confusion(np.array(report.confusion_matrix), report.classes,
                                                                  f, title=title)),
                       ("roc.png", lambda f: plot_roc(curves, f, title=f"ROC, {title}"))):
        try:
            draw(out / name)
            written.append(out / name)
        except PlotUnavailable as exc:
            _note(notes, f"{name} not drawn: {exc}")
        except Exception as exc:  # a plot failing must not lose the tables already written
            _note(notes, f"{name} not drawn: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    return written


def _note(notes: Optional[list[str]], text: str) -> None:
    if notes is None:
        import logging

        logging.getLogger("fer_edge").warning("fer-edge: %s", text)
    else:
        notes.append(text)
