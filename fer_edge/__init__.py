"""fer-edge: facial expression recognition for the edge.

The runtime package imports numpy, onnxruntime, OpenCV and our C++ extension only;
torch lives behind the ``[train]`` extra in :mod:`fer_edge.training`.
"""
from __future__ import annotations

from typing import Any

from ._unbuilt import install as _explain_unbuilt_extension
from .labels import CLASSES, NUM_CLASSES

_explain_unbuilt_extension()

__version__ = "0.1.0"

__all__ = ["CLASSES", "NUM_CLASSES", "__version__", "predict", "FerModel"]


def __getattr__(name: str) -> Any:
    # The runtime pulls in onnxruntime and OpenCV; `import fer_edge` stays cheap until asked.
    if name == "predict":
        from .runtime.api import predict

        return predict
    if name == "FerModel":
        from .runtime.model import FerModel

        return FerModel
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")
