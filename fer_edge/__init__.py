"""fer-edge: facial expression recognition for the edge.

The runtime package imports numpy, onnxruntime, OpenCV and our C++ extension only;
torch lives behind the ``[train]`` extra in :mod:`fer_edge.training`.
"""
from __future__ import annotations

from typing import Any

from ._unbuilt import install as _explain_unbuilt_extension
from .labels import CLASSES, NUM_CLASSES

_explain_unbuilt_extension()

# __version__ is the installed distribution's (pyproject.toml's [project] version, the one
# place it is written), read on first use by __getattr__ below.
_DISTRIBUTION = "fer-edge"

# Public names that live in the runtime, imported on first use (onnxruntime and OpenCV load
# then): `import fer_edge` stays cheap until asked.
_LAZY = {
    "predict": "fer_edge.runtime.api",
    "predict_emotions": "fer_edge.runtime.api",
    "Predictor": "fer_edge.runtime.api",
    "FerModel": "fer_edge.runtime.model",
    "FaceResult": "fer_edge.runtime.results",
    "analyze_images": "fer_edge.runtime.images",
    "ImageAnalysis": "fer_edge.runtime.images",
    "analyze_video": "fer_edge.runtime.video",
    "VideoAnalysis": "fer_edge.runtime.video",
    "FrameFace": "fer_edge.runtime.timeline",
}

__all__ = ["CLASSES", "NUM_CLASSES", "__version__", *_LAZY]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTION)
    except PackageNotFoundError:  # a source tree used without installing it (scripts/dev_build.sh)
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()["__version__"] = v = _version()
        return v
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazy ones (``predict``, ``Predictor``, ``analyze_video`` ...):
    they are not in ``globals()`` until first used, and ``dir()`` and tab completion would
    otherwise never show them."""
    return sorted(set(globals()) | set(__all__))
