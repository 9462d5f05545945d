"""Measure how FER2013 frames its faces: where YuNet puts the eyes and mouth in the 48x48 crop.

Each face is upscaled 4x (INTER_CUBIC, 192x192), padded with mid-gray into a 384x384
canvas (a plain background: replicating the border makes YuNet find fewer faces and
stretches its landmarks), and run through the shipped YuNet detector. The detection
nearest the canvas centre is mapped back to the 48x48 frame (pixel centres: x48 =
(X - pad + 0.5) / 4 - 0.5). Prints the medians and inter-quartile ranges and the
``CropGeometry`` they give; ``fer_edge/runtime/align.py`` holds the result
(``FER2013_FRAMING``) and docs/RUNTIME.md the numbers.

    python scripts/measure_fer_framing.py [--data ../shared/data/fer2013/fer2013.npz] [--limit 600]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fer_faces import DEFAULT_PUBLICTEST, load_faces  # noqa: E402

UP, PAD = 4, 96


def main() -> int:
    import cv2

    from fer_edge.runtime.detect import YuNetDetector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_PUBLICTEST, help="FER2013 npz, CSV or image folder")
    ap.add_argument("--split", default="PublicTest", help="split of a CSV / folder (default PublicTest)")
    ap.add_argument("--limit", type=int, default=600, help="first N faces (default 600; 0 = all)")
    args = ap.parse_args()

    faces, _ = load_faces(args.data, args.split, args.limit)
    det = YuNetDetector()
    side = 48 * UP
    canvas_c = side / 2 + PAD
    rows = []
    for face in faces:
        up = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(up, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=128)
        found = det.detect_faces(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        if not len(found):
            continue
        centres = found.boxes[:, :2] + found.boxes[:, 2:] / 2
        k = int(np.argmin(np.hypot(*(centres - canvas_c).T)))
        lm = (found.landmarks[k].astype(np.float64) - PAD + 0.5) / UP - 0.5
        rows.append(lm)
    lm = np.array(rows)
    eyes = (lm[:, 0] + lm[:, 1]) / 2
    mouth = (lm[:, 3] + lm[:, 4]) / 2
    stats = {
        "eye_x": eyes[:, 0],
        "eye_y": eyes[:, 1],
        "eye_distance": np.hypot(*(lm[:, 1] - lm[:, 0]).T),
        "eye_mouth": np.hypot(*(mouth - eyes).T),
        "eye_line_angle_deg": np.degrees(np.arctan2(lm[:, 1, 1] - lm[:, 0, 1], lm[:, 1, 0] - lm[:, 0, 0])),
        "mouth_y": mouth[:, 1],
        "nose_y": lm[:, 2, 1],
    }
    print(f"{args.data.name}: YuNet found {len(lm)} of {len(faces)} faces (4x upscale, mid-gray padding)")
    print(f"{'quantity (48x48 px)':<22} {'median':>7} {'25%':>7} {'75%':>7}")
    for name, v in stats.items():
        print(f"{name:<22} {np.median(v):7.2f} {np.percentile(v, 25):7.2f} {np.percentile(v, 75):7.2f}")
    med = {k: round(float(np.median(v)), 2) for k, v in stats.items()}
    print(f"\nCropGeometry(side=48.0, eye_x={med['eye_x']}, eye_y={med['eye_y']}, "
          f"eye_distance={med['eye_distance']}, eye_mouth={med['eye_mouth']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
