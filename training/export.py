"""``fer-edge export``: checkpoint -> ONNX with the preprocessing contract inside, parity-checked.

Exporter: torch's TorchScript-based exporter (``dynamo=False``) at opset 17. It is
what this project tests: it takes well under a second for every model here, folds
BatchNorm into the convolutions, and its graphs run on every ONNX Runtime from 1.14
on. ``dynamo=True`` (opset 18) also works for all five models and can be chosen with
``--dynamo``; it is ~10x slower to export and gives the same numbers.

After export the ONNX Runtime logits are compared with PyTorch's on random inputs
and on real faces; any difference above the allowance deletes the file and raises
ModelError: a silently wrong model is worse than none. The allowance is ``tolerance``
(1e-4) in absolute terms for logits up to 10 in magnitude, which covers trained
classifiers; beyond that it grows with the logits (1e-5 relative), because fp32
rounding is relative and an untrained network whose BatchNorm statistics have not
settled can produce logits of 1e5 that agree to 1e-6 relative yet differ by 0.1.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from fer_edge import __version__
from fer_edge.contract import METADATA_KEY, ModelContract
from fer_edge.atomic import write_failure
from fer_edge.errors import InputError, ModelError, UsageError
from fer_edge.labels import CLASSES, IMAGE_SIZE

DEFAULT_OPSET = 17
DYNAMO_OPSET = 18
TOLERANCE = 1e-4


@dataclass
class ParityResult:
    max_abs_diff_random: float
    max_abs_diff_real: Optional[float]  # None when no faces were available
    n_random: int
    n_real: int
    argmax_agreement_real: Optional[float]
    tolerance: float  # the allowance actually applied (see allowance())
    max_abs_logit: float

    @property
    def max_abs_diff(self) -> float:
        return max(self.max_abs_diff_random, self.max_abs_diff_real or 0.0)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def allowance(tolerance: float, max_abs_logit: float) -> float:
    """``tolerance`` absolute for |logits| <= 10, then ``tolerance / 10`` relative."""
    return tolerance * max(1.0, max_abs_logit / 10.0)


@dataclass
class ExportResult:
    path: str
    model: str
    opset: int
    contract: dict[str, Any]
    parity: dict[str, Any]
    size_bytes: int
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # "int8"/"fp16" -> info

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def set_contract(model_proto, contract: ModelContract) -> None:
    """Store the contract as JSON in the ONNX metadata (replacing an older one)."""
    kept = [p for p in model_proto.metadata_props if p.key != METADATA_KEY]
    del model_proto.metadata_props[:]
    for p in kept:
        model_proto.metadata_props.add(key=p.key, value=p.value)
    model_proto.metadata_props.add(key=METADATA_KEY, value=contract.to_json())


def read_contract(path: str | Path) -> ModelContract:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    for p in m.metadata_props:
        if p.key == METADATA_KEY:
            return ModelContract.from_json(p.value)
    raise ModelError(f"{path}: no {METADATA_KEY!r} metadata (not exported by fer-edge)")


def contract_for(ckpt: dict[str, Any], extra: Optional[dict[str, Any]] = None) -> ModelContract:
    norm = ckpt["norm"]
    return ModelContract(
        classes=tuple(ckpt.get("classes", CLASSES)),
        input_size=IMAGE_SIZE,
        channels=1,
        mean=float(norm["mean"]),
        std=float(norm["std"]),
        model=ckpt["model_name"],
        normalization=ckpt.get("normalization", "train"),
        val_accuracy=float(ckpt["best_val_accuracy"]) if ckpt.get("best_val_accuracy", -1) >= 0 else None,
        label_set=ckpt.get("label_set", "fer2013"),
        temperature=float(ckpt.get("temperature", 1.0)),  # refitted on PublicTest by export's accuracy step
        extra=dict(extra or {}),
    )


def real_faces(data: Optional[str], ckpt: dict[str, Any], n: int = 64) -> Optional[np.ndarray]:
    """Up to ``n`` validation faces (falling back to training faces) normalised as the model expects."""
    from .evaluate import normalize_np
    from .splits import load

    path = data or ckpt.get("config", {}).get("data")
    if not path or not Path(path).exists():
        return None
    ds = load(path)
    for split in ("validation", "train"):
        sub = ds.subset(split)
        if len(sub.labels):
            imgs = np.ascontiguousarray(sub.images[:n])
            return normalize_np(imgs, ckpt["norm"]["mean"], ckpt["norm"]["std"])
    return None


def check_parity(onnx_path: str | Path, torch_model, faces: Optional[np.ndarray], tolerance: float = TOLERANCE,
                 seed: int = 0) -> ParityResult:
    """Max |ORT - torch| logits on random normal inputs and on real faces (fp32, CPU)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    rand = rng.standard_normal((16, 1, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)

    def both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            ref = torch_model(torch.from_numpy(x)).float().numpy()
        return sess.run(["logits"], {"input": x})[0], ref

    a, b = both(rand)
    d_rand = float(np.abs(a - b).max())
    scale = float(np.abs(b).max())
    d_real = agree = None
    n_real = 0
    if faces is not None and len(faces):
        a, b = both(faces)
        d_real = float(np.abs(a - b).max())
        agree = float((a.argmax(1) == b.argmax(1)).mean())
        n_real = len(faces)
        scale = max(scale, float(np.abs(b).max()))
    return ParityResult(d_rand, d_real, len(rand), n_real, agree, allowance(tolerance, scale), scale)


def _identity(path: Path) -> Optional[tuple[int, int, int]]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


@contextlib.contextmanager
def whole_or_nothing(paths: Sequence[Path]) -> Iterator[None]:
    """An export leaves all the files it was asked for or none: when the block fails or is interrupted
    (Ctrl-C, SIGTERM), those of ``paths`` it wrote are removed, so no fp32 model is left without the int8
    one that failed (nor blocks the rerun, which would need --overwrite). Every writer here renames a new
    file into place or rewrites it, so "it wrote" is "the name holds another file, or a newer one, than
    before"; a file of an earlier export that the block did not replace stays."""
    before = {p: _identity(p) for p in paths}
    try:
        yield
    except BaseException:
        for p, was in before.items():
            now = _identity(p)
            if now is not None and now != was:
                with contextlib.suppress(OSError):
                    p.unlink()
        raise


TTA_MODES = ("none", "flip")


def with_flip_average(model):
    """``model`` whose logits are the mean over each face and its mirror image.

    Test-time augmentation inside the exported graph: every consumer of the ONNX file
    gets it (and pays for it in the measured latency: one forward pass over 2N faces),
    instead of each runtime having to remember to do it.
    """
    import torch
    from torch import nn

    class FlipAverage(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            both = self.inner(torch.cat([x, torch.flip(x, dims=[3])], 0))
            return both.unflatten(0, (2, -1)).mean(0)

    return FlipAverage(model).eval()


def export_checkpoint(
    checkpoint: str,
    out: str,
    *,
    data: Optional[str] = None,
    opset: Optional[int] = None,
    dynamo: bool = False,
    tolerance: float = TOLERANCE,
    tta: str = "none",
) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (.onnx) with the contract in its metadata; parity-checked.

    ``tta="flip"`` bakes flip averaging into the graph (:func:`with_flip_average`).
    """
    import onnx
    import torch

    from .checkpoint import build_from_checkpoint, load_checkpoint
    from .models import count_macs, count_parameters

    if tta not in TTA_MODES:
        raise ModelError(f"unknown test-time augmentation {tta!r}; use one of: {', '.join(TTA_MODES)}")
    ckpt = load_checkpoint(checkpoint)
    model = build_from_checkpoint(ckpt, checkpoint).float().cpu().eval()
    if tta == "flip":
        model = with_flip_average(model)
    opset = opset or (DYNAMO_OPSET if dynamo else DEFAULT_OPSET)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    x = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            if dynamo:
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  opset_version=opset, dynamo=True, external_data=False,
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
            else:
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  opset_version=opset, dynamo=False,
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(str(tmp))
        extra = {
            "opset": opset,
            "exporter": "dynamo" if dynamo else "torchscript",
            "precision": "fp32",
            "epoch": int(ckpt["epoch"]),
            "params": count_parameters(model),
            "macs": count_macs(model),  # with tta="flip": both passes
            "tta": tta,
            "val_source": ckpt.get("val_source"),
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "fer_edge_version": __version__,
            "torch_version": torch.__version__,
        }
        contract = contract_for(ckpt, extra)
        set_contract(proto, contract)
        proto.producer_name = "fer-edge"
        proto.producer_version = __version__
        proto.doc_string = (f"fer-edge {ckpt['model_name']}: 48x48 grayscale face -> {len(contract.classes)} "
                            f"expression logits ({', '.join(contract.classes)})")
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
        parity = check_parity(tmp, model, real_faces(data, ckpt), tolerance)
        if not parity.ok:
            raise ModelError(
                f"export parity check failed: ONNX Runtime and PyTorch logits differ by {parity.max_abs_diff:.3g} "
                f"(> {parity.tolerance:.3g}, logits up to {parity.max_abs_logit:.3g}); {out} not written"
            )
        os.replace(tmp, out_path)
    except (ModelError, InputError, UsageError):  # already one line with its exit code (a bad --data row: 3)
        raise
    except Exception as exc:
        disk = write_failure(exc, out_path)
        if disk is not None:
            raise disk from None
        raise ModelError(f"export of {checkpoint} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(str(out_path), ckpt["model_name"], opset, json.loads(contract.to_json()),
                        {**asdict(parity), "max_abs_diff": parity.max_abs_diff}, out_path.stat().st_size)
