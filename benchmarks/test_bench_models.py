"""Group 3: model latency per architecture, PyTorch eager vs ONNX Runtime fp32 and int8.

One pytest-benchmark table per model; batch 1 (a webcam with one face) and batch 32 (a
folder of photos) are compared separately, per face. The baseline is PyTorch eager on the
CPU (``torch.inference_mode()``, channels_last where the registry says it is faster): what
running the training code directly would cost. It is timed with all usable cores and with one
thread, and ratios use the faster of the two (see BACKENDS). ONNX Runtime runs through
``FerModel`` (the runtime's own class) with the same number of threads.

On a machine with CUDA, PyTorch CUDA and ONNX Runtime CUDA join the table (input copied
to the GPU and logits back inside the timed call, as the runtime does); elsewhere they are
listed as not measured, with the reason.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import numpy as np
import pytest

from bench_models import DEFAULT_NAME, ModelZoo, default_model_path, registered_models, synthetic_faces, training_available
from bench_settings import MODEL_BATCHES, load_settings

_SETTINGS = load_settings()
# Both PyTorch CPU cases are baselines: the comparison uses the faster of the two, i.e. PyTorch
# at its best. With several threads PyTorch's OpenMP workers meet at a barrier in every layer; on
# a machine busy with other work one of them is often descheduled and a 12 ms model can take
# 700 ms, while one thread is immune to that. The two columns show which case a machine is in.
BACKENDS = {
    "torch-cpu": ("PyTorch eager CPU", "baseline"),
    "torch-cpu-1t": ("PyTorch eager CPU, 1 thread", "baseline"),
    "ort-fp32": ("ORT CPU fp32", ""),
    "ort-int8": ("ORT CPU int8", ""),
    "torch-cuda": ("PyTorch CUDA", ""),
    "ort-cuda": ("ORT CUDA fp32", ""),
}


def _model_names() -> list[str]:
    names = list(_SETTINGS.models) if _SETTINGS.models else registered_models()
    if not names:  # no [train] extra: nothing to export, but the registry's names still label the skips
        names = ["edgenet", "resnet18"]
    if default_model_path() is not None and DEFAULT_NAME not in names:
        names.append(DEFAULT_NAME)
    return names


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> ModelZoo:
    return ModelZoo(tmp_path_factory.mktemp("models"))


def _torch_cuda_reason() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    built = torch.version.cuda
    return (f"torch.cuda.is_available() is False (torch {torch.__version__}, "
            + (f"built for CUDA {built}: no usable GPU or driver)" if built else "a CPU-only build)"))


def _ort_cuda_reason() -> str | None:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return None
    return (f"'CUDAExecutionProvider' not in onnxruntime {ort.__version__}'s providers ({', '.join(providers)}); "
            "it needs the onnxruntime-gpu package")


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("batch", MODEL_BATCHES)
@pytest.mark.parametrize("model", _model_names())
def test_model_latency(benchmark, describe: Callable, not_measured: Callable, zoo: ModelZoo, _threads: int,
                       model: str, batch: int, backend: str) -> None:
    label, role = BACKENDS[backend]
    group = f"3 model: {model}"
    where = dict(subgroup=f"batch {batch}", family="model", row=model)
    if model != DEFAULT_NAME or backend.startswith("torch"):
        why = training_available()
        if why:
            not_measured(group, label, why, **where)
    if backend == "torch-cuda":
        why = _torch_cuda_reason()
        if why:
            not_measured(group, label, why, **where)
    if backend == "ort-cuda":
        why = _ort_cuda_reason()
        if why:
            not_measured(group, label, why, **where)

    m = zoo.get(model)
    x = synthetic_faces(batch, seed=batch)
    note = m.note
    threads = 1 if backend == "torch-cpu-1t" else _threads
    if backend.startswith("torch"):
        run = _torch_runner(zoo, model, x, cuda=backend == "torch-cuda")
        if m.random_weights is False:
            note = f"PyTorch columns: {m.arch} with random weights (same latency as the shipped weights)"
    else:
        precision = "int8" if backend == "ort-int8" else "fp32"
        path = m.int8 if precision == "int8" else m.fp32
        if path is None:
            not_measured(group, label, m.missing.get(precision, f"no {precision} file for this model"), **where)
        run = _ort_runner(path, x, device="cuda" if backend == "ort-cuda" else "cpu", threads=threads)

    describe(group, label, role=role, items=batch, item="face", note=note, threads=threads,
             order=list(BACKENDS).index(backend), params=m.params, arch=m.arch, **where)
    with _torch_threads(threads if backend.startswith("torch") else None):
        out = run()  # warm-up: first-call allocations and kernel selection are not what a stream pays per frame
        assert out.shape == (batch, 7) and np.isfinite(out).all(), f"{label} gave {out.shape} / non-finite logits"
        benchmark(run)


@contextlib.contextmanager
def _torch_threads(n: Optional[int]) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``n`` for the block (None: leave them alone)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _torch_runner(zoo: ModelZoo, name: str, x: np.ndarray, cuda: bool) -> Callable[[], np.ndarray]:
    import torch

    module = zoo.torch_module(name)
    if cuda:
        module = _cuda_copy(module)
        xt = torch.from_numpy(x).pin_memory()

        def run() -> np.ndarray:
            with torch.inference_mode():
                return module(xt.cuda(non_blocking=True)).float().cpu().numpy()

        return run
    fmt = torch.channels_last if zoo.channels_last(name) else torch.contiguous_format
    module = module.to(memory_format=fmt)
    xt = torch.from_numpy(x).contiguous(memory_format=fmt)

    def run() -> np.ndarray:
        with torch.inference_mode():
            return module(xt).numpy()

    return run


def _cuda_copy(module):
    import copy

    return copy.deepcopy(module).cuda().eval()


def _ort_runner(path, x: np.ndarray, device: str, threads: int) -> Callable[[], np.ndarray]:
    from fer_edge.runtime.model import FerModel

    model = FerModel.load(path, device=device, threads=threads)
    expected = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    assert model.providers[0] == expected, f"{path} runs on {model.providers[0]}, not {expected}"
    return lambda: model.run(x)
