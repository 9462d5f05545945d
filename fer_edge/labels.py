"""The expression classes of the two label sets fer-edge trains on.

FER2013's seven, in the order of its ``emotion`` column, and FER+'s eight: the same seven in
the same order plus contempt, so a FER+ model's first seven outputs mean what a FER2013
model's do. An exported model carries its own class list (the ONNX contract); the runtime
shows whichever classes the model has.
"""
from __future__ import annotations

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)
FERPLUS_CLASSES: tuple[str, ...] = CLASSES + ("contempt",)
LABEL_SETS: dict[str, tuple[str, ...]] = {"fer2013": CLASSES, "ferplus": FERPLUS_CLASSES}
IMAGE_SIZE = 48
