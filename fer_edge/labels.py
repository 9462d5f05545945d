"""FER2013's seven expression classes, in the order of its `emotion` column."""
from __future__ import annotations

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)
IMAGE_SIZE = 48
