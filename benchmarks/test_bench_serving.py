"""Group 5: serving, predictions per second on a 640x480 photo with 1, 2 and 4 calling threads.

What a web service or camera hub does: one :class:`fer_edge.runtime.api.Predictor` (one ONNX
Runtime session, one model in memory) shared by the threads that handle requests. Each case
is a pool of ``T`` long-lived calling threads (as a server's worker pool) that together make
``N`` predictions of the same photo (``N / T`` each: detection with the default detector,
preprocessing, one model call); the rate is ``N`` / the round's wall time, so it is the total
throughput of the process.

The knobs a server owner has, all measured:

- calling threads ``T``: 1, 2, 4 (more threads than cores only queue);
- ONNX Runtime intra-op threads (``Predictor(threads=...)``, ``--threads``): 1, or all cores
  (onnxruntime's default);
- OpenCV's threads (``cv2.setNumThreads``, process-wide; the detector and the resizes use
  them): 1, or OpenCV's default (all cores).

Baseline: 1 calling thread with both libraries at their defaults (what a plain script gets).
Every result is checked against the serial prediction bit for bit (the thread-safety
contract), so a fast but wrong configuration cannot win.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np
import pytest

from bench_machine import usable_cores
from bench_settings import BenchSettings

GROUP = "5 serving: predictions per second on a 640x480 photo, one shared Predictor"
CALLING_THREADS = (1, 2, 4)
ORT_THREADS: tuple[Optional[int], ...] = (1, None)  # None: onnxruntime's default, all cores
CV_THREADS: tuple[Optional[int], ...] = (1, None)  # None: OpenCV's default, all cores


def photo_640x480() -> np.ndarray:
    """The packaged sample photo (a real face) scaled to 240 px in a 640x480 room-like scene."""
    import cv2

    from fer_edge.runtime.default_model import sample_image_path

    sample = cv2.imread(str(sample_image_path()), cv2.IMREAD_COLOR)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    img = np.stack([80 + 60 * xx / 640, 100 + 40 * yy / 480, 130 - 50 * xx / 640], axis=2).astype(np.uint8)
    img[120:360, 260:500] = cv2.resize(sample, (240, 240), interpolation=cv2.INTER_AREA)
    return img


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return photo_640x480()


def _key(faces: list) -> tuple:
    return tuple((f.box, f.label, np.asarray(list(f.probabilities.values()), np.float32).tobytes()) for f in faces)


def _label(calling: int, ort_threads: Optional[int], cv_threads: Optional[int]) -> str:
    ort = "all cores" if ort_threads is None else str(ort_threads)
    cv = "all cores" if cv_threads is None else str(cv_threads)
    return f"{calling} calling thread{'s' if calling > 1 else ''}, ORT threads {ort}, OpenCV threads {cv}"


CASES = [(c, o, v) for c in CALLING_THREADS for o in ORT_THREADS for v in CV_THREADS]


@pytest.mark.parametrize("calling,ort_threads,cv_threads", CASES,
                         ids=[f"calls{c}-ort{o or 'all'}-cv{v or 'all'}" for c, o, v in CASES])
def test_serving_throughput(benchmark, describe: Callable, bench_settings: BenchSettings, photo: np.ndarray,
                            calling: int, ort_threads: Optional[int], cv_threads: Optional[int]) -> None:
    import cv2

    from fer_edge.runtime.api import Predictor

    predictions = 8 if bench_settings.smoke else 48  # divisible by every thread count
    predictor = Predictor(None, device="cpu", threads=ort_threads)
    detector = getattr(predictor.detector, "name", type(predictor.detector).__name__)
    expected = _key(predictor.predict(photo))
    assert expected, "the default detector must find the face in the benchmark photo"

    cv_default = cv2.getNumThreads()
    cv2.setNumThreads(cv_default if cv_threads is None else cv_threads)
    results: list[tuple] = []
    pool = ThreadPoolExecutor(max_workers=calling, thread_name_prefix="fer-serve")

    def worker(n: int) -> list[tuple]:
        return [_key(predictor.predict(photo)) for _ in range(n)]

    def one_round() -> None:
        futures = [pool.submit(worker, predictions // calling) for _ in range(calling)]
        for f in futures:
            results.extend(f.result())

    try:
        one_round()  # warm-up: each pool thread builds its own detector, ORT allocates its buffers
        describe(GROUP, _label(calling, ort_threads, cv_threads),
                 role="baseline" if (calling, ort_threads, cv_threads) == (1, None, None) else "",
                 items=predictions, item="prediction", family="serving",
                 settings=f"default detector ({detector}), CPU, {usable_cores()} usable cores",
                 calling_threads=calling, ort_threads=ort_threads or 0, cv_threads=cv_threads or 0)
        benchmark.pedantic(one_round, rounds=bench_settings.rounds, iterations=1, warmup_rounds=0)
    finally:
        pool.shutdown(wait=True)
        cv2.setNumThreads(cv_default)
    wrong = sum(r != expected for r in results)
    assert wrong == 0, f"{wrong} of {len(results)} concurrent predictions differ from the serial one"
