"""Knowledge distillation: a small student learns from the soft predictions of trained teachers.

Why: the default model must stay under a millisecond on a laptop, which caps its width, but
a wide net trained on a GPU reads FER2013's ambiguous faces better; its full probability
vector (this face is 60% sad, 30% neutral) carries more than the one hard label, and a
student trained on it gains accuracy at no inference cost (Hinton et al., 2015).

A teacher is any fer-edge checkpoint (``best.pt``); several are averaged in logit space, an
ensemble teacher. The teacher sees exactly the student's augmented (and mixed) batch, so
the targets always describe the image the student is shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from fer_edge.errors import InputError

from .checkpoint import build_from_checkpoint, load_checkpoint


@dataclass
class _Member:
    name: str
    model: nn.Module
    scale: float  # student-normalised x -> this teacher's normalisation: x * scale + shift
    shift: float
    best_val_accuracy: Optional[float]


class Teacher:
    """One or more trained checkpoints, frozen, whose averaged logits are the soft targets."""

    def __init__(self, paths: Sequence[str], mean: float, std: float, device: torch.device,
                 channels_last: bool = False, amp: Optional[torch.dtype] = None,
                 classes: Optional[Sequence[str]] = None):
        if not paths:
            raise InputError("distillation needs at least one --teacher checkpoint")
        self.device, self.channels_last, self.amp = device, channels_last, amp
        self.members: list[_Member] = []
        for path in paths:
            if not Path(path).exists():
                raise InputError(f"--teacher {path}: no such file")
            ckpt = load_checkpoint(path)
            if classes is not None and list(ckpt.get("classes", classes)) != list(classes):
                raise InputError(f"--teacher {path}: it predicts {len(ckpt['classes'])} classes "
                                 f"({', '.join(ckpt['classes'])}); this run trains {len(classes)}")
            with torch.random.fork_rng(devices=[]):  # building draws init weights: keep the run's RNG as it was
                model = build_from_checkpoint(ckpt, str(path)).float().to(device)
            if channels_last:
                model.to(memory_format=torch.channels_last)
            for p in model.parameters():
                p.requires_grad_(False)
            # The teacher was trained on (x - its mean) / its std; the student's batch is
            # (x - mean) / std. Re-expressed exactly, so teachers from other data still fit.
            norm = ckpt.get("norm") or {}
            t_mean, t_std = float(norm.get("mean", mean)), float(norm.get("std", std))
            self.members.append(_Member(
                name=f"{ckpt['model_name']} ({path})", model=model.eval(), scale=std / t_std,
                shift=(mean - t_mean) / t_std,
                best_val_accuracy=ckpt.get("best_val_accuracy"),
            ))

    def describe(self) -> str:
        parts = []
        for m in self.members:
            acc = f", best val {m.best_val_accuracy:.4f}" if m.best_val_accuracy is not None else ""
            parts.append(f"{m.name}{acc}")
        return "; ".join(parts)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 mean logits of the members for the student-normalised batch ``x``."""
        total = None
        for m in self.members:
            xt = x if (m.scale == 1.0 and m.shift == 0.0) else x * m.scale + m.shift
            if self.channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
                out = m.model(xt).float()
            total = out if total is None else total + out
        assert total is not None
        return total / len(self.members)

    @torch.no_grad()
    def mirrored_logits(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Mean logits of every face of ``x`` and its mirror image, once, batch by batch.

        Why: for ``--distill-cached``. A small student trains several times faster than a
        large teacher runs, so scoring each clean face once (the mirror image averaged in,
        since a face's expression does not change with it) removes the teacher from the
        step loop. The crop, rotation and erasing the student sees then leave the target
        unchanged, as ``--distill-clean`` does for light and JPEG.
        """
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            out.append((self.logits(xb) + self.logits(torch.flip(xb, dims=(3,)))) / 2)
        return torch.cat(out)


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened distributions, times T^2 so its gradient
    keeps the scale of the hard-label loss whatever T is (Hinton et al.)."""
    t = temperature
    log_p = F.log_softmax(student_logits.float() / t, dim=1)
    q = F.softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * (t * t)
