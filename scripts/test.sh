#!/bin/bash
# Installs what is needed, builds, and runs the whole test suite.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
# The packaging tests build and install the Debian package (issue 8).
bash "$top/tests/packaging/deps.sh"
build=$(bash "$top/scripts/build.sh")
cd "$build"
ctest --output-on-failure --timeout 300 "$@"
