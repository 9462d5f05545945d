"""Soak: a camera hub's day, compressed. Four threads call shared Predictors (Haar and YuNet,
one FerModel) while the webcam loop runs a generated stream on the same model; every answer
must equal the serial one bit for bit, and resident memory may grow by at most 20 MB.

Sizes: the default ``pytest`` runs a short version (4 threads x 50 predictions, 600 frames);
``FER_SOAK=full`` runs the issue's 4 x 2,500 predictions and 30,000 frames (about half an hour
on a busy 2-core machine)::

    FER_SOAK=full python -m pytest tests/test_soak.py -m soak -s -q

The soak runs in a pytest process of its own (``FER_SOAK_CHILD=1`` marks it), so the memory it
measures is its own, not the heaps the rest of the suite left behind. Memory is measured with
glibc's mmap threshold fixed at 128 KiB (see :func:`fixed_mmap_threshold`;
``FER_SOAK_GLIBC_DEFAULTS=1`` measures with glibc's defaults instead).

Order: serial references first (every photo with each detector; the stream alone, each
frame's faces hashed), then a warm-up, then the baseline RSS, then the concurrent phase, then
the final RSS. ``-s`` prints the numbers.
"""
from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

from fixtures_concurrency import canvas, describe_faces, detector_kwargs, faces_key, run_threads
from fixtures_runtime import face_patch, sample_bgr, sample_image, synthetic_background  # noqa: F401

FULL = os.environ.get("FER_SOAK", "").lower() == "full"
THREADS = 4
CALLS = 2500 if FULL else 50  # per thread
FRAMES = 30_000 if FULL else 600
FRESH = 1000 if FULL else 20  # predictions made each on a new thread (a thread-per-request server)
MAX_GROWTH_MB = 20.0
# photos of different sizes (smaller than the concurrency tests' so the soak stays affordable)
SOAK_CANVASES = (((640, 480), 1.0, (260, 110)), ((400, 300), 0.8, (30, 20)), ((480, 360), 0.9, (100, 40)))
DETECTORS = ("haar", "yunet")

pytestmark = [pytest.mark.soak, pytest.mark.slow]


def fixed_mmap_threshold() -> bool:
    """``mallopt(M_MMAP_THRESHOLD, 128 KiB)``, as ``MALLOC_MMAP_THRESHOLD_=131072`` does for a
    server (docs/RUNTIME.md): blocks of 128 KiB and more (frames, detector blobs) are mapped and
    unmapped on their own. glibc otherwise raises the threshold after the first such free, and
    from then on serves those blocks from per-thread arenas that keep them: with threads, RSS
    then wanders by +-40 MB around a plateau (measured: 4 threads x 100 predictions, five times:
    157-248 MB; with the fixed threshold 132.6 MB every time; serial calls: flat either way).
    The soak is about leaks, so it removes that noise; ``FER_SOAK_GLIBC_DEFAULTS=1`` keeps
    glibc's defaults. False where there is no glibc."""
    if os.environ.get("FER_SOAK_GLIBC_DEFAULTS"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def rss_mb(trim: bool = False) -> Optional[float]:
    """Resident set size of this process in MB (Linux /proc; None elsewhere).

    ``trim`` first hands glibc's free heap pages back to the system (``malloc_trim(0)``): the
    threads' malloc arenas otherwise keep tens of MB of *freed* memory resident for a while,
    which swings RSS by +-40 MB between two readings and would hide, or fake, a leak of 20 MB.
    """
    if trim:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, AttributeError):
        return None


class GeneratedStream:
    """A 640x480, 30 FPS "video file" of ``frames`` frames made on the fly: the sample face moving
    over a room background (period 300 frames), so 30,000 frames cost no disk and no memory."""

    def __init__(self, sample: np.ndarray, frames: int):
        self.frames, self.i = frames, 0
        self.bg = synthetic_background((640, 480))
        self.patch = face_patch(sample, scale=1.3)

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        if self.i >= self.frames:
            return False, None
        t = (self.i % 300) / 300.0
        x = int(40 + 300 * abs(2 * t - 1))
        y = int(60 + 30 * np.sin(2 * np.pi * t))
        frame = self.bg.copy()
        ph, pw = self.patch.shape[:2]
        frame[y : y + ph, x : x + pw] = self.patch
        self.i += 1
        return True, frame

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(self.frames),
                cv2.CAP_PROP_POS_MSEC: (self.i - 1) * 1000.0 / 30.0}.get(prop, 0.0)

    def release(self) -> None:
        pass


def _digest(faces: list) -> int:
    return int.from_bytes(hashlib.blake2b(repr(faces_key(faces)).encode(), digest_size=8).digest(), "little")


def run_recorded_stream(predictor: Any, sample: np.ndarray, frames: int) -> tuple[array, Any]:
    """The webcam loop (``run_stream``, as ``fer-edge webcam --source FILE --no-display``) over a
    generated stream; returns one 64-bit hash of every frame's faces (boxes, labels, track ids,
    float32 probabilities) and the summary."""
    from fer_edge.runtime.stream import StreamOptions, run_stream

    digests = array("Q")
    pack = predictor.faces_from

    def recording(*args: Any, **kwargs: Any) -> list:
        faces = pack(*args, **kwargs)
        digests.append(_digest(faces))
        return faces

    predictor.faces_from = recording  # instance attribute: only this predictor records
    try:
        summary = run_stream(predictor, GeneratedStream(sample, frames), StreamOptions(display=False, frame_policy="all"),
                             live=False, name="generated")
    finally:
        del predictor.faces_from
    assert summary.end == "eof" and summary.frames == frames, summary.line()
    assert len(digests) == frames, "the webcam loop no longer packs its results with Predictor.faces_from"
    return digests, summary


def test_soak_threads_and_stream_identical_to_serial_and_memory_flat(sample_bgr, request) -> None:  # noqa: F811
    if os.environ.get("FER_SOAK_CHILD") or not os.path.exists("/proc/self/statm"):
        soak(sample_bgr)
        return
    # A process of its own, as a camera hub's server is: inside the whole suite's process (1.4 GB
    # of torch, ONNX Runtime sessions and heaps left by 500 other tests) the RSS after
    # malloc_trim moved by up to 21 MB with no leak, where alone it moves by about 3 MB.
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"{__file__}::{request.node.name}"],
        cwd=Path(__file__).resolve().parents[1], env={**os.environ, "FER_SOAK_CHILD": "1"},
        capture_output=True, text=True, timeout=4 * 3600 if FULL else 1200,
    )
    print(child.stdout[-4000:])
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-2000:]
    assert " passed" in child.stdout or " skipped" in child.stdout, child.stdout[-2000:]


def soak(sample_bgr: np.ndarray) -> None:  # noqa: F811
    from fer_edge.runtime.api import Predictor
    from fer_edge.runtime.detect import create_detector
    from fer_edge.runtime.model import FerModel

    fixed = fixed_mmap_threshold()
    model = FerModel.load(None, device="cpu")
    predictors = {d: Predictor(model, **detector_kwargs(d)) for d in DETECTORS}
    stream_kw = detector_kwargs(DETECTORS[-1])
    streamer = Predictor(model, detector=create_detector(stream_kw["detector"], stream_kw.get("detector_model"), fast=True))
    images = [canvas(sample_bgr, *spec) for spec in SOAK_CANVASES]
    jobs = [(d, k) for d in DETECTORS for k in range(len(images))]

    def call(t: int, i: int) -> int:
        d, k = jobs[(3 * t + i) % len(jobs)]
        return _digest(predictors[d].predict(images[k]))

    # serial references
    alone = {job: predictors[job[0]].predict(images[job[1]]) for job in jobs}
    assert all(alone.values()), {j: describe_faces(f) for j, f in alone.items()}
    expected = {job: _digest(f) for job, f in alone.items()}
    t0 = time.perf_counter()
    serial_stream, serial_summary = run_recorded_stream(streamer, sample_bgr, FRAMES)
    serial_stream_s = time.perf_counter() - t0
    assert serial_summary.frames_with_faces >= 0.9 * FRAMES, serial_summary.line()

    def concurrent_phase(calls: int, frames: int, fresh: int) -> tuple[list, dict[str, Any], float, float]:
        """The stream on its own thread, four API threads beside it, all on the one model, and
        ``fresh`` predictions each made on a new short-lived thread (per-thread detector state
        must be released with its thread)."""
        out: dict[str, Any] = {"fresh": []}

        def fresh_threads() -> None:
            for j in range(fresh):
                th = threading.Thread(target=lambda j=j: out["fresh"].append((j, call(j % THREADS, j))))
                th.start()
                th.join()

        def stream_thread() -> None:
            try:
                out["digests"], out["summary"] = run_recorded_stream(streamer, sample_bgr, frames)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
                out["error"] = exc

        t0 = time.perf_counter()
        st = threading.Thread(target=stream_thread, name="fer-stream")
        ft = threading.Thread(target=fresh_threads, name="fer-fresh")
        st.start()
        ft.start()
        got = run_threads(call, THREADS, calls, timeout=7200)
        api_s = time.perf_counter() - t0
        st.join(7200)
        ft.join(7200)
        assert len(out["fresh"]) == fresh, "a prediction on a fresh thread failed (see the thread's traceback)"
        assert "error" not in out, out.get("error")
        return got, out, api_s, time.perf_counter() - t0

    # warm-up: the same phase, short (thread-local detectors, ORT's and the allocator's arenas
    # grow to their working size here), then the baseline
    warm_got, warm_out, _, _ = concurrent_phase(2 * len(jobs), 300, 10)
    assert list(warm_out["digests"]) == list(serial_stream[:300])
    gc.collect()
    base_raw, base = rss_mb(), rss_mb(trim=True)
    peak = [base_raw or 0.0]
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(0.5):
            peak[0] = max(peak[0], rss_mb() or 0.0)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    got, stream_out, api_s, wall_s = concurrent_phase(CALLS, FRAMES, FRESH)
    stop.set()
    sampler.join()
    gc.collect()
    final_raw, final = rss_mb(), rss_mb(trim=True)

    wrong = sum(row[i] != expected[jobs[(3 * t + i) % len(jobs)]] for g in (warm_got, got)
                for t, row in enumerate(g) for i in range(len(row)))
    wrong += sum(d != expected[jobs[(3 * (j % THREADS) + j) % len(jobs)]] for o in (warm_out, stream_out)
                 for j, d in o["fresh"])
    frames_wrong = sum(a != b for a, b in zip(stream_out["digests"], serial_stream))
    first_bad = next((i for i, (a, b) in enumerate(zip(stream_out["digests"], serial_stream)) if a != b), None)
    growth = None if base is None or final is None else final - base
    print(
        f"\nsoak ({'full' if FULL else 'short'}): {THREADS} threads x {CALLS} predictions ({len(jobs)} photo/detector "
        f"pairs) in {api_s:.1f}s ({THREADS * CALLS / api_s:.1f}/s) and {FRESH} on fresh threads, beside a {FRAMES}-frame stream "
        f"({stream_out['summary'].fps:.1f} FPS; alone {FRAMES / serial_stream_s:.1f} FPS); wall {wall_s:.1f}s; "
        f"wrong predictions {wrong}, stream frames differing from serial {frames_wrong}; "
        f"RSS {base:.1f} -> {final:.1f} MB after malloc_trim (growth {growth:+.1f} MB; without trim "
        f"{base_raw:.1f} -> {final_raw:.1f} MB, peak {peak[0]:.1f} MB; glibc mmap threshold "
        f"{'fixed at 128 KiB' if fixed else 'default (dynamic)'})"
    )
    assert wrong == 0, f"{wrong} of {THREADS * CALLS} concurrent predictions differ from the serial ones"
    assert frames_wrong == 0, f"{frames_wrong} stream frames differ from the serial run (first: frame {first_bad})"
    if growth is None:
        pytest.skip("resident memory not measurable on this platform (no /proc/self/statm)")
    assert growth <= MAX_GROWTH_MB, f"resident memory grew by {growth:.1f} MB (limit {MAX_GROWTH_MB} MB)"
