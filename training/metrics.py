"""Classification metrics for an evaluation report (numpy + scikit-learn; never torch).

The ONNX evaluation path runs on an edge install plus scikit-learn, so this module
and everything it imports stay free of torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np


@dataclass
class ClassMetrics:
    precision: float
    recall: float  # = TPR
    f1: float
    support: int
    tpr: float
    fpr: float
    auc: Optional[float]  # one-vs-rest ROC AUC; None when the class is absent (or alone) in the split


@dataclass
class EvalReport:
    model: str
    model_path: str
    data: str
    split: str
    n: int
    accuracy: float
    loss: float  # mean cross-entropy of the logits (no label smoothing)
    classes: list[str]
    per_class: dict[str, ClassMetrics]
    macro: dict[str, float]
    weighted: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    backend: str = ""
    label_set: str = "fer2013"  # which labels ``accuracy`` is against: "fer2013", or "ferplus" (majority protocol)
    ece: Optional[float] = None  # expected calibration error, 15 bins, of the probabilities the runtime shows
    nll: Optional[float] = None  # negative log-likelihood of the same probabilities
    temperature: float = 1.0  # the model's softmax temperature (applied for ece / nll)
    mean_confidence: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


RocCurves = dict[str, tuple[np.ndarray, np.ndarray, float]]  # class -> (fpr, tpr, auc)


def roc_curves(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> RocCurves:
    """One-vs-rest ROC per class that has both positives and negatives in ``labels``."""
    from sklearn.metrics import auc, roc_curve

    curves = {}
    for c, name in enumerate(classes):
        positive = labels == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        curves[name] = (fpr, tpr, float(auc(fpr, tpr)))
    return curves


def compute_report(
    labels: np.ndarray,
    logits: np.ndarray,
    classes: Sequence[str],
    *,
    model: str = "",
    model_path: str = "",
    data: str = "",
    split: str = "",
    backend: str = "",
) -> tuple[EvalReport, RocCurves]:
    """Accuracy, loss, per-class P/R/F1/TPR/FPR/AUC, averages and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float32)
    k = len(classes)
    if logits.ndim != 2 or logits.shape[1] != k:
        raise ValueError(f"logits of shape {logits.shape} do not match {k} classes")
    logp = log_softmax(logits)
    pred = logits.argmax(1)
    n = len(labels)
    idx = list(range(k))
    cm = confusion_matrix(labels, pred, labels=idx)
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=idx, zero_division=0)
    probs = np.exp(logp)
    curves = roc_curves(labels, probs, classes)
    per_class = {}
    for c, name in enumerate(classes):
        tp = cm[c, c]
        fp = cm[:, c].sum() - tp
        fn = cm[c, :].sum() - tp
        tn = n - tp - fp - fn
        per_class[name] = ClassMetrics(
            precision=float(p[c]), recall=float(r[c]), f1=float(f[c]), support=int(s[c]),
            tpr=float(tp / (tp + fn)) if tp + fn else 0.0,
            fpr=float(fp / (fp + tn)) if fp + tn else 0.0,
            auc=curves[name][2] if name in curves else None,
        )
    averages = {}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(labels, pred, labels=idx, average=avg, zero_division=0)
        averages[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    report = EvalReport(
        model=model, model_path=model_path, data=data, split=split, n=n,
        accuracy=float((pred == labels).mean()) if n else 0.0,
        loss=float(-logp[np.arange(n), labels].mean()) if n else 0.0,
        classes=list(classes), per_class=per_class, macro=averages["macro"], weighted=averages["weighted"],
        confusion_matrix=cm.astype(int).tolist(), backend=backend,
    )
    return report, curves


def markdown_table(report: EvalReport) -> str:
    lines = [
        f"# {report.model} on {report.split} ({report.n} faces)",
        "",
        f"accuracy **{report.accuracy:.4f}**, loss {report.loss:.4f}, "
        f"macro F1 {report.macro['f1']:.4f}, weighted F1 {report.weighted['f1']:.4f}"
        + (f", ECE {report.ece:.4f}, NLL {report.nll:.4f} (temperature {report.temperature:.3f}, "
           f"mean confidence {report.mean_confidence:.3f})" if report.ece is not None else "")
        + (" (FER+ majority labels)" if report.label_set == "ferplus" else ""),
        "",
        "| class | precision | recall (TPR) | F1 | FPR | AUC | support |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in report.per_class.items():
        auc = f"{m.auc:.4f}" if m.auc is not None else "-"
        lines.append(f"| {name} | {m.precision:.4f} | {m.recall:.4f} | {m.f1:.4f} | {m.fpr:.4f} | {auc} | {m.support} |")
    for avg in ("macro", "weighted"):
        a = getattr(report, avg)
        lines.append(f"| *{avg} avg* | {a['precision']:.4f} | {a['recall']:.4f} | {a['f1']:.4f} | | | {report.n} |")
    lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
              "| true \\ pred | " + " | ".join(report.classes) + " |",
              "|---" * (len(report.classes) + 1) + "|"]
    for name, row in zip(report.classes, report.confusion_matrix):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def per_class_csv(report: EvalReport) -> str:
    rows = ["class,precision,recall,f1,tpr,fpr,auc,support"]
    for name, m in report.per_class.items():
        auc = "" if m.auc is None else f"{m.auc:.6f}"
        rows.append(f"{name},{m.precision:.6f},{m.recall:.6f},{m.f1:.6f},{m.tpr:.6f},{m.fpr:.6f},{auc},{m.support}")
    return "\n".join(rows) + "\n"
