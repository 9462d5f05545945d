"""Models to time: every registered architecture exported with the project's own tools.

Latency does not depend on the weights, so the benchmark does not need trained models:
each architecture is created with random weights, written as a fer-edge checkpoint and
exported by ``fer_edge.training.export.export_checkpoint`` (the code behind
``fer-edge export``, parity check included), then quantized to int8 by
``fer_edge.training.quantize.quantize_int8`` (static QDQ, calibrated on synthetic faces:
the calibration changes the scales, not the work). The shipped default model, when
installed, is timed as it is. Exports are cached per session by name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

DEFAULT_NAME = "default"
# Typical FER2013 training statistics; any positive values give the same latency.
NORM = {"mean": 129.4, "std": 65.0}


@dataclass
class BenchModel:
    name: str  # row label in the tables
    arch: str  # registry name (what PyTorch eager builds)
    fp32: Optional[Path]
    int8: Optional[Path]
    random_weights: bool
    params: Optional[int] = None
    note: str = ""
    missing: dict[str, str] = field(default_factory=dict)  # "fp32"/"int8" -> why there is no such file


def training_available() -> Optional[str]:
    """None when torch and fer_edge.training import, else why not (for skip reasons)."""
    try:
        import torch  # noqa: F401

        from fer_edge.training.models import list_models  # noqa: F401
    except ImportError as exc:
        return f"needs the [train] extra (torch): {exc}"
    return None


def default_model_path() -> Optional[Path]:
    """The shipped default model, or None when this install has none."""
    try:
        from fer_edge.runtime.default_model import default_model_path as find
    except ImportError:
        return None
    p = find(must_exist=False)
    return p if p.is_file() else None


def registered_models() -> list[str]:
    try:
        from fer_edge.training.models import list_models
    except ImportError:
        return []
    return list_models()


def synthetic_faces(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 1, 48, 48)`` float32 inputs normalised like real faces (random pixels)."""
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, size=(n, 1, 48, 48), dtype=np.uint8).astype(np.float32)
    return (px - NORM["mean"]) / NORM["std"]


class ModelZoo:
    """Exports on first use, then hands out the same files and PyTorch modules."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self._models: dict[str, BenchModel] = {}
        self._errors: dict[str, Exception] = {}
        self._torch: dict[str, Any] = {}

    def get(self, name: str) -> BenchModel:
        """The model, exported on first use; a failed export fails every later call at once."""
        if name in self._errors:
            raise self._errors[name]
        if name not in self._models:
            try:
                self._models[name] = self._default() if name == DEFAULT_NAME else self._export(name)
            except Exception as exc:
                self._errors[name] = exc
                raise
        return self._models[name]

    def torch_module(self, name: str) -> Any:
        """The eager PyTorch model behind ``name`` (same weights as its ONNX export; for the
        shipped default model, its architecture with random weights: same latency)."""
        if name not in self._torch:
            import torch

            from fer_edge.training.models import create_model

            m = self.get(name)
            module = create_model(m.arch).eval()
            state = self.workdir / f"{m.arch}.state.pt"
            if m.random_weights and state.is_file():
                module.load_state_dict(torch.load(state, map_location="cpu", weights_only=True))
            self._torch[name] = module
        return self._torch[name]

    def channels_last(self, name: str) -> bool:
        """Whether the registry says this architecture runs faster in channels_last on a CPU."""
        from fer_edge.training.models import get_spec

        return bool(get_spec(self.get(name).arch).cpu_channels_last)

    # ------------------------------------------------------------------ building
    def _export(self, arch: str) -> BenchModel:
        import torch

        from fer_edge.labels import CLASSES
        from fer_edge.training.checkpoint import FORMAT, VERSION, atomic_save
        from fer_edge.training.export import export_checkpoint
        from fer_edge.training.models import count_parameters, create_model

        torch.manual_seed(0)
        module = create_model(arch).eval()
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        torch.save(state, self.workdir / f"{arch}.state.pt")
        ckpt_path = self.workdir / f"{arch}.pt"
        atomic_save(
            {
                "format": FORMAT,
                "version": VERSION,
                "kind": "best",
                "model_name": arch,
                "model": state,
                "epoch": 0,
                "best_val_accuracy": -1.0,
                "norm": dict(NORM),
                "normalization": "train",
                "classes": list(CLASSES),
                "config": {},  # no data path: the parity check uses random inputs only
            },
            ckpt_path,
        )
        fp32 = self.workdir / f"{arch}.onnx"
        export_checkpoint(str(ckpt_path), str(fp32))
        self._torch[arch] = module
        return BenchModel(arch, arch, fp32, self._int8(fp32), random_weights=True,
                          params=count_parameters(module), note="random weights")

    def _int8(self, fp32: Path) -> Optional[Path]:
        from fer_edge.training.quantize import quantize_int8, variant_path

        out = self.workdir / variant_path(fp32, "int8").name
        quantize_int8(fp32, out, synthetic_faces(64, seed=1))
        return out

    def _default(self) -> BenchModel:
        """The shipped default model as it is: its precision decides which column it fills."""
        path = default_model_path()
        if path is None:
            raise FileNotFoundError("the default model is not installed")
        from fer_edge.runtime.model import FerModel

        contract = FerModel.load(path, device="cpu", threads=1).contract
        arch, precision = contract.model, str(contract.extra.get("precision", "fp32"))
        note = f"shipped default model: {arch}, {precision}"
        m = BenchModel(DEFAULT_NAME, arch, None, None, random_weights=False, note=note)
        if precision == "int8":
            m.int8 = path
            m.missing["fp32"] = f"the shipped default model is int8 (the {arch} row has its architecture in fp32)"
        elif precision == "fp32":
            m.fp32 = path
            shipped_int8 = path.with_name(f"{path.stem}.int8{path.suffix}")
            if shipped_int8.is_file():
                m.int8 = shipped_int8
            elif training_available() is None:
                copy = self.workdir / "default.onnx"
                copy.write_bytes(path.read_bytes())
                m.int8 = self._int8(copy)
                m.note += "; its int8 variant quantized here on synthetic faces"
            else:
                m.missing["int8"] = "no int8 variant shipped, and quantizing one needs the [train] extra"
        else:
            for p in ("fp32", "int8"):
                m.missing[p] = f"the shipped default model is {precision}"
        return m


def usable_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
