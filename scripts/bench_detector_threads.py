"""Detectors shared by threads: one OpenCV object per thread (what detect.py does) vs one behind a lock.

OpenCV's detector objects must not run concurrently (``CascadeClassifier``) or keep
per-call state (``FaceDetectorYN.setInputSize``). Two ways to share a detector between
threads: a lock around one object, or one object per thread (``threading.local``). This
times both with ``--threads`` threads each detecting ``--frames`` 640x480 frames (the
sample face on a background), after one warm-up frame per thread, and the one-off cost of
creating a thread's own object.

    python scripts/bench_detector_threads.py [--threads 2] [--frames 40]
"""
from __future__ import annotations

import argparse
import threading
import time

import numpy as np


def main() -> int:
    import cv2

    from fer_edge.runtime.default_model import sample_image_path
    from fer_edge.runtime.detect import HaarDetector, YuNetDetector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args()

    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[80:400, 160:480] = cv2.imread(str(sample_image_path()))
    print(f"{args.threads} threads x {args.frames} frames of 640x480, OpenCV {cv2.__version__}, "
          f"cv2 threads {cv2.getNumThreads()}")
    for name, make in (("yunet", YuNetDetector), ("haar", lambda: HaarDetector(scale_factor=1.2))):
        det = make()
        create = _time_create(det)
        lock = threading.Lock()

        def locked(d=det) -> None:
            with lock:
                d.detect(frame)

        def per_thread(d=det) -> None:
            d.detect(frame)

        for how, fn in (("one object + lock", locked), ("one object per thread", per_thread)):
            wall = _run(fn, args.threads, args.frames)
            n = args.threads * args.frames
            print(f"  {name:<6} {how:<22} {1000 * wall / n:6.2f} ms per frame overall ({n / wall:6.1f} frames/s)")
        print(f"  {name:<6} creating a thread's own object: {1000 * create:.1f} ms once")
    return 0


def _time_create(det) -> float:
    per = det._states if hasattr(det, "_states") else det._cascades
    t = time.perf_counter()
    per._factory()
    return time.perf_counter() - t


def _run(fn, threads: int, frames: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        fn()  # warm-up (and the thread's own object)
        barrier.wait()
        for _ in range(frames):
            fn()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
