#!/usr/bin/env bash
# Train, export and evaluate models on a bare GPU machine in one self-contained call.
#
# Made for the device tool (docs/TRAINING.md, "Training on a lent GPU"): each call starts on a
# bare machine and must finish in under 10 minutes, and what comes back is at most 8 files of
# 16 MiB under $OUT. Before the first call, once, on the developer machine:
#
#   mkdir -p .data && cp ../shared/data/fer2013/{compact.py,fer2013_compact.npz} .data/   # .data/ is git-ignored
#
# then a device call with carry [".data"] and the command, e.g.
#
#   bash scripts/device_train.sh --models "resnet18 resnet50" --epochs 60
#   bash scripts/device_train.sh --models fernet_l --epochs 80 --extra "--augment strong --mixup 0.2"
#
# It installs the project (the image has torch, onnx, onnxruntime, OpenCV, pybind11 and
# scikit-build-core), rebuilds Kaggle's fer2013.csv from the compact file, and for each model:
# trains (bf16 autocast and channels_last on CUDA, data and augmentation on the GPU), exports
# fp32 + int8 ONNX, evaluates both on PublicTest with the robustness report. Back come
# $OUT/results.tar.gz (per model: summary.json, log.jsonl, curves.png, export.json, eval reports,
# robustness; plus each best.pt when small) and $OUT/<model>.int8.onnx (the fp32 file too when it
# fits in 16 MiB). Locally (CPU, smoke): OUT=/tmp/out bash scripts/device_train.sh --models fernet_s --epochs 1 --limit 500
set -euo pipefail

MODELS="base vgg13 resnet18 resnet50"
EPOCHS=60
EXTRA=""
LIMIT=""
DATA_DIR=".data"
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --extra) EXTRA="$2"; shift 2 ;;
    --limit) LIMIT="--limit $2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    *) echo "device_train.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:?set OUT to the folder whose files come back}"
WORK="${WORK:-/tmp/fer-work}"
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

if ! python3 -c "import fer_edge._native" 2>/dev/null; then
  stamp "installing fer-edge"
  python3 -m pip install -q --no-build-isolation --no-deps . >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
fi
CSV="$WORK/fer2013.csv"
if [ ! -f "$CSV" ]; then
  stamp "rebuilding fer2013.csv from $DATA_DIR/fer2013_compact.npz"
  python3 "$DATA_DIR/compact.py" csv "$CSV"
fi
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "(cpu)")
PY

RES="$WORK/results"
mkdir -p "$RES"
for m in $MODELS; do
  run="$WORK/runs/$m"
  stamp "train $m ($EPOCHS epochs)"
  # shellcheck disable=SC2086
  fer-edge train --data "$CSV" --model "$m" --epochs "$EPOCHS" --patience "$EPOCHS" --out "$run" --quiet \
    $LIMIT $EXTRA 2>&1 | tee "$RES/$m.train.log" | grep -E "^(epoch|warning|fer-edge)" || true
  [ -f "$run/best.pt" ] || { echo "no checkpoint for $m" >&2; continue; }
  stamp "export $m"
  fer-edge export --checkpoint "$run/best.pt" --out "$WORK/onnx/$m.onnx" --data "$CSV" --int8 --json \
    >"$RES/$m.export.json" 2>"$RES/$m.export.log" || { cat "$RES/$m.export.log"; continue; }
  for variant in "$m" "$m.int8"; do
    stamp "eval $variant"
    fer-edge eval --model "$WORK/onnx/$variant.onnx" --data "$CSV" --split PublicTest --robustness \
      --out "$RES/$variant.eval" --json >/dev/null 2>"$RES/$variant.eval.log" || cat "$RES/$variant.eval.log"
  done
  mkdir -p "$RES/$m.run"
  cp "$run"/summary.json "$run"/log.jsonl "$RES/$m.run/" 2>/dev/null || true
  cp "$run"/curves.png "$RES/$m.run/" 2>/dev/null || true
  # Checkpoints come back only when small (the reference models' weights stay out of the repo).
  if [ "$(stat -c %s "$run/best.pt")" -lt 12000000 ]; then cp "$run/best.pt" "$RES/$m.run/best.pt"; fi
  cp "$WORK/onnx/$m.int8.onnx" "$OUT/"
  if [ "$(stat -c %s "$WORK/onnx/$m.onnx")" -lt 16000000 ]; then cp "$WORK/onnx/$m.onnx" "$OUT/"; fi
done
tar -C "$WORK" -czf "$OUT/results.tar.gz" results
stamp "done: $(ls "$OUT" | tr '\n' ' ')"
