#!/bin/bash
# Configures and builds into ./build (or $BUILD_DIR); arguments go to cmake
# (e.g. -DHV_SANITIZE=address,undefined).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHV_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
echo "$build"
