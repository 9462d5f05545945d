"""Where the default model and the sample image live inside the installed package.

Both are package data under ``fer_edge/assets`` (scikit-build-core copies the whole
``fer_edge`` directory into the wheel), located with :mod:`importlib.resources` so they
are found in a wheel install, an editable install and the dev layout alike.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Union

from ..errors import InputError, ModelError
from ..remedy import ANY, Remedy

DEFAULT_MODEL = "assets/models/default.onnx"
SAMPLE_IMAGE = "assets/sample_face.jpg"


def _asset(relative: str) -> Path:
    # files() returns a Traversable; for a regular (unzipped) install it is a real path,
    # which onnxruntime and OpenCV need. fer-edge is never installed zipped.
    return Path(str(resources.files("fer_edge").joinpath(relative)))


def packaged_files() -> list[Path]:
    """Every file fer-edge ships under ``fer_edge/assets`` (the models, the face detector, the sample
    photo): the CLI counts them among a command's inputs, so that no output ever replaces one,
    whether or not the command reads it."""
    root = _asset("assets")
    try:
        return sorted(p for p in root.rglob("*") if p.is_file())
    except OSError:
        return []


def default_model_path(must_exist: bool = True) -> Path:
    """Path of the packaged default model; :class:`ModelError` if it is not there."""
    path = _asset(DEFAULT_MODEL)
    if must_exist and not path.is_file():
        raise ModelError(
            f"the default model is not installed ({path} is missing); this fer-edge build was packaged without it",
            remedies=[Remedy("model", ANY, "an exported .onnx model")])
    return path


# What `--model` (CLI) and ``model=`` (Python) accept to mean the packaged model. A file that
# happens to be called "default" is still reachable as ./default.
DEFAULT_MODEL_NAME = "default"


@dataclass(frozen=True)
class PackagedModel:
    file: str  # under fer_edge/
    summary: str  # what to pick it for, in --model's help


# The models shipped in the package, by the name `--model` / ``model=`` take for them.
PACKAGED: dict[str, PackagedModel] = {
    DEFAULT_MODEL_NAME: PackagedModel(DEFAULT_MODEL, "FER2013's 7 classes, the most accurate"),
    "ferplus": PackagedModel("assets/models/ferplus.onnx", "FER+'s 8 classes: FER2013's 7 + contempt"),
    "fast": PackagedModel("assets/models/fast.onnx", "FER2013's 7 classes, about 10x faster, 4 points less accurate"),
}
PACKAGED_MODELS: dict[str, str] = {name: m.file for name, m in PACKAGED.items()}


def describe_packaged() -> str:
    """``default`` (what it is for), ... : the packaged models as --model's help lists them."""
    return ", ".join(f"{name} ({m.summary})" for name, m in PACKAGED.items())


def packaged_model_path(name: str) -> Path:
    """Path of the packaged model ``name`` (a key of PACKAGED_MODELS); ModelError when it is not installed."""
    if name == DEFAULT_MODEL_NAME:
        return default_model_path()
    path = _asset(PACKAGED_MODELS[name])
    if not path.is_file():
        raise ModelError(f"the packaged model {name!r} is not installed ({path} is missing)",
                         remedies=[Remedy("model", ANY, "an exported .onnx model")])
    return path


def resolve_model_path(model: Optional[Union[str, "os.PathLike[str]"]]) -> Path:
    """The model file ``model`` names: None or ``"default"`` -> the packaged model, another packaged
    name (``"ferplus"``) -> that model, else the path."""
    if model is None:
        return default_model_path()
    if isinstance(model, str) and model in PACKAGED_MODELS:
        return packaged_model_path(model)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a packaged model name ({', '.join(PACKAGED_MODELS)}), an .onnx path "
                        f"or a FerModel, got {type(model).__name__}")
    return Path(model).expanduser()


def model_not_found(path: Path) -> str:
    """The message for a model file that does not exist; a bare word that is no file is most
    likely a misspelt packaged name, so the names are listed then."""
    text = f"model file not found: {path}"
    if len(path.parts) == 1 and not path.suffix:
        text += f" (the packaged models are {', '.join(PACKAGED_MODELS)})"
    return text


def sample_image_path() -> Path:
    """Path of the packaged sample face photo (public domain, see assets/LICENSES.md)."""
    path = _asset(SAMPLE_IMAGE)
    if not path.is_file():
        raise InputError(f"the sample image is not installed ({path} is missing); reinstall fer-edge")
    return path
