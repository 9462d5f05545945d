"""int8 and fp16 variants of an exported model, each with its accuracy drop measured.

- int8: ONNX Runtime static quantization, QDQ format, per-channel int8 weights and
  uint8 activations (the fast path of ORT's x86 and ARM kernels), calibrated with
  MinMax on a seeded sample of training faces. Static rather than dynamic because
  dynamic quantization leaves convolutions (nearly all of our work) in float.
- fp16: every float initializer and op in half precision, inputs and outputs kept
  float32 so the runtime contract does not change. Meant for GPUs: the CPU execution
  provider has few fp16 kernels, so on a CPU it may run slower than fp32 (or not at all).

Accuracy is measured through the runtime (FerModel), as a device would run it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from fer_edge.contract import ModelContract
from fer_edge.atomic import write_failure
from fer_edge.errors import ModelError


def variant_path(fp32_path: str | Path, tag: str) -> Path:
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}.{tag}{p.suffix}")


def calibration_faces(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A seeded random sample of ``n`` faces (all of them when fewer)."""
    if len(images) <= n:
        return images
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    return images[idx]


class _FaceReader:
    """onnxruntime.quantization CalibrationDataReader over normalised faces, in batches."""

    def __init__(self, faces: np.ndarray, batch: int = 32):
        self.batches = [faces[i : i + batch] for i in range(0, len(faces), batch)]
        self.i = 0

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {"input": self.batches[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def _rewrite_contract(path: Path, contract: ModelContract, **extra: Any) -> None:
    import onnx

    from .export import set_contract

    proto = onnx.load(str(path))
    c = ModelContract(**{**contract.__dict__, "extra": {**contract.extra, **extra}})
    set_contract(proto, c)
    onnx.save(proto, str(path))


def _input_layer_nodes(path: Path) -> list[str]:
    """The nodes up to and including the first convolution: they stay fp32 in the int8 model.

    Why: that layer reads the face itself (after the per-face standardisation, when the model
    has one) with a single input channel, so it holds about 1 % of the work, but rounding its
    input and weights to 8 bits cost a small student most of its int8 accuracy drop (fernet_xs
    on PublicTest: 66.44 % fp32, 65.10 % all int8, 66.08 % with this layer in fp32, at the
    same latency on one core).
    """
    import onnx

    names = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        names.append(node.name)
        if node.op_type == "Conv":
            return names
    return []


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib: np.ndarray) -> Path:
    """Static QDQ int8 quantization of ``fp32_path`` calibrated on ``calib`` (N, 1, 48, 48) float32;
    the input layer stays fp32 (:func:`_input_layer_nodes`)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .export import read_contract

    contract = read_contract(fp32_path)
    out_path = Path(out_path)
    pre = out_path.with_name(f".{out_path.stem}.pre.onnx")
    tmp = out_path.with_name(f".{out_path.name}.tmp")

    class Reader(_FaceReader, CalibrationDataReader):
        pass

    try:
        try:  # shape inference + graph cleanup, which ORT recommends before quantizing
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
            source = pre
        except Exception:
            source = Path(fp32_path)
        quantize_static(
            str(source), str(tmp), Reader(np.ascontiguousarray(calib, dtype=np.float32)),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=_input_layer_nodes(source),
        )
        _rewrite_contract(tmp, contract, precision="int8", calibration_faces=int(len(calib)),
                          quantization="onnxruntime static QDQ, per-channel s8 weights, u8 activations, MinMax; "
                          "first convolution and what precedes it fp32")
        os.replace(tmp, out_path)
    except Exception as exc:
        raise (write_failure(exc, out_path)
               or ModelError(f"int8 quantization of {fp32_path} failed: {type(exc).__name__}: {exc}")) from None
    finally:
        for p in (pre, tmp):
            if p.exists():
                p.unlink()
    return out_path


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    """fp16 weights and compute with float32 input/output (the contract's types)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from .export import read_contract

    contract = read_contract(fp32_path)
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        from onnxruntime.transformers.onnx_model import OnnxModel

        wrapped = OnnxModel(convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True))
        wrapped.topological_sort()  # the converter appends its input casts at the end of the graph
        proto = wrapped.model
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        _rewrite_contract(tmp, contract, precision="fp16")
        os.replace(tmp, out_path)
    except Exception as exc:
        raise (write_failure(exc, out_path)
               or ModelError(f"fp16 conversion of {fp32_path} failed: {type(exc).__name__}: {exc}")) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out_path


def runtime_logits(path: str | Path, faces: np.ndarray, device: str = "cpu", batch: int = 256) -> np.ndarray:
    """Logits of an exported model through the fer-edge runtime on normalised ``faces``."""
    from fer_edge.runtime.model import FerModel

    m = FerModel.load(str(path), device=device)
    return np.concatenate([m.run(faces[i : i + batch]) for i in range(0, len(faces), batch)])


def calibrate(path: str | Path, faces: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Fit the softmax temperature of the model at ``path`` on ``faces`` (PublicTest) and store it in its
    contract; returns its accuracy and calibration before and after (training/calibration.py)."""
    from .calibration import calibration, fit_temperature
    from .export import read_contract

    logits = runtime_logits(path, faces)
    t = fit_temperature(logits, labels)
    before, after = calibration(logits, labels, 1.0), calibration(logits, labels, t)
    contract = read_contract(path)
    c = ModelContract(**{**contract.__dict__, "temperature": t})
    _rewrite_contract(Path(path), c, ece_uncalibrated=before["ece"], ece_publictest=after["ece"],
                      nll_publictest=after["nll"])
    return {"accuracy": float((logits.argmax(1) == labels).mean()), "temperature": t,
            "ece_before": before["ece"], "ece": after["ece"], "nll_before": before["nll"], "nll": after["nll"]}


def record_accuracy(path: str | Path, **extra: Any) -> None:
    """Store measured accuracies in the model's contract ``extra``."""
    from .export import read_contract

    _rewrite_contract(Path(path), read_contract(path), **extra)
