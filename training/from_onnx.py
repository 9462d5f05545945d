"""``fer-edge import``: rebuild a training checkpoint from an exported ONNX model.

Why: the shipped ``.onnx`` files are the durable form of our weights. A checkpoint kept
on some machine may be gone tomorrow; the model inside the package is not. This module
turns any fer-edge export (fp32, fp16 or int8 QDQ) back into a checkpoint that
``train --init``, ``--teacher``, ``eval`` and ``export`` take. An export with ``--tta flip``
(the network run on each face and its mirror, logits averaged) gives the network alone:
``export --tta flip`` wraps it again.

How: every weighted ONNX node (``Conv``, ``Gemm``) carries the module path of the layer it
came from in its name (``/layer1/layer1.0/conv1/Conv`` is ``layer1.0.conv1``), so the
weights go back by name, not by guessing from the order. int8 weights are dequantized
(``(q - zero_point) * scale``, per channel). Export folded each BatchNorm into the
convolution before it, so the folded kernel goes into the convolution and the BatchNorm is
re-inserted so that it changes nothing in eval mode: with ``data`` its running statistics are
those the folded convolution produces on the training faces (``gamma = sqrt(var + eps)``,
``beta = mean + bias``), which keeps a fine-tune's first batches, normalised by their own
statistics, close to the exported model; without data it is the identity plus the bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from fer_edge.errors import ModelError

from .checkpoint import FORMAT, VERSION
from .export import TTA_MODES, with_flip_average

WEIGHTED_OPS = ("Conv", "Gemm")


@dataclass
class ImportResult:
    path: str
    model: str
    layers: int
    bn_from_data: bool
    argmax_agreement: Optional[float]  # with the ONNX model, on validation faces
    max_abs_diff: Optional[float]  # logits, same faces
    faces: int

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def source_digest(path: str | Path) -> str:
    """SHA-256 of an ONNX file, stored in the checkpoint imported from it (``imported_from``): what says that
    an import found later (train's OUT/imported/NAME.pt) is of this very file, not of an earlier one of the
    same name, whatever the paths, sizes and time stamps."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def imported_from(ckpt: dict[str, Any], onnx_path: str | Path, data: Optional[str]) -> bool:
    """Whether ``ckpt`` was imported from the file ``onnx_path`` holds now, with BatchNorm statistics from
    ``data`` (a checkpoint imported before digests were stored never matches: it is imported again)."""
    src = ckpt.get("imported_from")
    return (isinstance(src, dict) and src.get("sha256") == source_digest(onnx_path)
            and (ckpt.get("config") or {}).get("data") == (data or ""))


def module_path(node_name: str) -> str:
    """``/features/features.0/Conv`` -> ``features.0``; ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``.

    The TorchScript exporter names each node by its scopes: a child's scope is either the
    parent's scope plus ``.index`` (Sequential children) or its attribute name alone."""
    comps: list[str] = []
    for seg in [p for p in node_name.split("/") if p][:-1]:
        if comps and seg.startswith(comps[-1] + "."):  # a Sequential's child: "downsample" -> "downsample.0"
            comps[-1] = seg
        else:
            comps.append(seg)
    return ".".join(comps)


def _constants(proto) -> dict[str, np.ndarray]:
    """Every initializer and Constant output, with DequantizeLinear of constants folded to float32."""
    from onnx import numpy_helper

    values: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in values:
            q = values[node.input[0]].astype(np.float32)
            scale = values[node.input[1]].astype(np.float32)
            zp = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else np.float32(0)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and q.ndim > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zp = scale.reshape(shape), np.asarray(zp).reshape(shape)
            values[node.output[0]] = (q - zp) * scale
        elif node.op_type == "Cast" and node.input[0] in values:  # fp16 exports cast their weights up
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
    return values


def onnx_weights(proto) -> dict[str, tuple[np.ndarray, Optional[np.ndarray]]]:
    """``module path -> (weight, bias)`` for every Conv / Gemm node, as float32."""
    values = _constants(proto)
    out: dict[str, tuple[np.ndarray, Optional[np.ndarray]]] = {}
    for node in proto.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        path = module_path(node.name)
        if not path or node.input[1] not in values:
            raise ModelError(f"ONNX node {node.name!r} has no constant weight (not a fer-edge export?)")
        w = values[node.input[1]].astype(np.float32)
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            if not trans_b:
                w = w.T
        b = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] in values else None
        out[path] = (np.ascontiguousarray(w), b)
    return out


def _following_bn(modules: list[tuple[str, Any]], index: int):
    """The BatchNorm registered right after the layer at ``index`` (before any other weighted layer)."""
    from torch import nn

    for name, m in modules[index + 1:]:
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return name, m
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            return None
    return None


def import_onnx(onnx_path: str | Path, out: str | Path, *, data: Optional[str] = None, max_faces: int = 4096,
                batch_size: int = 256) -> ImportResult:
    """Write a checkpoint at ``out`` holding the weights of the fer-edge ONNX model ``onnx_path``."""
    import onnx
    import torch
    from torch import nn

    from fer_edge.contract import METADATA_KEY, ModelContract

    from .checkpoint import atomic_save
    from .models import create_model, list_models

    try:
        proto = onnx.load(str(onnx_path))
    except Exception as exc:
        raise ModelError(f"{onnx_path}: not an ONNX model ({type(exc).__name__})") from None
    digest = source_digest(onnx_path)  # of the bytes just read
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in meta:
        raise ModelError(f"{onnx_path}: no {METADATA_KEY!r} metadata (not exported by fer-edge)")
    try:
        contract = ModelContract.from_json(meta[METADATA_KEY])
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{onnx_path}: invalid fer-edge metadata ({exc})") from None
    if contract.model not in list_models():
        raise ModelError(f"{onnx_path}: architecture {contract.model!r} is not one this fer-edge can train")
    tta = contract.extra.get("tta", "none")
    if tta not in TTA_MODES:
        raise ModelError(f"{onnx_path}: exported with --tta {tta}, which this fer-edge cannot import")
    weights = onnx_weights(proto)
    model = create_model(contract.model, num_classes=len(contract.classes)).eval()
    # what the ONNX graph computes: with --tta flip, export's wrapper around the network, whose layer
    # names (the wrapper's prefix included) are the ones the ONNX nodes carry; its weights are the network's
    forward = with_flip_average(model) if tta == "flip" else model
    modules = list(forward.named_modules())
    layers = [(i, name, m) for i, (name, m) in enumerate(modules) if isinstance(m, (nn.Conv2d, nn.Linear))]
    missing = [name for _, name, _ in layers if name not in weights]
    extra = sorted(set(weights) - {name for _, name, _ in layers})
    if missing or extra:
        raise ModelError(f"{onnx_path}: its layers do not match a {contract.model!r} model "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
    bns = []
    with torch.no_grad():
        for i, name, m in layers:
            w, b = weights[name]
            if tuple(w.shape) != tuple(m.weight.shape):
                raise ModelError(f"{onnx_path}: {name} has shape {w.shape}, a {contract.model!r} model "
                                 f"needs {tuple(m.weight.shape)}")
            m.weight.copy_(torch.from_numpy(w))
            bias = torch.from_numpy(b) if b is not None else torch.zeros(w.shape[0])
            follow = _following_bn(modules, i)
            if follow is None:
                if m.bias is None:
                    if b is not None and float(np.abs(b).max()) > 0:
                        raise ModelError(f"{onnx_path}: {name} has a bias that the {contract.model!r} layer lacks")
                else:
                    m.bias.copy_(bias)
                continue
            if m.bias is not None:
                m.bias.zero_()
            _, bn = follow
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) = 1: the identity ...
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)  # ... plus the folded bias
            bns.append((m, bn, bias))
    faces = train_faces = None
    if data:
        from fer_edge.data.loading import load_dataset

        ds = load_dataset(data)  # read once: BatchNorm statistics and the agreement check
        train_faces = _split_faces(ds, contract, "train", max_faces)
        faces = _split_faces(ds, contract, "validation", max_faces)
        if faces is None:
            faces = _split_faces(ds, contract, "train", min(max_faces, 512))
    if train_faces is not None and bns:
        _reinsert_bn_statistics(model, bns, train_faces, batch_size)
    agree = diff = None
    n = 0
    if faces is not None:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        ref = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: faces[i:i + batch_size]})[0]
                              for i in range(0, len(faces), batch_size)])
        with torch.no_grad():
            got = torch.cat([forward(torch.from_numpy(faces[i:i + batch_size]))
                             for i in range(0, len(faces), batch_size)]).numpy()
        agree = float((ref.argmax(1) == got.argmax(1)).mean())
        diff = float(np.abs(ref - got).max())
        n = len(faces)
    acc = contract.val_accuracy
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "kind": "imported",
        "model_name": contract.model,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "epoch": int(contract.extra.get("epoch", 0)),
        "best_val_accuracy": float(acc) if acc is not None else -1.0,
        "best_epoch": int(contract.extra.get("epoch", 0)),
        "finished": True,
        "norm": {"mean": float(contract.mean), "std": float(contract.std), "scope": "train"},
        "val_norm": None,
        "normalization": contract.normalization,
        "val_source": contract.extra.get("val_source"),
        "classes": list(contract.classes),
        "label_set": contract.label_set,
        "temperature": float(contract.temperature),
        # tta "flip": the checkpoint is the network alone; `export --tta flip` bakes the averaging back in
        "imported_from": {"path": str(onnx_path), "sha256": digest,
                          "precision": contract.extra.get("precision", "fp32"), "tta": tta},
        "config": {"data": data or "", "model": contract.model},
        "history": [],
    }
    atomic_save(ckpt, out)
    return ImportResult(str(out), contract.model, len(layers), train_faces is not None, agree, diff, n)


def _split_faces(ds, contract, split: str, n: int) -> Optional[np.ndarray]:
    """Up to ``n`` faces of ``split`` (a seeded sample, in row order), normalised by the contract."""
    from .evaluate import normalize_np

    sub = ds.subset(split)
    if not len(sub):
        return None
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(sub), size=min(n, len(sub)), replace=False))
    return normalize_np(np.ascontiguousarray(sub.images[idx]), contract.mean, contract.std)


def _reinsert_bn_statistics(model, bns, faces: np.ndarray, batch_size: int) -> None:
    """Give each re-inserted BatchNorm the statistics its convolution produces on ``faces``.

    The eval-mode output does not change: ``gamma = sqrt(var + eps)`` and ``beta = mean + bias``
    turn ``gamma * (y - mean) / sqrt(var + eps) + beta`` back into ``y + bias``."""
    import torch

    sums: dict[int, list] = {}
    hooks = []
    for k, (conv, _, _) in enumerate(bns):
        def hook(_m, _inp, y, k=k):
            dims = [d for d in range(y.dim()) if d != 1]
            acc = sums.setdefault(k, [0.0, 0.0, 0])
            acc[0] = acc[0] + y.double().sum(dims)
            acc[1] = acc[1] + y.double().pow(2).sum(dims)
            acc[2] += y.numel() // y.shape[1]

        hooks.append(conv.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for i in range(0, len(faces), batch_size):
                model(torch.from_numpy(faces[i:i + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for k, (_, bn, bias) in enumerate(bns):
            s, s2, count = sums[k]
            mean = (s / count).float()
            var = (s2 / count - (s / count) ** 2).clamp_min(0).float()
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean + bias)
            if not math.isfinite(float(bn.weight.sum())):
                raise ModelError("BatchNorm statistics are not finite")
