"""Inference of a torch model over a set of faces: what validation, ``eval`` and averaging share.

It lives apart from the training loop so that scoring a checkpoint imports no optimizer,
schedule or step code.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from fer_edge.labels import NUM_CLASSES


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 512,
    amp: Optional[torch.dtype] = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """fp32 logits of normalised faces ``x`` (N, 1, 48, 48), batch by batch, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out.append(model(xb).float())
    return torch.cat(out) if out else torch.zeros(0, NUM_CLASSES, device=device)
