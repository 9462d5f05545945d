"""Accuracy through the whole pipeline (detect, align, classify) on FER2013 faces placed into scenes.

Each PublicTest face is enlarged to a random size (60-200 px), turned by a random small
angle (up to +-15 degrees), scaled in brightness (0.6-1.4) and placed at a random
position in a 640x480 scene (a smooth background with noise). The same faces are also
fed directly (the 48x48 crops as they are, ``--no-detect``): the model's ceiling. Rows:

- ``direct``: the crops fed to the model as they are.
- ``yunet + aligned crop`` (the default pipeline): YuNet, each face rotated upright and
  framed like FER2013 (``fer_edge/runtime/align.py``).
- ``yunet + box crop``: the same detections, cropped from the (squared) box, no rotation.
- ``haar + box crop`` (``--haar``): the Haar cascade's box (slow: ~70 ms per scene).

A face counts as found when a detection overlaps its true box (IoU >= 0.3); a face not
found counts as wrong in "accuracy (all faces)". Deterministic for a given ``--seed``.

    python scripts/eval_in_the_wild.py [--data ../shared/data/fer2013/fer2013.npz]
        [--model M.onnx] [--limit N] [--seed 0] [--haar] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fer_faces import DEFAULT_PUBLICTEST, load_faces  # noqa: E402

SCENE = (640, 480)


@dataclass
class Row:
    name: str
    faces: int
    found: int
    correct: int

    @property
    def found_rate(self) -> float:
        return self.found / self.faces if self.faces else 0.0

    @property
    def accuracy_all(self) -> float:
        return self.correct / self.faces if self.faces else 0.0

    @property
    def accuracy_found(self) -> float:
        return self.correct / self.found if self.found else 0.0


def make_scene(face: np.ndarray, rng: np.random.Generator,
               max_tilt: float = 15.0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 640x480 BGR scene with ``face`` placed at a random size, angle, brightness and position."""
    import cv2

    W, H = SCENE
    side = float(rng.uniform(60, 200))
    angle = float(rng.uniform(-max_tilt, max_tilt))
    gain = float(rng.uniform(0.6, 1.4))
    cx = float(rng.uniform(side, W - side))
    cy = float(rng.uniform(side, H - side))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = rng.uniform(60, 190, size=3)
    slope = rng.uniform(-50, 50, size=(3, 2))
    bg = np.stack([base[c] + slope[c, 0] * xx / W + slope[c, 1] * yy / H for c in range(3)], axis=2)
    bg += rng.normal(0, 6, size=bg.shape)
    scene = np.clip(bg, 0, 255).astype(np.uint8)
    src = np.clip(face.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    src = cv2.cvtColor(src, cv2.COLOR_GRAY2BGR)
    k = side / 48.0
    m = cv2.getRotationMatrix2D((23.5, 23.5), angle, k)
    m[:, 2] += np.array([cx, cy]) - np.array([23.5, 23.5])
    cv2.warpAffine(src, m, (W, H), dst=scene, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)
    half = side / 2
    return scene, (int(round(cx - half)), int(round(cy - half)), int(round(side)), int(round(side)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_PUBLICTEST, help="FER2013 npz, CSV or image folder")
    ap.add_argument("--split", default="PublicTest", help="split of a CSV / folder (default PublicTest)")
    ap.add_argument("--model", default=None, help="exported .onnx (default: the packaged model)")
    ap.add_argument("--limit", type=int, default=0, help="first N faces (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--haar", action="store_true", help="also the Haar cascade (about 70 ms per scene)")
    ap.add_argument("--max-tilt", type=float, default=15.0, help="faces are turned by up to +-this many degrees (default 15)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()

    from fer_edge.runtime.api import Predictor
    from fer_edge.runtime.detect import FaceDetections, create_detector
    from fer_edge.runtime.model import FerModel
    from fer_edge.runtime.tracking import iou_matrix

    faces, labels = load_faces(args.data, args.split, args.limit)
    model = FerModel.load(args.model, device="cpu")
    aligned = Predictor(model, detector=create_detector("yunet"))
    boxed = Predictor(model, detector=aligned.detector, align=False)
    pipelines = [("yunet + aligned crop", aligned, True), ("yunet + box crop", boxed, False)]
    haar = Predictor(model, detector=create_detector("haar")) if args.haar else None

    t0 = time.perf_counter()
    c = model.contract
    batch = ((faces.astype(np.float32) - np.float32(c.mean)) / np.float32(c.std))[:, None]
    if c.channels > 1:
        batch = np.repeat(batch, c.channels, axis=1)
    direct_pred = np.concatenate([np.argmax(model.predict_proba(batch[i: i + 256]), axis=1)
                                  for i in range(0, len(batch), 256)])
    rows = {"direct": Row("direct (48x48 crops as they are)", len(faces), len(faces), int((direct_pred == labels).sum()))}
    for name, _, _ in pipelines:
        rows[name] = Row(name, len(faces), 0, 0)
    if haar is not None:
        rows["haar"] = Row("haar + box crop", len(faces), 0, 0)

    rng = np.random.default_rng(args.seed)
    for face, label in zip(faces, labels):
        scene, truth = make_scene(face, rng, args.max_tilt)
        found: FaceDetections = aligned.detect_faces(scene)
        hit = _match(found.boxes, truth, iou_matrix)
        for name, pred, use_lm in pipelines:
            if hit is None:
                continue
            lm = found.landmarks[hit: hit + 1] if use_lm else None
            p = pred.classify(scene, found.boxes[hit: hit + 1], lm)[0]
            rows[name].found += 1
            rows[name].correct += int(np.argmax(p) == label)
        if haar is not None:
            hb = haar.detect(scene)
            h = _match(hb, truth, iou_matrix)
            if h is not None:
                rows["haar"].found += 1
                rows["haar"].correct += int(np.argmax(haar.classify(scene, hb[h: h + 1])[0]) == label)
    elapsed = time.perf_counter() - t0

    if args.json:
        print(json.dumps([dict(asdict(r), found_rate=r.found_rate, accuracy_all=r.accuracy_all,
                               accuracy_found=r.accuracy_found) for r in rows.values()], indent=2))
        return 0
    print(f"{len(faces)} faces from {args.data.name} ({args.split}), model {model.contract.model} "
          f"({model.path.name}), seed {args.seed}, {elapsed:.0f} s")
    print(f"{'pipeline':<34} {'found':>7} {'acc. (all faces)':>17} {'acc. (found faces)':>19}")
    for r in rows.values():
        print(f"{r.name:<34} {100 * r.found_rate:6.1f}% {100 * r.accuracy_all:16.1f}% {100 * r.accuracy_found:18.1f}%")
    return 0


def _match(boxes: np.ndarray, truth: tuple, iou_matrix) -> "int | None":
    if len(boxes) == 0:
        return None
    iou = iou_matrix(np.asarray(boxes).reshape(-1, 4), np.array([truth]))[:, 0]
    k = int(np.argmax(iou))
    return k if iou[k] >= 0.3 else None


if __name__ == "__main__":
    raise SystemExit(main())
