"""Group 2b: face detection latency, YuNet against the Haar cascade, at 640x480 and 320x240.

The frame is the packaged sample photo (one face, about 80 px at 640x480) on a plain
background, resized to each frame size; every case must find the face (a detector that
finds nothing is not timed as if it had worked).

``Haar cascade, photo settings`` (baseline)
    ``HaarDetector()``: ``detectMultiScale`` with scale step 1.1, minNeighbors 5, no
    histogram equalisation (what ``--detector haar`` runs on photos).
``Haar cascade, stream settings``
    scale step 1.2 (what ``fer-edge webcam --detector haar`` runs).
``YuNet`` (the default)
    ``YuNetDetector()``: the shipped YuNet model through ``cv2.FaceDetectorYN``, boxes and
    five landmarks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

GROUP = "2b detect: one face in a frame, detector latency"
SIZES = {"640x480": (640, 480), "320x240": (320, 240)}
CASES = {
    "haar": ("Haar cascade, photo settings (scale step 1.1)", "baseline"),
    "haar-fast": ("Haar cascade, stream settings (scale step 1.2)", ""),
    "yunet": ("YuNet (default)", ""),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", list(SIZES))
def test_detect(benchmark, describe: Callable, sample_frame: np.ndarray, size: str, case: str) -> None:
    import cv2

    from fer_edge.runtime.detect import HaarDetector, YuNetDetector

    label, role = CASES[case]
    w, h = SIZES[size]
    frame = sample_frame if (w, h) == (640, 480) else cv2.resize(sample_frame, (w, h), interpolation=cv2.INTER_AREA)
    det = {"haar": lambda: HaarDetector(), "haar-fast": lambda: HaarDetector(scale_factor=1.2),
           "yunet": lambda: YuNetDetector()}[case]()
    # the CLI's detectors run on what the stream hands them: gray for Haar, BGR for YuNet
    image = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if case.startswith("haar") else frame
    describe(GROUP, label, role=role, subgroup=size, items=1, item="frame", family="detect")
    boxes = benchmark(det.detect, image)
    assert len(boxes) >= 1, f"{label} found no face in the {size} frame"
