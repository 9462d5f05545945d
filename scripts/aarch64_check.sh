#!/usr/bin/env bash
# The C++ core on aarch64 (the ISA of most edge devices), from an x86-64 Debian/Ubuntu box:
#   1. cross-compiles csrc/tests/check_core.cpp with csrc/parse.cpp and csrc/normalize.cpp,
#      statically, with the extension's flags (-O3 -ffp-contract=off), and runs it under
#      qemu-user: valid files, every parse error with its exact message, the fast path (its
#      portable block kernel: aarch64 has no SSE2) agreeing with the simple path on 3,000
#      random and mutated inputs, mean_std / normalize, parallel_for passing exceptions on;
#   2. compiles the pybind11 bindings (csrc/module.cpp) for aarch64 against this Python's
#      headers (compile only: linking and importing the module needs an aarch64 Python).
#
# Usage: scripts/aarch64_check.sh [--install] [--native [--asan]]
#   --install  apt-get install the cross compiler and qemu-user first (needs root)
#   --native   build and run check_core for this machine instead (no cross compiler, no qemu)
#   --asan     with --native: under AddressSanitizer + UBSan (every input is an exact-size buffer)
# Build products go to build/aarch64/ (git-ignored). Exit status 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."

install=0 native=0 asan=0
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    --native) native=1 ;;
    --asan) asan=1 ;;
    *) echo "usage: $0 [--install] [--native [--asan]]" >&2; exit 2 ;;
  esac
done

if [[ $install == 1 ]]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++-aarch64-linux-gnu qemu-user
fi

FLAGS=(-std=c++17 -O3 -Wall -Wextra -ffp-contract=off -Icsrc)
SOURCES=(csrc/tests/check_core.cpp csrc/normalize.cpp)  # check_core.cpp includes parse.cpp
OUT=build/aarch64
mkdir -p "$OUT"

if [[ $native == 1 ]]; then
  if [[ $asan == 1 ]]; then
    ${CXX:-g++} "${FLAGS[@]}" -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
      -fno-omit-frame-pointer "${SOURCES[@]}" -pthread -o "$OUT/check_core_asan"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$OUT/check_core_asan"
  else
    ${CXX:-g++} "${FLAGS[@]}" "${SOURCES[@]}" -pthread -o "$OUT/check_core_native"
    "$OUT/check_core_native"
  fi
  exit
fi

CXX=aarch64-linux-gnu-g++
for tool in "$CXX" qemu-aarch64; do
  command -v "$tool" >/dev/null || {
    echo "$tool not found: run $0 --install (apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
    exit 2
  }
done

echo "== check_core for aarch64 ($($CXX -dumpversion)), run under $(qemu-aarch64 --version | head -1)"
"$CXX" "${FLAGS[@]}" -static "${SOURCES[@]}" -pthread -o "$OUT/check_core"
file_type=$(od -An -tx1 -j18 -N2 "$OUT/check_core" | tr -d ' ')
[[ $file_type == b700 ]] || { echo "not an aarch64 ELF (e_machine $file_type)" >&2; exit 1; }
qemu-aarch64 "$OUT/check_core"

echo "== csrc/module.cpp (pybind11 bindings) compiles for aarch64"
PY=${PYTHON:-python3}
PY_INC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PB_INC=$("$PY" -c 'import pybind11; print(pybind11.get_include())')
"$CXX" "${FLAGS[@]}" -fPIC -I"$PY_INC" -I"$PB_INC" -c csrc/module.cpp -o "$OUT/module.o"
echo "module.cpp: compiled ($(stat -c %s "$OUT/module.o") bytes of aarch64 object code)"
echo "aarch64 check passed"
