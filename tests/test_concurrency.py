"""The thread-safety contract: shared objects answer every thread exactly as they answer one
caller at a time.

Serial results are computed first; then several threads, released together, call the same
object on real photos of *different sizes* (the sample photo in canvases of 512x512, 900x700,
640x480 and 400x300: a detector that keeps per-call state answers with another image's size
or buffers only when the sizes differ). Results must be bit-identical: same boxes, same labels,
the same float32 probabilities. With both detectors, Haar and YuNet.
"""
from __future__ import annotations

import numpy as np
import pytest

from fixtures_concurrency import (
    assert_identical,
    canvases,
    describe_faces,
    detector_kwargs,
    faces_key,
    run_threads,
)
from fixtures_runtime import sample_bgr, sample_image  # noqa: F401

THREADS = 4
CALLS = 6  # per thread; each thread walks the canvases from a different start


@pytest.fixture(scope="module")
def images(sample_bgr) -> list[np.ndarray]:  # noqa: F811
    return canvases(sample_bgr)


@pytest.fixture(scope="module")
def model():
    from fer_edge.runtime.model import FerModel

    return FerModel.load(None, device="cpu")


def _pick(images: list, t: int, i: int) -> int:
    return (t + i) % len(images)


def _serial(fn, images: list) -> list:
    out = [fn(img) for img in images]
    return out


@pytest.mark.parametrize("det", ["haar", "yunet"])
def test_shared_predictor_matches_serial(det: str, images, model) -> None:
    from fer_edge.runtime.api import Predictor

    p = Predictor(model, **detector_kwargs(det))
    alone = _serial(p.predict, images)
    assert all(alone), f"{det} must find the face in every canvas alone: {[describe_faces(f) for f in alone]}"
    got = run_threads(lambda t, i: p.predict(images[_pick(images, t, i)]), THREADS, CALLS)
    assert_identical(got, lambda t, i: alone[_pick(images, t, i)], faces_key, describe_faces, "predict")


@pytest.mark.parametrize("det", ["haar", "yunet"])
def test_shared_detector_objects_match_serial(det: str, images, model) -> None:
    """The CLI builds detector objects and hands them to Predictor: the objects themselves are
    what the threads share (``scale`` as the webcam loop uses it, so sizes change again)."""
    from fer_edge.runtime.api import Predictor
    from fer_edge.runtime.detect import create_detector

    kw = detector_kwargs(det)
    p = Predictor(model, detector=create_detector(kw["detector"], kw.get("detector_model"), fast=True))
    scales = (1.0, 0.5)
    jobs = [(img, s) for img in images for s in scales]
    alone = [p.detect(img, scale=s) for img, s in jobs]
    assert sum(len(b) for b in alone) >= len(images), f"{det} found too few faces alone: {alone}"
    got = run_threads(lambda t, i: p.detect(*jobs[(t * 3 + i) % len(jobs)]), THREADS, CALLS)
    assert_identical(got, lambda t, i: alone[(t * 3 + i) % len(jobs)], lambda b: np.asarray(b).tobytes(),
                     lambda b: np.asarray(b).tolist(), "detect")


@pytest.mark.parametrize("det", ["haar", "yunet"])
def test_fer_edge_predict_from_threads(det: str, images, sample_image) -> None:  # noqa: F811
    """The one-line API: the first calls race to build the cached Predictor, later ones share it;
    paths and arrays mixed."""
    import fer_edge
    from fer_edge.runtime import api

    kw = detector_kwargs(det)
    with api._cache_lock:
        api._cache.clear()
    inputs = [*images, str(sample_image)]
    got = run_threads(lambda t, i: fer_edge.predict(inputs[_pick(inputs, t, i)], device="cpu", **kw), THREADS, CALLS)
    alone = [fer_edge.predict(x, device="cpu", **kw) for x in inputs]
    assert all(alone)
    assert_identical(got, lambda t, i: alone[_pick(inputs, t, i)], faces_key, describe_faces, "fer_edge.predict")
    with api._cache_lock:
        assert len(api._cache) == 1, "concurrent first calls must build one cached Predictor, not one each"


def test_shared_fer_model_matches_serial(images, model) -> None:
    """FerModel.run / predict_proba from threads with batches of different sizes (1, 2 and 5 faces)."""
    from fer_edge.runtime.preprocess import preprocess_faces

    rng = np.random.default_rng(11)
    batches = []
    for n in (1, 2, 5):
        img = images[n % len(images)]
        h, w = img.shape[:2]
        xs, ys = rng.integers(0, w - 64, n), rng.integers(0, h - 64, n)
        sides = rng.integers(48, 64, n)
        boxes = np.stack([xs, ys, sides, sides], axis=1).astype(np.int32)
        batches.append(preprocess_faces(img, boxes, model.contract))
    alone = [model.predict_proba(b) for b in batches]
    logits = [model.run(b) for b in batches]
    got = run_threads(lambda t, i: (model.predict_proba(batches[(t + i) % 3]), model.run(batches[(t + 2 * i) % 3])),
                      THREADS, CALLS * 2)
    assert_identical(got, lambda t, i: (alone[(t + i) % 3], logits[(t + 2 * i) % 3]),
                     lambda pair: (pair[0].tobytes(), pair[0].shape, pair[1].tobytes(), pair[1].shape),
                     lambda pair: f"shapes {pair[0].shape}/{pair[1].shape}", "model call")


def test_preprocess_from_threads(images, model) -> None:
    """Preprocessing runs OpenCV with the GIL released: concurrent calls must not share buffers."""
    from fer_edge.runtime.preprocess import preprocess_faces

    jobs = [(img, np.array([[10, 10, 60 + 7 * k, 60 + 7 * k], [40, 30, 90, 90]], dtype=np.int32))
            for k, img in enumerate(images)]
    alone = [preprocess_faces(img, b, model.contract) for img, b in jobs]
    got = run_threads(lambda t, i: preprocess_faces(*jobs[(t + i) % len(jobs)], model.contract), THREADS, CALLS * 4)
    assert_identical(got, lambda t, i: alone[(t + i) % len(jobs)], lambda a: a.tobytes(), lambda a: str(a.shape),
                     "preprocess")
