"""Average the weights of a run's last epochs into one checkpoint (training/average.py says why).

    fer-edge train ... --keep-epochs 5 --out runs/m
    python scripts/average_checkpoints.py --data fer2013.csv --out runs/m/averaged.pt runs/m/epoch_0*.pt
    fer-edge eval --model runs/m/averaged.pt --data fer2013.csv --split PublicTest
"""
from __future__ import annotations

import argparse
import sys

from fer_edge.errors import FerEdgeError
from fer_edge.training.average import average_checkpoints


def main() -> int:
    ap = argparse.ArgumentParser(description="Average checkpoints' weights; BatchNorm recomputed on the training faces.")
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True, help="the FER2013 CSV / folder the run trained on")
    ap.add_argument("--ferplus", help="FER+ votes (fer2013new.csv) of a FER+ run: its validation accuracy is the "
                    "FER+ majority protocol's")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        ckpt = average_checkpoints(a.checkpoints, a.data, a.out, ferplus=a.ferplus)
    except FerEdgeError as exc:
        print(f"average_checkpoints: error: {exc}", file=sys.stderr)
        return 2
    acc = ckpt["best_val_accuracy"]
    said = f", validation accuracy {acc:.4f}" if acc >= 0 else ""
    print(f"wrote {a.out} (the average of {len(a.checkpoints)} checkpoints{said})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
