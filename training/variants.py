"""The accuracy side of ``fer-edge export``: fp32 accuracy, int8 / fp16 variants and their drop."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from fer_edge.errors import InputError

# A variant losing more than this much PublicTest accuracy is worth a warning: static int8 can
# fail on a checkpoint (a ResNet50 went from 55.1 % to 29.9 % on the H100 runs, docs/results).
DROP_WARNING = 0.02


def drop_warning(tag: str, base_acc: float, acc: float) -> str | None:
    """The warning for a variant that loses more than DROP_WARNING accuracy, or None."""
    drop = base_acc - acc
    if drop <= DROP_WARNING:
        return None
    fix = " (try another --calibration-size, or use the fp32 model)" if tag == "int8" else " (use the fp32 model)"
    return (f"warning: the {tag} model loses {100 * drop:.1f} points of PublicTest accuracy "
            f"({100 * base_acc:.1f} -> {100 * acc:.1f} %){fix}")


#: Training faces int8 calibration reads when not told otherwise (``export --calibration-size``).
CALIBRATION_SIZE = 300


@dataclass(frozen=True)
class VariantRequest:
    """What ``export`` asks of its variants: the checkpoint exported, the data to measure and
    calibrate on (None: the checkpoint's own), and which variants."""

    checkpoint: str
    data: Optional[str] = None
    ferplus: Optional[str] = None
    int8: bool = False
    fp16: bool = False
    calibration_size: int = CALIBRATION_SIZE


@dataclass
class VariantPlan:
    """What :func:`measure_variants` will measure and calibrate on, read and checked before the export
    writes anything (:func:`plan_variants`): a FER+ file that does not line up with the data, or --int8 on
    data without training faces, fails before there is a file to clean up."""

    data: Optional[str]  # None: nothing to measure (no data, or a FER+ model without its labels and no --int8)
    labels_known: bool
    dataset: Any = None  # the loaded data (fer_edge.data), FER+ votes joined
    mean: float = 0.0
    std: float = 1.0


def plan_variants(args: VariantRequest) -> VariantPlan:
    """Load and check what :func:`measure_variants` needs for ``args`` (InputError when it cannot be had)."""
    from fer_edge.labels import CLASSES

    from .checkpoint import load_checkpoint
    from .evaluate import check_label_set
    from .splits import load

    ckpt = load_checkpoint(args.checkpoint)
    if args.ferplus:  # FER+ labels for a FER2013 model: refused as eval refuses them, not silently unused
        check_label_set(tuple(ckpt.get("classes") or CLASSES), args.ferplus, args.checkpoint)
    data = args.data or ckpt.get("config", {}).get("data")
    ferplus = args.ferplus or ckpt.get("config", {}).get("ferplus")
    # A FER+ model is measured against FER+ labels only: without them its accuracy is not measured
    # (never against FER2013's labels), though int8 still calibrates on the training faces.
    labels_known = True
    if ckpt.get("label_set") == "ferplus" and not (ferplus and Path(ferplus).exists()):
        print("a FER+ model: pass --ferplus fer2013new.csv to measure its accuracy and fit its temperature",
              file=sys.stderr)
        ferplus, labels_known = None, False
    elif ckpt.get("label_set", "fer2013") != "ferplus":
        ferplus = None
    if not labels_known and not args.int8:  # nothing to measure, nothing to calibrate int8 on
        return VariantPlan(None, labels_known)
    if not data or not Path(data).exists():
        if args.int8:
            raise InputError("--int8 needs training faces for calibration: pass --data")
        if args.fp16:
            print("no --data: fp16 accuracy not measured", file=sys.stderr)
        return VariantPlan(None, labels_known)
    ds = load(data, ferplus)
    if args.int8 and not len(ds.subset("train").labels):
        raise InputError(f"{data}: no training faces for int8 calibration")
    return VariantPlan(data, labels_known, ds, ckpt["norm"]["mean"], ckpt["norm"]["std"])


def measure_variants(result, args: VariantRequest, plan: Optional[VariantPlan] = None) -> dict[str, dict[str, Any]]:
    """Write the requested variants beside ``result.path`` and measure accuracies on PublicTest.

    ``plan``: :func:`plan_variants` of ``args``, made before the export (else made here)."""
    from .evaluate import normalize_np
    from .quantize import calibrate, calibration_faces, convert_fp16, quantize_int8, record_accuracy, variant_path
    from .splits import labelled

    plan = plan or plan_variants(args)
    if plan.data is None:
        return _only_fp16(result) if args.fp16 else {}
    data, labels_known, ds, mean, std = plan.data, plan.labels_known, plan.dataset, plan.mean, plan.std
    val = ds.subset("validation")
    train = ds.subset("train")
    variants: dict[str, dict[str, Any]] = {}
    base_acc = None
    if len(val.labels) and labels_known:
        val_images, vy, _ = labelled(val)  # FER+: the majority protocol's faces and labels
        vx = normalize_np(val_images, mean, std)
        cal = calibrate(result.path, vx, vy)
        base_acc = cal["accuracy"]
        record_accuracy(result.path, accuracy_publictest=base_acc, accuracy_faces=int(len(vy)))
        variants["fp32"] = {"path": result.path, "accuracy": base_acc, **_cal_info(cal)}
        print(f"fp32 accuracy on PublicTest ({len(vy)} faces): {base_acc:.4f}; {_cal_line(cal)}", file=sys.stderr)
    elif labels_known:
        print(f"{data}: no PublicTest faces; accuracy drop not measured", file=sys.stderr)
    todo = []
    if args.int8:
        calib = normalize_np(calibration_faces(np.ascontiguousarray(train.images), args.calibration_size), mean, std)
        todo.append(("int8", lambda p: quantize_int8(result.path, p, calib)))
    if args.fp16:
        todo.append(("fp16", lambda p: convert_fp16(result.path, p)))
    for tag, make in todo:
        path = variant_path(result.path, tag)
        make(path)
        info: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
        if base_acc is not None:
            try:
                cal = calibrate(path, vx, vy)
                acc = cal["accuracy"]
            except Exception as exc:  # e.g. fp16 kernels missing on this execution provider
                info["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                print(f"{tag}: could not run on this machine's CPU provider ({info['error']})", file=sys.stderr)
            else:
                info.update(accuracy=acc, accuracy_fp32=base_acc, accuracy_drop=base_acc - acc, **_cal_info(cal))
                record_accuracy(path, accuracy_publictest=acc, accuracy_fp32=base_acc, accuracy_drop=base_acc - acc)
                print(f"{tag}: accuracy {acc:.4f} (drop {base_acc - acc:+.4f} vs fp32); {_cal_line(cal)}",
                      file=sys.stderr)
                warning = drop_warning(tag, base_acc, acc)
                if warning:
                    info["warning"] = warning
                    print(warning, file=sys.stderr)
        print(f"wrote {path} ({info['size_bytes'] / 1e6:.1f} MB)", file=sys.stderr)
        variants[tag] = info
    return variants


def _cal_info(cal: dict[str, float]) -> dict[str, float]:
    return {"temperature": cal["temperature"], "ece": cal["ece"], "nll": cal["nll"], "ece_uncalibrated": cal["ece_before"]}


def _cal_line(cal: dict[str, float]) -> str:
    return (f"temperature {cal['temperature']:.3f} fitted on PublicTest: ECE {cal['ece_before']:.4f} -> {cal['ece']:.4f}, "
            f"NLL {cal['nll_before']:.4f} -> {cal['nll']:.4f}")


def _only_fp16(result) -> dict[str, dict[str, Any]]:
    from .quantize import convert_fp16, variant_path

    path = convert_fp16(result.path, variant_path(result.path, "fp16"))
    return {"fp16": {"path": str(path), "size_bytes": path.stat().st_size}}
