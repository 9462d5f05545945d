"""Helpers for the thread-safety tests and the soak: real photos of different sizes, threads
started together, and exact comparison with serial results.

Why different sizes: a detector that keeps per-call state (OpenCV's cascade buffers,
``cv2.FaceDetectorYN``'s input size) gives *another caller's* answer only when the callers'
images differ, so every concurrent test here mixes canvases of different sizes with the
face at a different place and scale in each.

Import what you use explicitly::

    from fixtures_concurrency import canvases, run_threads, assert_identical
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytest

from fixtures_runtime import REPO, synthetic_background

# (canvas width, height), scale of the 320x320 sample photo, top-left corner of the photo.
# The first two are the 512x512 and 900x700 photos.
CANVASES: tuple[tuple[tuple[int, int], float, tuple[int, int]], ...] = (
    ((512, 512), 1.2, (70, 20)),
    ((900, 700), 2.1, (200, 20)),
    ((640, 480), 1.0, (260, 110)),
    ((400, 300), 0.8, (30, 20)),
)

YUNET_FILE = "face_detection_yunet_2023mar.onnx"


def canvas(sample_bgr: np.ndarray, size: tuple[int, int], scale: float, at: tuple[int, int]) -> np.ndarray:
    """The real sample photo, scaled, pasted into a synthetic room background of ``size``."""
    import cv2

    W, H = size
    img = synthetic_background((W, H))
    photo = cv2.resize(sample_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x, y = at
    ph, pw = min(photo.shape[0], H - y), min(photo.shape[1], W - x)
    img[y : y + ph, x : x + pw] = photo[:ph, :pw]
    return img


def canvases(sample_bgr: np.ndarray, specs: Sequence = CANVASES) -> list[np.ndarray]:
    return [canvas(sample_bgr, *spec) for spec in specs]


def yunet_model() -> Optional[Path]:
    """The YuNet model: shipped inside the package when it is, else the team's shared copy."""
    import fer_edge

    pkg = Path(fer_edge.__file__).resolve().parent / "assets"
    for found in sorted(pkg.rglob("face_detection_yunet*.onnx")):
        return found
    shared = REPO.parent / "shared" / "models" / "yunet" / YUNET_FILE
    return shared if shared.is_file() else None


def detector_kwargs(name: str) -> dict[str, Any]:
    """Keyword arguments for ``Predictor`` / ``fer_edge.predict`` selecting detector ``name``
    (``haar`` or ``yunet``); skips the test when the YuNet model is not available."""
    if name == "haar":
        return {"detector": "haar"}
    if name == "yunet":
        path = yunet_model()
        if path is None:
            pytest.skip(f"no YuNet model: neither in fer_edge/assets nor ../shared/models/yunet/{YUNET_FILE}")
        return {"detector": "yunet", "detector_model": str(path)}
    raise ValueError(name)


def run_threads(work: Callable[[int, int], Any], threads: int, calls: int, timeout: float = 600) -> list[list[Any]]:
    """``work(thread, call)`` for ``calls`` calls on each of ``threads`` threads released together
    by a barrier; returns ``results[thread][call]``. An exception in any thread is re-raised here
    (a crash is as much a failure as a wrong answer)."""
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[None] * calls for _ in range(threads)]
    errors: list[BaseException] = []

    def body(t: int) -> None:
        try:
            barrier.wait()
            for i in range(calls):
                results[t][i] = work(t, i)
        except BaseException as exc:  # noqa: BLE001 - reported below, with the thread
            errors.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=body, args=(t,), name=f"fer-worker-{t}") for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout)
    assert not any(th.is_alive() for th in pool), f"worker threads still running after {timeout}s"
    if errors:
        raise errors[0]
    return results


def faces_key(faces: Sequence[Any]) -> tuple:
    """Everything a caller sees of a list of FaceResult, in a form compared exactly: boxes,
    labels, track ids and the float32 probabilities as raw bytes (so -0.0 vs 0.0 or one ulp count)."""
    return tuple(
        (tuple(f.box), f.label, f.track_id, np.asarray(list(f.probabilities.values()), dtype=np.float32).tobytes())
        for f in faces
    )


def describe_faces(faces: Sequence[Any]) -> str:
    return "; ".join(f"{f.label} {f.score:.3f} at {tuple(f.box)}" for f in faces) or "no face"


def assert_identical(got: list[list[Any]], expected_for: Callable[[int, int], Any], key: Callable[[Any], Any],
                     show: Callable[[Any], str] = repr, what: str = "call") -> None:
    """Every ``got[t][i]`` equals ``expected_for(t, i)`` under ``key``; the message counts the
    differences and shows the first few."""
    bad = []
    total = 0
    for t, row in enumerate(got):
        for i, value in enumerate(row):
            total += 1
            exp = expected_for(t, i)
            if key(value) != key(exp):
                bad.append(f"thread {t} {what} {i}: got {show(value)}, alone {show(exp)}")
    assert not bad, f"{len(bad)} of {total} concurrent {what}s differ from the same {what} made alone:\n" + "\n".join(bad[:5])
