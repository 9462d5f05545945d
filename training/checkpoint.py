"""Checkpoints: atomic writes, RNG state capture, what a run saves each epoch, and loading with clear errors.

A checkpoint holds only plain Python types and tensors, so it loads with
``torch.load(weights_only=True)`` (no arbitrary pickles from a file a user hands us).
"""
from __future__ import annotations

import math
import os
import random
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch
from torch import nn

from fer_edge import __version__, jsonout
from fer_edge.atomic import current_umask, open_atomic, write_failure  # noqa: F401 (current_umask: re-exported)
from fer_edge.errors import ModelError
from fer_edge.labels import CLASSES

if TYPE_CHECKING:
    from .config import TrainConfig
    from .splits import PreparedData

FORMAT = "fer-edge-checkpoint"
VERSION = 1
# What only ``last.pt`` carries, to continue a run; model files (best.pt, epoch_NNN.pt, averages) leave it out.
TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng")


def model_file(state: dict[str, Any], kind: str) -> dict[str, Any]:
    """``state`` (a ``last.pt`` dict or any checkpoint) as a model file of ``kind``, without training state."""
    out = {k: v for k, v in state.items() if k not in TRAINING_STATE}
    out["kind"] = kind
    return out


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` so that a reader sees the old file or the new one, never half.

    The temporary file lives in the same directory (``os.replace`` is atomic only
    within one file system) and is fsynced before the rename; the directory is
    fsynced after it so the rename itself survives a power cut. The file gets the mode a
    plain ``open(path, "w")`` gives (0644 under umask 022), not mkstemp's owner-only 0600:
    a checkpoint is shared like the rest of a run's files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open_atomic(path) as f:
            torch.save(obj, f)
    except Exception as exc:
        disk = write_failure(exc, path)
        if disk is not None:  # a full disk is the output's problem (exit 3), named, not a traceback
            raise disk from None
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch and CUDA generator states as plain types."""
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    rng = {
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        states = rng["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


def load_checkpoint(path: str | os.PathLike, expect_model: Optional[str] = None) -> dict[str, Any]:
    """Load a fer-edge checkpoint on the CPU, checking format and (optionally) architecture.

    A run directory stands for its ``best.pt``.
    """
    path = Path(path)
    if path.is_dir() and (path / "best.pt").is_file():
        path = path / "best.pt"
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files that are not ours
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file, another format, a pickle we refuse to run
        # torch's own text is several lines and suggests weights_only=False, i.e. running an
        # untrusted pickle: never the advice to give about a file that is not ours anyway.
        raise ModelError(f"{path}: not a fer-edge checkpoint ({_why_unloadable(path, exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path}: not a fer-edge checkpoint (train one with `fer-edge train`)")
    _check_identity(path, ckpt)
    if ckpt.get("version", 0) > VERSION:
        raise ModelError(f"{path}: checkpoint version {ckpt['version']} is newer than this fer-edge; upgrade")
    if expect_model is not None and ckpt["model_name"] != expect_model:
        raise ModelError(
            f"{path}: checkpoint is a {ckpt['model_name']!r} model, not {expect_model!r} "
            f"(use --model {ckpt['model_name']} or another --out)"
        )
    _check_contents(path, ckpt)
    return ckpt


def _bad(path: Path, field: str, why: str) -> ModelError:
    return ModelError(f"{path}: not a usable fer-edge checkpoint: {field} {why}")


def _check_identity(path: Path, ckpt: dict[str, Any]) -> None:
    """Refuse, in one line, a checkpoint whose fields every command reads are missing or of the
    wrong type (an edited or foreign file that kept our ``format`` tag): without this and
    :func:`_check_contents`, eval and export fail later with a KeyError or a TypeError deep
    inside torch. This part: the version and the architecture."""
    from .models import list_models

    bad = partial(_bad, path)
    version = ckpt.get("version", 0)  # files from before versions were numbered have none
    if type(version) is not int:  # bool is an int subclass; 'abc' and 1.5 are not versions
        raise bad("'version'", f"is {_short(version)}, not an integer")
    name = ckpt.get("model_name")
    if not isinstance(name, str):
        raise bad("'model_name'", "is missing" if name is None else f"is {_short(name)}, not a name")
    if name not in list_models():
        raise bad("'model_name'", f"{_short(name)} is not one of {', '.join(list_models())}")


def _check_contents(path: Path, ckpt: dict[str, Any]) -> None:
    """The weights and normalisation every command reads: a dict of tensors, a finite mean and std."""
    bad = partial(_bad, path)
    state = ckpt.get("model")
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise bad("'model'", "is not a dict of named weight tensors")
    norm = ckpt.get("norm")
    if not isinstance(norm, dict) or not all(_finite_number(norm.get(k)) for k in ("mean", "std")) \
            or not float(norm["std"]) > 0:
        raise bad("'norm'", "does not hold a finite mean and a positive std")
    if not isinstance(ckpt.get("epoch", 0), int):
        raise bad("'epoch'", f"is {_short(ckpt.get('epoch'))}, not an integer")


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(v: Any) -> str:
    """``repr`` of a field's value, cut to fit in one line of an error."""
    r = repr(v) if not isinstance(v, torch.Tensor) else f"a tensor of shape {tuple(v.shape)}"
    return r if len(r) <= 40 else r[:37] + "..."


def _why_unloadable(path: Path, exc: Exception) -> str:
    """A short reason why ``torch.load`` refused ``path``, with the fix when there is one."""
    if path.suffix.lower() == ".onnx":
        return "it is an ONNX model; `fer-edge eval --model` and `infer --model` take it as it is"
    if isinstance(exc, EOFError) or path.stat().st_size == 0:
        return "the file is empty or truncated"
    with open(path, "rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x80")):  # torch.save's zip, or a pickle
        return "not a PyTorch checkpoint file"
    if type(exc).__name__ == "UnpicklingError":
        return "it holds Python objects other than tensors and plain values"
    return "not a PyTorch checkpoint file"


def build_from_checkpoint(ckpt: dict[str, Any], path: str = "checkpoint") -> torch.nn.Module:
    """Recreate the model a checkpoint describes and load its weights (eval mode)."""
    from .models import create_model

    model = create_model(ckpt["model_name"], num_classes=len(ckpt.get("classes") or CLASSES))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{path}: weights do not fit a {ckpt['model_name']!r} model ({first})") from None
    return model.eval()


# --------------------------------------------------------------------------- what a run writes

#: The files a run writes into its folder (besides :func:`epoch_file` and train's ``imported/``): what
#: ``train`` checks, before it starts, is neither one of its inputs nor (unless resuming) already there.
RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "curves.png", "summary.json")


def epoch_file(epoch: int) -> str:
    """The name of the weights ``--keep-epochs`` keeps of ``epoch``."""
    return f"epoch_{epoch:03d}.pt"


def last_state(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, epoch: int,
               best_acc: float, best_epoch: int, data: PreparedData, history: list[dict], finished: bool) -> dict:
    """The ``last.pt`` dict after ``epoch``: weights, training state, RNGs, normalisation, config, history."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": "last",
        "fer_edge_version": __version__,
        "model_name": cfg.model,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch,
        "best_val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "finished": finished,
        "rng": capture_rng(),
        "norm": data.stats.as_dict(),
        "val_norm": data.val_stats.as_dict() if data.val_stats else None,
        "normalization": cfg.norm,
        "val_source": data.val_source,
        "classes": list(data.classes),
        "label_set": data.label_set,
        "config": cfg.to_dict(),
        "history": history,
    }


def save_epoch(out: Path, state: dict[str, Any], history: list[dict], *, best: bool, keep: bool) -> None:
    """``best.pt`` (without training state) when the epoch improved, ``epoch_NNN.pt`` when ``keep``,
    then ``last.pt`` and ``log.jsonl``.

    ``last.pt`` goes before the log, so the log never holds an epoch the checkpoint lacks.
    """
    if best:
        atomic_save(model_file(state, "best"), out / "best.pt")
    if keep:
        atomic_save(model_file(state, "epoch"), out / epoch_file(state["epoch"]))
    atomic_save(state, out / "last.pt")
    write_log(out, history)


def write_log(out: Path, history: list[dict]) -> None:
    """``log.jsonl``, one row per epoch, replaced whole (atomically) from ``history``."""
    tmp = out / ".log.jsonl.tmp"
    with open(tmp, "w") as f:
        for row in history:
            f.write(jsonout.dumps(row) + "\n")
    os.replace(tmp, out / "log.jsonl")


def head_key(model: nn.Module) -> str:
    """The state-dict key of the last linear layer's weight: the one whose rows are the classes."""
    last = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{last[-1]}.weight"


def load_init_weights(model: nn.Module, ckpt: dict, classes: tuple[str, ...], path: str) -> str:
    """``ckpt``'s weights into ``model`` for ``--init``; returns a note for the log.

    The same classes: all weights. Other classes (a FER2013 model fine-tuned for FER+'s eight):
    every layer but the classifier's rows, of which the rows of the classes both lists share are
    copied by name and the others keep their fresh initialisation."""
    old = list(ckpt.get("classes", CLASSES))
    if old == list(classes):
        model.load_state_dict(ckpt["model"])  # copies into the fp32 parameters (fp16 checkpoints too)
        return ""
    head_w = head_key(model)
    head_b = head_w[: -len("weight")] + "bias"
    state = model.state_dict()
    src = ckpt["model"]
    for k, v in src.items():
        if k in (head_w, head_b) or k not in state:
            continue
        if state[k].shape != v.shape:
            raise ModelError(f"--init {path}: {k} has shape {tuple(v.shape)}, this model needs {tuple(state[k].shape)}")
        state[k] = v.to(state[k].dtype)
    shared = [c for c in classes if c in old]
    for c in shared:
        i, j = classes.index(c), old.index(c)
        state[head_w][i] = src[head_w][j].to(state[head_w].dtype)
        if head_b in src:
            state[head_b][i] = src[head_b][j].to(state[head_b].dtype)
    model.load_state_dict(state)
    new = [c for c in classes if c not in old]
    return f"; classifier rows copied for {len(shared)} classes" + (f", new: {', '.join(new)}" if new else "")
