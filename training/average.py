"""Weight averaging: one checkpoint from the last epochs of a run (stochastic weight averaging).

Why: at the end of a cosine schedule the weights still wander around the minimum from epoch
to epoch; their average sits nearer its centre and usually reads a few faces more than any
one of them (Izmailov et al., 2018), at no cost at inference. Keep the epochs with
``fer-edge train --keep-epochs K``, then average them here. BatchNorm statistics do not
average like weights, so they are recomputed on the training faces (plain, no augmentation)
with ``torch.optim.swa_utils.update_bn``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

from fer_edge.errors import InputError, ModelError

from .checkpoint import atomic_save, build_from_checkpoint, load_checkpoint, model_file


def average_checkpoints(paths: Sequence[str | Path], data: str, out: str | Path, batch_size: int = 512,
                        device: str | None = None, ferplus: str | None = None) -> dict:
    """Average the weights of ``paths`` (one architecture), recompute BatchNorm on ``data``'s
    training faces, and write a checkpoint ``export`` and ``eval`` take. Returns it.

    ``device``: where BatchNorm is recomputed and the result validated (default: CUDA when
    present, so a GPU does it in seconds; the weights written are on the CPU)."""
    import torch
    from torch.optim.swa_utils import update_bn

    from .evaluate import normalize_np
    from fer_edge.data.loading import load_dataset

    if len(paths) < 2:
        raise InputError("averaging needs at least two checkpoints")
    ckpts = [load_checkpoint(p) for p in paths]
    names = {c["model_name"] for c in ckpts}
    if len(names) != 1:
        raise ModelError(f"checkpoints of different architectures cannot be averaged: {', '.join(sorted(names))}")
    first = ckpts[0]["model"]
    for p, c in zip(paths, ckpts):
        if c["model"].keys() != first.keys() or any(c["model"][k].shape != v.shape for k, v in first.items()):
            raise ModelError(f"{p}: its weights do not match {paths[0]}'s (another width?)")
    avg = {k: (sum(c["model"][k].float() for c in ckpts) / len(ckpts)) if v.is_floating_point() else ckpts[-1]["model"][k]
           for k, v in first.items()}
    # A model file, like best.pt: without the training state a last.pt would carry.
    ckpt = copy.deepcopy(model_file({k: v for k, v in ckpts[-1].items() if k != "model"}, "averaged"))
    ckpt["model"] = avg
    model = build_from_checkpoint(ckpt, str(paths[-1]))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev)
    dataset = load_dataset(data, ferplus=ferplus)
    train = dataset.subset("train")
    if len(train) == 0:
        raise InputError(f"{data}: no training faces to recompute BatchNorm statistics on")
    x = torch.from_numpy(normalize_np(train.images, ckpt["norm"]["mean"], ckpt["norm"]["std"]))
    update_bn([x[i : i + batch_size] for i in range(0, len(x), batch_size)], model, device=dev)
    ckpt["model"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt["averaged_from"] = [str(p) for p in paths]
    ckpt["epoch"] = max(int(c["epoch"]) for c in ckpts)
    # Its own validation accuracy (fp32), where best.pt has the accuracy of its epoch.
    val = dataset.subset("validation")
    if len(val):
        from .splits import labelled
        from .predict import predict_logits

        val_images, val_labels, _ = labelled(val)  # FER+ (votes joined): the majority protocol
        vx = torch.from_numpy(normalize_np(val_images, ckpt["norm"]["mean"], ckpt["norm"]["std"]))
        pred = predict_logits(model.eval(), vx).argmax(1).numpy()
        ckpt["best_val_accuracy"] = float((pred == val_labels).mean())
    else:
        ckpt["best_val_accuracy"] = -1.0  # nothing to validate on (the export records no accuracy)
    atomic_save(ckpt, out)
    return ckpt
