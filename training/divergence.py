"""Early divergence, told while it happens: the warning after an epoch, the error mid-epoch.

The signs are cheap to compute from what the loop already has (its history, the validation
predictions per class), so a run with too high an LR says so at once instead of in its curves.
"""
from __future__ import annotations

import math
from typing import NoReturn, Optional

import numpy as np
import torch

from fer_edge.errors import ModelError
from fer_edge.labels import FERPLUS_CLASSES  # FER+ is FER2013 + contempt, same order

COLLAPSE_SHARE = 0.9  # one class this share of the validation predictions: the net has collapsed
RISE_EPOCHS = 3  # from this epoch on, a training loss above the first epoch's means it is diverging


def divergence_warning(history: list[dict], train_loss: float, pred_counts: np.ndarray,
                       true_counts: np.ndarray, *, min_epochs: int = RISE_EPOCHS,
                       min_faces: int = 300) -> Optional[str]:
    """Why this epoch looks like early divergence, or None.

    Two signs, both cheap and both seen in real failed runs (an LR too high for a net
    without BatchNorm): the network predicts (almost) one class for every validation face
    although the labels are not like that, or the training loss is back above where the
    first epoch left it. Reported as a warning in the log, so the user can stop and lower
    --lr instead of discovering it from the curves hours later.

    All predictions one class is also what a net that has barely trained gives: before epoch
    ``min_epochs``, or with fewer than ``min_faces`` validation faces (a run on a few hundred
    faces), it says so and to train longer or on more faces, not to lower --lr; unless the
    training loss is far above a uniform guess's (twice ln(classes)), which only divergence gives.
    """
    reasons = []
    total = float(pred_counts.sum())
    top = int(np.argmax(pred_counts))
    collapsed = (total > 0 and pred_counts[top] / total >= COLLAPSE_SHARE
                 and true_counts[top] / max(1, true_counts.sum()) < 0.5)
    if collapsed:
        reasons.append(f"{100 * pred_counts[top] / total:.0f}% of validation faces are predicted '{FERPLUS_CLASSES[top]}'")
    rising = len(history) + 1 >= RISE_EPOCHS and bool(history) and train_loss > history[0]["train_loss"]
    if rising:
        reasons.append(f"training loss {train_loss:.4f} is above epoch 1's {history[0]['train_loss']:.4f}")
    if not reasons:
        return None
    epoch, faces = len(history) + 1, int(true_counts.sum())
    blown_up = train_loss > 2 * math.log(max(2, len(pred_counts)))
    if collapsed and not rising and not blown_up and (epoch < min_epochs or faces < min_faces):
        return (f"{reasons[0]}: all predictions one class after {epoch} epoch{'s' if epoch > 1 else ''} with "
                f"{faces} validation faces, too little training to tell divergence from a net that has not "
                "learned yet (train for more epochs, or on more faces)")
    return "; ".join(reasons) + " (early divergence? lower --lr or use --optimizer adamw)"


def diverged(loss: torch.Tensor, epoch: int, step: int, optimizer: torch.optim.Optimizer) -> NoReturn:
    """Stop the run: its loss is no longer finite (a model error that says which LR to lower)."""
    raise ModelError(
        f"training diverged (loss {loss.item()}) at epoch {epoch} step {step}; "
        f"lower --lr (peak now {optimizer.param_groups[0]['initial_lr']:.3g}) or use --optimizer adamw"
    )
