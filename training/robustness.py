"""``fer-edge eval --robustness``: how much accuracy a model loses when the photo changes.

Users' faces are not FER2013's curated crops: a webcam in a dim room, a low-contrast
sensor, a slightly soft focus, a head tilted a little, a heavily compressed JPEG, a
mirrored selfie. Each perturbation here is applied to every face of the evaluated
split (uint8 pixels, as a camera would deliver them), the model scores the result, and
the report gives the accuracy and the drop in points against the clean faces. The
perturbations are plain numpy / OpenCV, so an ``.onnx`` model is checked without torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from fer_edge.labels import NUM_CLASSES
from fer_edge import jsonout
from fer_edge.atomic import output_text

Faces = np.ndarray  # (N, 48, 48) uint8


def _scale(factor: float) -> Callable[[Faces], Faces]:
    def f(x: Faces) -> Faces:
        return np.clip(np.rint(x.astype(np.float32) * factor), 0, 255).astype(np.uint8)

    return f


def _contrast(factor: float) -> Callable[[Faces], Faces]:
    """Compress each face's range around its own mean (a flat, hazy image)."""

    def f(x: Faces) -> Faces:
        xf = x.astype(np.float32)
        m = xf.mean(axis=(1, 2), keepdims=True)
        return np.clip(np.rint(m + (xf - m) * factor), 0, 255).astype(np.uint8)

    return f


def _blur(sigma: float) -> Callable[[Faces], Faces]:
    def f(x: Faces) -> Faces:
        return np.stack([cv2.GaussianBlur(face, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) for face in x])

    return f


def _rotate(degrees: float) -> Callable[[Faces], Faces]:
    def f(x: Faces) -> Faces:
        h, w = x.shape[1:]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
        return np.stack([cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                         for face in x])

    return f


def _jpeg(quality: int) -> Callable[[Faces], Faces]:
    def f(x: Faces) -> Faces:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        return np.stack([cv2.imdecode(cv2.imencode(".jpg", face, params)[1], cv2.IMREAD_GRAYSCALE) for face in x])

    return f


def _mirror(x: Faces) -> Faces:
    return np.ascontiguousarray(x[:, :, ::-1])


@dataclass(frozen=True)
class Perturbation:
    name: str
    kind: str  # exposure | contrast | blur | rotation | jpeg | mirror
    apply: Callable[[Faces], Faces] = field(repr=False, compare=False)


PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("dim x0.4", "exposure", _scale(0.4)),
    Perturbation("dim x0.7", "exposure", _scale(0.7)),
    Perturbation("bright x1.4", "exposure", _scale(1.4)),
    Perturbation("contrast x0.5", "contrast", _contrast(0.5)),
    Perturbation("blur sigma 1", "blur", _blur(1.0)),
    Perturbation("rotate +10deg", "rotation", _rotate(10.0)),
    Perturbation("rotate -10deg", "rotation", _rotate(-10.0)),
    Perturbation("jpeg q30", "jpeg", _jpeg(30)),
    Perturbation("mirror", "mirror", _mirror),
)


@dataclass
class RobustnessRow:
    perturbation: str
    kind: str
    accuracy: float
    macro_f1: float
    drop_points: float  # clean accuracy minus this accuracy, in percentage points (positive = worse)


@dataclass
class RobustnessReport:
    model: str
    split: str
    faces: int
    clean_accuracy: float
    clean_macro_f1: float
    rows: list[RobustnessRow]

    @property
    def worst(self) -> RobustnessRow:
        return max(self.rows, key=lambda r: r.drop_points)

    def to_dict(self) -> dict:
        d = asdict(self)
        w = self.worst
        d["worst"] = {"perturbation": w.perturbation, "drop_points": w.drop_points}
        return d

    def markdown(self) -> str:
        lines = [
            f"Robustness of {self.model} on {self.split} ({self.faces:,} faces): "
            f"clean accuracy {100 * self.clean_accuracy:.2f} %, macro-F1 {self.clean_macro_f1:.3f}",
            "",
            "| perturbation | accuracy | drop (points) | macro-F1 |",
            "| --- | --: | --: | --: |",
        ]
        lines += [f"| {r.perturbation} | {100 * r.accuracy:.2f} % | {r.drop_points:+.2f} | {r.macro_f1:.3f} |"
                  for r in self.rows]
        w = self.worst
        lines += ["", f"Worst: {w.perturbation}, {w.drop_points:+.2f} points.", ""]
        return "\n".join(lines)


def accuracy_and_macro_f1(labels: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[float, float]:
    """Accuracy and macro-F1 over the classes present in ``labels`` (numpy only: no scikit-learn needed)."""
    cm = np.bincount(labels * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = np.diag(cm).astype(np.float64)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = cm.sum(1) > 0
    return float(tp.sum() / max(1, cm.sum())), float(f1[present].mean()) if present.any() else 0.0


def robustness_report(
    score: Callable[[Faces], np.ndarray],
    images: Faces,
    labels: np.ndarray,
    *,
    model: str,
    split: str,
    perturbations: tuple[Perturbation, ...] = PERTURBATIONS,
    progress: Optional[Callable[[str], None]] = None,
) -> RobustnessReport:
    """Score ``images`` clean and under each perturbation; ``score`` maps uint8 faces to logits."""
    labels = np.asarray(labels, dtype=np.int64)
    clean_logits = score(images)
    k = max(int(clean_logits.shape[1]), NUM_CLASSES)  # a FER+ model: 8 classes
    clean_acc, clean_f1 = accuracy_and_macro_f1(labels, clean_logits.argmax(1), k)
    rows = []
    for p in perturbations:
        if progress:
            progress(p.name)
        acc, f1 = accuracy_and_macro_f1(labels, score(p.apply(images)).argmax(1), k)
        rows.append(RobustnessRow(p.name, p.kind, acc, f1, round(100 * (clean_acc - acc), 4)))
    return RobustnessReport(model, split, len(labels), clean_acc, clean_f1, rows)


ROBUSTNESS_FILES = ("robustness.json", "robustness.md")


def write_robustness(report: RobustnessReport, out_dir: str | Path) -> list[Path]:
    """robustness.json and robustness.md in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    output_text(out / ROBUSTNESS_FILES[0], jsonout.dumps(report.to_dict(), indent=2) + "\n")
    output_text(out / ROBUSTNESS_FILES[1], report.markdown())
    return [out / name for name in ROBUSTNESS_FILES]
