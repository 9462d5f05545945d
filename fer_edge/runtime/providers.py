"""The one place where ONNX Runtime execution providers are chosen.

Every session in fer-edge is created through :func:`create_session`, so ``--device`` means
the same thing in ``infer``, ``webcam``, ``eval`` and ``info``:

``auto``
    CUDA when the installed onnxruntime offers ``CUDAExecutionProvider`` (the
    ``onnxruntime-gpu`` wheel), else TensorRT when only that is offered, else CPU. CPU is
    always appended as the fallback for operators the GPU provider cannot run. CUDA is
    preferred over TensorRT because TensorRT builds an engine on first use (seconds to
    minutes) and needs its own libraries; pass ``--device tensorrt`` to ask for it.
``cpu``
    CPU only.
``cuda`` / ``cuda:N``
    CUDA on device N (default 0); fails with :class:`DeviceError` when CUDA is unavailable.
``tensorrt`` / ``tensorrt:N``
    TensorRT on device N, with CUDA and CPU behind it.

ONNX Runtime silently falls back to CPU when the CUDA provider is listed but its
libraries (CUDA, cuDNN) cannot be loaded; :func:`create_session` compares what it asked
for with what the session actually uses, so a forced ``cuda`` fails loudly and ``auto``
logs what really happened. Once the model is validated, :func:`log_provider` writes one
INFO line on the ``fer_edge`` logger saying which provider runs.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from ..errors import DeviceError, ModelError, UsageError

log = logging.getLogger("fer_edge")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

ProviderSpec = Union[str, tuple[str, dict[str, Any]]]

GPU_HINT = (
    "the installed onnxruntime has no CUDA support; install the GPU build: "
    "pip uninstall -y onnxruntime && pip install onnxruntime-gpu "
    "(and check `fer-edge info`)"
)

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|gpu|tensorrt|trt)(?::(\d+))?$")


@dataclass(frozen=True)
class DevicePlan:
    """What a ``--device`` string resolves to, before any session exists."""

    requested: str  # the normalised request: "auto", "cpu", "cuda:0", "tensorrt:0"
    providers: list[ProviderSpec] = field(default_factory=list)
    device_id: Optional[int] = None  # GPU ordinal when a GPU provider leads the list

    @property
    def primary(self) -> str:
        first = self.providers[0]
        return first if isinstance(first, str) else first[0]

    @property
    def forced(self) -> bool:
        return self.requested != "auto"


def available_providers() -> list[str]:
    """Providers the installed onnxruntime build offers (monkeypatched in tests)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def parse_device(device: str) -> tuple[str, Optional[int]]:
    """``"cuda:1"`` -> ``("cuda", 1)``; raises :class:`DeviceError` for anything unknown."""
    text = (device or "auto").strip().lower()
    m = _DEVICE_RE.match(text)
    if not m:
        raise DeviceError(
            f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or tensorrt[:N]"
        )
    kind, index = m.group(1), m.group(2)
    kind = {"gpu": "cuda", "trt": "tensorrt"}.get(kind, kind)
    if kind in ("auto", "cpu") and index is not None:
        raise DeviceError(f"device {device!r} takes no index; use {kind}")
    return kind, (int(index) if index is not None else None)


def plan_providers(device: str = "auto", available: Optional[Sequence[str]] = None) -> DevicePlan:
    """Resolve a ``--device`` string against the providers this onnxruntime offers."""
    kind, index = parse_device(device)
    avail = list(available) if available is not None else available_providers()
    gpu_id = index if index is not None else 0

    def cuda_spec() -> ProviderSpec:
        return (CUDA, {"device_id": gpu_id})

    def trt_spec() -> ProviderSpec:
        return (TENSORRT, {"device_id": gpu_id})

    if kind == "cpu":
        return DevicePlan("cpu", [CPU])
    if kind == "cuda":
        if CUDA not in avail:
            raise DeviceError(f"CUDA was requested but is not available: {GPU_HINT}")
        return DevicePlan(f"cuda:{gpu_id}", [cuda_spec(), CPU], gpu_id)
    if kind == "tensorrt":
        if TENSORRT not in avail:
            raise DeviceError(
                "TensorRT was requested but the installed onnxruntime does not offer it "
                "(it needs onnxruntime-gpu and the TensorRT libraries)"
            )
        chain: list[ProviderSpec] = [trt_spec()]
        if CUDA in avail:
            chain.append(cuda_spec())
        return DevicePlan(f"tensorrt:{gpu_id}", chain + [CPU], gpu_id)
    # auto
    if CUDA in avail:
        return DevicePlan("auto", [cuda_spec(), CPU], gpu_id)
    if TENSORRT in avail:
        return DevicePlan("auto", [trt_spec(), CPU], gpu_id)
    return DevicePlan("auto", [CPU])


def describe_providers(used: Sequence[str], device_id: Optional[int] = None) -> str:
    """Human-readable name of what a session runs on, e.g. ``CUDA (device 0)``."""
    if not used:
        return "none"
    lead = used[0]
    if lead in (CUDA, TENSORRT) and device_id is not None:
        return f"{lead} (device {device_id})"
    return lead


def session_options(threads: Optional[int] = None):
    """SessionOptions shared by every fer-edge session.

    ``threads`` sets intra-op parallelism (None = onnxruntime's default, all cores);
    inter-op stays at 1 because our graphs are a single chain of operators.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            # A bad value, not a missing device: the library names its own parameter (the CLI's
            # --threads is checked by argparse before it gets here).
            raise UsageError(f"threads must be a whole number of at least 1, got {threads!r}")
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # onnxruntime's own warnings (e.g. provider fallbacks) stay quiet; we log ours
    # ORT's worker threads busy-wait between runs by default. Our runs are short and
    # interleaved with detection, decoding and drawing on the same few cores, where spinning
    # threads steal the CPU those need; sleeping workers cost microseconds per run instead.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def create_session(
    model: Union[str, bytes],
    device: str = "auto",
    threads: Optional[int] = None,
    available: Optional[Sequence[str]] = None,
    quiet: bool = False,
):
    """Create an ``onnxruntime.InferenceSession`` on the planned providers.

    Returns ``(session, plan)``. Raises :class:`DeviceError` when the device cannot be
    used and :class:`ModelError` when onnxruntime cannot read the model.
    """
    import onnxruntime as ort

    plan = plan_providers(device, available)
    opts = session_options(threads)
    names = [p if isinstance(p, str) else p[0] for p in plan.providers]
    options = [{} if isinstance(p, str) else dict((k, str(v)) for k, v in p[1].items()) for p in plan.providers]
    try:
        session = ort.InferenceSession(model, sess_options=opts, providers=names, provider_options=options)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        first = _ort_message(exc)
        if plan.primary != CPU and _looks_like_provider_failure(first):
            raise DeviceError(f"could not start {plan.primary}: {first}") from exc
        label = model if isinstance(model, str) else "<bytes>"
        raise ModelError(f"not a valid ONNX model: {label} ({first})") from exc

    used = list(session.get_providers())
    if plan.primary != CPU and plan.primary not in used:
        if plan.forced:
            raise DeviceError(
                f"{plan.primary} is installed but failed to initialise (CUDA/cuDNN libraries missing or no GPU?); "
                "run `fer-edge info` and see https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements"
            )
        if not quiet:
            log.warning("fer-edge: %s is available but failed to initialise; falling back to CPU", plan.primary)
        plan = DevicePlan(plan.requested, [CPU])
    return session, plan


def log_provider(session, plan: DevicePlan) -> None:
    """The one INFO line saying what a (validated) session runs on."""
    log.info("fer-edge: onnxruntime provider: %s", describe_providers(list(session.get_providers()), plan.device_id))


def _ort_message(exc: Exception) -> str:
    """The useful part of an onnxruntime error: no ``[ONNXRuntimeError] : 7 : CODE :`` prefix,
    no repeated ``Load model from PATH failed:``, one line."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^Load model from .*? failed: ?", "", text)
    return text.strip() or type(exc).__name__


def _looks_like_provider_failure(message: str) -> bool:
    m = message.lower()
    return any(s in m for s in ("cuda", "cudnn", "tensorrt", "provider", "libcu"))
