#!/bin/bash
# tests/fuzz/run.sh [SECONDS]
# Builds the libFuzzer targets with clang, ASan and UBSan into build-fuzz
# (or $BUILD_DIR) and runs each for SECONDS seconds (default 60), one at a
# time, printing the executions per target. New inputs stay in the build
# tree; a crash fails and leaves its input under build-fuzz/tests/fuzz/artifacts/.
set -euo pipefail
seconds=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$top/build-fuzz}

if ! command -v clang >/dev/null; then
	echo "run.sh: clang is needed (scripts/deps.sh installs it)" >&2
	exit 1
fi
# -Werror belongs to the gcc build: clang flags -Wcast-qual inside GLib's
# g_utf8_next_char() macro (hv_kvp/kvp-osinfo.c).
CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHV_WERROR=OFF \
	-DHV_FUZZ=ON -DHV_SANITIZE=address,undefined >/dev/null
cmake --build "$build" -j2 --target hv-fuzz-all -- --no-print-directory >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
for target in vss-msg cn-msg mountinfo config freeze-marker ic-msg os-release kvp-ops \
	kvp-pool vmbus-ring fcopy-msg kvp-ip-info; do
	"$top/tests/fuzz/run-target.sh" "$build/tests/fuzz/fuzz-$target" \
		"$top/tests/fuzz/corpus/$target" "$top/tests/fuzz/regressions/$target" \
		"$build/tests/fuzz/corpus/$target" "$seconds" || failed=1
done
exit $failed
