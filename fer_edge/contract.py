"""The preprocessing contract between an exported model and the runtime.

Export writes it into the ONNX file's metadata under one key, so a model file is
all the runtime needs: which classes, what input size and channels, and which
mean/std (in 0..255 pixel units) the network was trained with.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .labels import CLASSES, IMAGE_SIZE

METADATA_KEY = "fer_edge"
INPUT_SIZE_RANGE = (8, 1024)  # square input side a contract may ask for, pixels
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelContract:
    classes: tuple[str, ...] = CLASSES
    input_size: int = IMAGE_SIZE  # square input, pixels
    channels: int = 1
    mean: float = 0.0  # in 0..255 pixel units: x_norm = (x - mean) / std
    std: float = 255.0
    model: str = "unknown"
    normalization: str = "train"  # "train": statistics of the training split; "per_split": each split its own
    val_accuracy: Optional[float] = None
    label_set: str = "fer2013"  # "fer2013" (7 classes) or "ferplus" (8: + contempt)
    # Softmax temperature fitted on PublicTest at export (probabilities = softmax(logits / T)):
    # the runtime applies it, so a score of 0.8 is right about 80 % of the time.
    temperature: float = 1.0
    input_name: str = "input"
    output_name: str = "logits"
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelContract":
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("fer_edge metadata is not a JSON object")
        version = d.get("format_version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"format_version must be an integer, got {str(version)[:20]!r}")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"model metadata format {version} is newer than this fer-edge understands ({FORMAT_VERSION}); upgrade fer-edge"
            )
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        if isinstance(kwargs.get("classes"), list):  # anything else is refused by check()
            kwargs["classes"] = tuple(kwargs["classes"])
        return cls(**kwargs).check()

    def check(self) -> "ModelContract":
        """``self`` if every field has the type and range the runtime relies on, else ValueError naming
        the field: a contract read from a file is anything its writer put there, and a wrong type
        (``"extra": 5``) would otherwise load, run and fail later, e.g. in ``infer --json``."""
        c = self
        for name in ("model", "normalization", "label_set", "input_name", "output_name"):
            if not isinstance(getattr(c, name), str):
                raise ValueError(f"fer_edge metadata has a {name} that is not a string ({_shown(getattr(c, name))})")
        if not isinstance(c.extra, dict):
            raise ValueError(f"fer_edge metadata has an extra that is not a JSON object ({_shown(c.extra)})")
        if not (_is_number(c.temperature) and math.isfinite(c.temperature) and 0.05 <= c.temperature <= 20):
            raise ValueError(f"fer_edge metadata has an invalid temperature ({_shown(c.temperature)}); expected 0.05..20")
        for name in ("mean", "std"):
            v = getattr(c, name)
            if not _is_number(v) or not math.isfinite(v):
                raise ValueError(f"fer_edge metadata has a {name} that is not a finite number ({str(v)[:24]!r})")
        if c.std <= 0:
            raise ValueError(f"fer_edge metadata has a non-positive std ({c.std})")
        if c.val_accuracy is not None and not (_is_number(c.val_accuracy) and math.isfinite(c.val_accuracy)):
            raise ValueError(f"fer_edge metadata has a val_accuracy that is not a finite number or null "
                             f"({_shown(c.val_accuracy)})")
        if isinstance(c.input_size, bool) or not isinstance(c.input_size, int) or not (
                INPUT_SIZE_RANGE[0] <= c.input_size <= INPUT_SIZE_RANGE[1]):
            raise ValueError(f"fer_edge metadata has an input_size of {str(c.input_size)[:24]!r}; "
                             f"expected {INPUT_SIZE_RANGE[0]}..{INPUT_SIZE_RANGE[1]} pixels")
        if not isinstance(c.classes, (list, tuple)):  # tuple() of a string would make one class per letter
            raise ValueError(f"fer_edge metadata has classes that are not a list ({_shown(c.classes)})")
        bad = [n for n in c.classes if not isinstance(n, str) or not n or not n.isprintable() or len(n) > 64]
        if bad or len(set(c.classes)) != len(c.classes) or not c.classes:
            shown = repr(bad[0])[:40] if bad else "a repeated or empty list"
            raise ValueError(f"fer_edge metadata has invalid class names ({shown}): each must be a short, "
                             "printable, distinct name")
        reserved = [n for n in c.classes if n in reserved_class_names()]
        if reserved:
            raise ValueError(f"fer_edge metadata has a class named {reserved[0]!r}, a name fer-edge's CSV and tables "
                             f"give another column ({', '.join(sorted(reserved_class_names()))}); rename the class")
        if isinstance(c.channels, bool) or not isinstance(c.channels, int) or c.channels not in (1, 3):
            raise ValueError(f"fer_edge metadata has {_shown(c.channels)} channels; 1 or 3 are supported")
        return c


def reserved_class_names() -> frozenset[str]:
    """The names no class may have: the other columns of the tables that have one probability
    column per class (``infer --csv``, ``analyze_video``'s CSV, ``analyze_images``'s table). A
    class called ``score`` or ``path`` would be a second column of that name, and its
    probability would overwrite the face's score or path."""
    # Imported here, not at the top: the runtime imports this module (fer_edge.runtime.model).
    from .runtime.images import image_columns
    from .runtime.timeline import columns

    return frozenset(columns(())) | frozenset(image_columns(()))


def _is_number(v: Any) -> bool:
    """An int or a float, but not a bool (JSON's true is no temperature)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shown(v: Any) -> str:
    """A field's value, short, for an error message."""
    return repr(v)[:24]
