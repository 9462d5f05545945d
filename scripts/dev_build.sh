#!/usr/bin/env bash
# Development layout without reinstalling: builds fer_edge._native in place and links
# training/ as fer_edge/training (both git-ignored), so `PYTHONPATH=. python -m fer_edge ...`
# and `PYTHONPATH=. pytest` run the working tree. Users and CI install with `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)  # [project] version: written once
cmake -S . -B build/dev -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release \
  -DSKBUILD_PROJECT_NAME=fer_edge -DSKBUILD_PROJECT_VERSION="$VERSION" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" \
  ${EXTRA_CMAKE_ARGS:-} >/dev/null
cmake --build build/dev -j2
# Copy then rename: overwriting the library in place crashes any process that has it loaded.
for so in build/dev/_native*.so; do
  cp "$so" "fer_edge/.$(basename "$so").tmp" && mv -f "fer_edge/.$(basename "$so").tmp" "fer_edge/$(basename "$so")"
done
ln -sfn ../training fer_edge/training
echo "dev build ready: PYTHONPATH=$PWD"
