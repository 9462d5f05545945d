"""FerModel: a thin class over one ONNX Runtime session.

The model file carries its own preprocessing contract (ONNX metadata key ``fer_edge``,
see :mod:`fer_edge.contract`), so loading a model is all a caller needs to know how to
feed it. Loading validates the file up front (metadata, input and output shapes) and
turns every problem into one :class:`~fer_edge.errors.ModelError` line, instead of a
shape error deep inside onnxruntime at the first frame.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..contract import METADATA_KEY, ModelContract
from ..errors import ModelError, excerpt
from ..remedy import Remedy
from .providers import CPU, CUDA, TENSORRT, DevicePlan, create_session, describe_providers, log_provider

log = logging.getLogger("fer_edge")

PathLike = Union[str, Path]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float32 (the runtime's class probabilities)."""
    z = logits.astype(np.float32, copy=False)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


#: How PyTorch files start: torch.save's zip archive, or a bare pickle (protocol 2 and up).
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
#: The names PyTorch checkpoints go by.
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".tar"})


def export_first(message: str, checkpoint: Path) -> ModelError:
    """The error for a training checkpoint given where an ONNX model is expected: the shell command
    that exports it, then the exported file as the model."""
    import shlex

    return ModelError(f"{message}: export it first with `fer-edge export --checkpoint "
                      f"{shlex.quote(str(checkpoint))} --out model.onnx` (needs the [train] extra)",
                      remedies=[Remedy("model", "model.onnx", "the exported file")])


def _dim_ok(dim: Any, expected: int) -> bool:
    """A symbolic / unknown dimension (str or None) is accepted; a number must match."""
    return not isinstance(dim, int) or dim == expected


class FerModel:
    """An exported fer-edge expression classifier, ready to run.

    Use :meth:`load`; the constructor takes an existing session. Attributes:
    ``contract`` (:class:`ModelContract`), ``providers`` (what the session runs on),
    ``path`` (the model file, or None for the packaged default loaded from memory).

    Thread-safe: :meth:`run` and :meth:`predict_proba` may be called from any number of
    threads at once and give each the same result as a call made alone. ONNX Runtime's
    ``InferenceSession.run`` is thread-safe, and this class keeps nothing per call on
    ``self`` (the CUDA path's IO binding and device copy are made per call), so one model
    in memory serves every thread and stream of a process.
    """

    def __init__(self, session: Any, contract: ModelContract, path: Optional[Path], plan: DevicePlan):
        self.session = session
        self.contract = contract
        self.path = path
        self.plan = plan
        self.providers: list[str] = list(session.get_providers())
        self.input_name, self.output_name, self.max_batch = _validate_io(session, contract, path)
        self._io_binding = self.providers[0] in (CUDA, TENSORRT)
        self._device_id = plan.device_id or 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: Optional[PathLike] = None,
        device: str = "auto",
        threads: Optional[int] = None,
        contract: Optional[ModelContract] = None,
    ) -> "FerModel":
        """Load and validate a model.

        ``path=None`` (or ``"default"``) loads the default model shipped inside the package. ``device`` is
        ``auto``, ``cpu``, ``cuda[:N]`` or ``tensorrt[:N]`` (see :mod:`.providers`);
        ``threads`` sets onnxruntime's intra-op threads. ``contract`` supplies the
        preprocessing contract for a foreign model that has no ``fer_edge`` metadata
        (it must still take ``(N, channels, S, S)`` float input and give ``(N, classes)``).
        """
        from .default_model import model_not_found, resolve_model_path

        model_path = resolve_model_path(path)
        # Checking the path can fail too (a name too long for the file system, a folder without
        # permission): that is a model the user named and fer-edge cannot read, so a ModelError
        # naming the path short, not an OSError repeating 300 characters of it.
        try:
            exists = model_path.exists()
            is_dir = exists and model_path.is_dir()
            run_folder = is_dir and (model_path / "best.pt").is_file()
            if exists and not is_dir:
                with open(model_path, "rb") as f:
                    head = f.read(16)
        except OSError as exc:
            raise ModelError(f"cannot read model file {excerpt(str(model_path))}: {exc.strerror or exc}") from None
        if not exists:
            raise ModelError(model_not_found(model_path))
        if is_dir:
            if run_folder:  # a training run's folder
                raise export_first(f"{model_path} is a training run, not an exported model", model_path / "best.pt")
            raise ModelError(f"model path is a directory, not an .onnx file: {model_path}")
        if not head:
            raise ModelError(f"model file is empty: {model_path}")
        if head.startswith(TORCH_MAGIC):
            raise export_first(f"{model_path} is a PyTorch checkpoint, not an exported model", model_path)

        try:
            session, plan = create_session(str(model_path), device=device, threads=threads)
        except ModelError:
            if model_path.suffix.lower() in TORCH_SUFFIXES:  # a checkpoint in a format torch.save no longer writes
                raise export_first(f"{model_path} is not an ONNX model (a {model_path.suffix} file is PyTorch's)",
                                   model_path) from None
            raise
        meta = session.get_modelmeta().custom_metadata_map or {}
        if contract is None:
            contract = contract_from_metadata(meta, model_path)
        else:  # the caller's contract is checked as one read from the file would be
            try:
                contract.check()
            except ValueError as exc:
                raise ModelError(f"the contract given for model {model_path} is invalid ({exc})") from None
        model = cls(session, contract, model_path, plan)
        model._smoke_test()
        log_provider(session, plan)
        log.debug("fer-edge: loaded %s (%s)", model_path, contract.model)
        return model

    def _smoke_test(self) -> None:
        """Run one synthetic face (a smooth ramp, within the normalised range of real ones)
        through the session, so that a model which loads but cannot run (an operator that
        fails on real shapes, a wrong reshape, a missing kernel) is a model error now, not a
        traceback on the user's first photo; and one that yields NaN or infinite scores is
        refused rather than printed."""
        n, c, size = self.max_batch or 1, self.channels, self.input_size
        ramp = np.linspace(-1.5, 1.5, size * size, dtype=np.float32).reshape(size, size)
        x = np.ascontiguousarray(np.broadcast_to(ramp, (n, c, size, size)))
        where = f" {self.path}" if self.path else ""
        try:
            if self._io_binding:
                out = self._run_once(x)
            else:  # silenced: onnxruntime would also log the failure to stderr, in colour, itself
                import onnxruntime as ort

                quiet = ort.RunOptions()
                quiet.log_severity_level = 4
                (out,) = self.session.run([self.output_name], {self.input_name: x}, quiet)
                out = np.asarray(out, dtype=np.float32)
        except Exception as exc:  # onnxruntime raises its own exception types, several lines long
            raise ModelError(f"model{where} loads but fails when run: {_ort_reason(exc)}") from None
        k = len(self.classes)
        if out.shape != (n, k):
            raise ModelError(f"model{where} gives output of shape {_fmt_shape(list(out.shape))} for {n} face(s); "
                             f"expected ({n}, {k})")
        if not np.isfinite(out).all():
            raise ModelError(f"model{where} gives non-finite scores (NaN or infinity) for a test face")

    # ------------------------------------------------------------------ running
    @property
    def input_size(self) -> int:
        return int(self.contract.input_size)

    @property
    def channels(self) -> int:
        return int(self.contract.channels)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.contract.classes)

    @property
    def device(self) -> str:
        """What the session runs on, e.g. ``CPUExecutionProvider`` or ``CUDAExecutionProvider (device 0)``."""
        return describe_providers(self.providers, self.plan.device_id)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits ``(N, num_classes)`` float32 for a preprocessed ``(N, C, S, S)`` float32 batch."""
        x = self._check_batch(batch)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        if self.max_batch is not None and n > self.max_batch:
            # a model exported with a fixed batch size: feed it in slices of that size
            parts = [self._run_once(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
            return np.concatenate(parts, axis=0)
        return self._run_once(x)

    @property
    def temperature(self) -> float:
        """The softmax temperature fitted at export (1.0 for models exported without one)."""
        return float(self.contract.temperature)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities ``(N, num_classes)``: softmax of :meth:`run` / temperature."""
        logits = self.run(batch)
        t = self.temperature
        return softmax(logits / np.float32(t) if t != 1.0 else logits, axis=1)

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        if not isinstance(batch, np.ndarray):
            raise TypeError(f"batch must be a numpy array, got {type(batch).__name__}")
        expected = (self.channels, self.input_size, self.input_size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(f"batch must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}), got {batch.shape}")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def _run_once(self, x: np.ndarray) -> np.ndarray:
        if self._io_binding:
            return self._run_bound(x)
        (out,) = self.session.run([self.output_name], {self.input_name: x})
        return np.asarray(out, dtype=np.float32)

    def _run_bound(self, x: np.ndarray) -> np.ndarray:
        """CUDA path: copy the batch to the GPU once as an OrtValue and bind it.

        ``session.run`` with a numpy array would stage the input on the host and copy it
        again inside the provider; binding an OrtValue that already lives on the device
        leaves onnxruntime nothing to copy. The small logits tensor comes back to the host.
        """
        import onnxruntime as ort

        # A new binding per call, never one cached on self: a binding holds its inputs and
        # outputs, so threads sharing one would read each other's logits.
        binding = self.session.io_binding()
        x_dev = ort.OrtValue.ortvalue_from_numpy(x, "cuda", self._device_id)
        binding.bind_ortvalue_input(self.input_name, x_dev)
        binding.bind_output(self.output_name, "cpu")
        self.session.run_with_iobinding(binding)
        out = binding.copy_outputs_to_cpu()[0]
        return np.asarray(out, dtype=np.float32)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (``infer --json``, ``info``)."""
        c = self.contract
        return {
            "path": str(self.path) if self.path else None,
            "model": c.model,
            "classes": list(c.classes),
            "label_set": c.label_set,
            "temperature": c.temperature,  # probabilities are softmax(logits / temperature)
            "input_size": c.input_size,
            "channels": c.channels,
            "mean": c.mean,
            "std": c.std,
            "val_accuracy": c.val_accuracy,  # the training checkpoint's, in PyTorch
            # This file's own accuracy, measured by ONNX Runtime at export (int8 differs from the checkpoint).
            "publictest_accuracy": c.extra.get("accuracy_publictest"),
            "provider": self.providers[0],
            "device": self.device,
        }

    def __repr__(self) -> str:
        return f"FerModel(path={str(self.path)!r}, model={self.contract.model!r}, provider={self.providers[0]!r})"


def contract_from_metadata(meta: dict[str, str], path: Optional[Path] = None) -> ModelContract:
    """Read the ``fer_edge`` contract from ONNX custom metadata, or explain why not."""
    where = f" {path}" if path else ""
    text = meta.get(METADATA_KEY)
    if text is None:
        raise ModelError(
            f"model{where} has no '{METADATA_KEY}' metadata: it was not exported by `fer-edge export` "
            "(from Python, FerModel.load(path, contract=ModelContract(...)) runs a foreign model)"
        )
    try:
        return ModelContract.from_json(text)
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise ModelError(
            f"model{where} has invalid '{METADATA_KEY}' metadata ({exc}); re-export it with `fer-edge export`"
        ) from exc


def _validate_io(session: Any, contract: ModelContract, path: Optional[Path]) -> tuple[str, str, Optional[int]]:
    """Check the graph's input/output against the contract; returns (input, output, fixed batch or None)."""
    where = f" {path}" if path else ""
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(f"model{where} must have exactly one input, it has {len(inputs)} ({names})")
    inp = inputs[0]
    if contract.input_name and inp.name != contract.input_name:
        # one input is unambiguous; the name in the contract is informative only
        log.debug("fer-edge: model input is %r, contract says %r; using the graph's", inp.name, contract.input_name)
    if inp.type != "tensor(float)":
        raise ModelError(f"model{where} input must be float32, it is {inp.type}")
    shape = list(inp.shape)
    c, s = contract.channels, contract.input_size
    if len(shape) != 4 or not (_dim_ok(shape[1], c) and _dim_ok(shape[2], s) and _dim_ok(shape[3], s)):
        raise ModelError(
            f"model{where} input has shape {_fmt_shape(shape)}; fer-edge needs (N, {c}, {s}, {s}) "
            f"as its metadata says ({c} channel(s), {s}x{s})"
        )
    names = [o.name for o in outputs]
    out_name = contract.output_name if contract.output_name in names else None
    if out_name is None:
        if contract.output_name and len(outputs) != 1:
            raise ModelError(f"model{where} has no output named {contract.output_name!r} (outputs: {', '.join(names)})")
        if not outputs:
            raise ModelError(f"model{where} has no outputs")
        out_name = outputs[0].name
    out = next(o for o in outputs if o.name == out_name)
    oshape = list(out.shape)
    k = len(contract.classes)
    if out.type != "tensor(float)":
        raise ModelError(f"model{where} output must be float32, it is {out.type}")
    if len(oshape) != 2 or not _dim_ok(oshape[1], k):
        raise ModelError(
            f"model{where} output has shape {_fmt_shape(oshape)}; expected (N, {k}), one score per class {list(contract.classes)}"
        )
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return inp.name, out_name, batch


def _ort_reason(exc: Exception) -> str:
    """The part of an onnxruntime error a user can act on: which node failed and why, without
    the ``[ONNXRuntimeError] : 1 : FAIL :`` prefix and the C++ source location."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" : ", 3)[-1] if text.startswith("[ONNXRuntimeError]") else text
    node = re.search(r"while running (\S+) node", text)
    why = re.split(r"Status Message: (?:\S+:\d+ [^ ]+ )?", text)[-1]
    if "was false. " in why:  # onnxruntime's failed-assertion text, then the sentence meant for people
        why = why.split("was false. ", 1)[1]
    reason = f"{node.group(1)} node: {why}" if node else why
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _fmt_shape(shape: list[Any]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


__all__ = ["FerModel", "softmax", "contract_from_metadata", "CPU", "CUDA"]
