"""PNG plots of a run and of an evaluation (matplotlib, Agg backend; no torch here)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fer_edge.atomic import save_figure


class PlotUnavailable(ImportError):
    """matplotlib is not installed: the caller reports which plot was not drawn."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed (pip install 'fer-edge[eval]')") from None

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict], path: str | Path, title: str = "") -> None:
    """Loss and accuracy per epoch, training and validation side by side."""
    if not history:
        return
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 40 else {}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train", **style)
    ax_loss.plot(epochs, [r["val_loss"] for r in history], label="validation", **style)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [r["train_acc"] for r in history], label="train", **style)
    ax_acc.plot(epochs, [r["val_acc"] for r in history], label="validation", **style)
    best = max(history, key=lambda r: r["val_acc"])
    ax_acc.axvline(best["epoch"], color="gray", linestyle=":", label=f"best {best['val_acc']:.3f}")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix (recall per true class) with counts in the cells."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path, title: str = "") -> None:
    """One-vs-rest ROC curve per class; ``curves`` maps class -> (fpr, tpr, auc)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC (one vs rest)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
