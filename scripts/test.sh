#!/bin/bash
# Installs what is needed, builds, and runs the whole test suite, in three
# stages (each is run even when an earlier one failed; any failure fails):
#  1. build/: the normal build (gcc, -Werror), every ctest test;
#  2. build-asan/: the same tree with ASan + UBSan (LeakSanitizer on), the
#     unit, emulator, command-line and integration tests: a sanitizer
#     finding ends the process with an error, and run-scenario.sh fails a
#     scenario whose output holds a sanitizer report;
#  3. build-fuzz/: the libFuzzer targets (clang), each replaying its corpus
#     and regression inputs, then fuzzing for HV_FUZZ_SECONDS (8) seconds.
# Arguments go to ctest in stage 1 only (e.g. -R vss-backup).
# HV_TEST_STAGES picks stages (default "normal asan fuzz"); HV_TEST_JOBS how
# many tests run at once (default: one per CPU).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh" || exit 1
# The packaging tests build and install the Debian package (issue 8).
bash "$top/tests/packaging/deps.sh" || exit 1

stages=${HV_TEST_STAGES:-normal asan fuzz}
# Tests in parallel, one per CPU: most wait on I/O, FUSE or timers. The ones
# that must run alone (package installs, benchmarks, the KVP runs that time
# requests) are RUN_SERIAL; every sandbox has its own mount, pid and (for the
# connector) network namespace. HV_TEST_JOBS=1 runs them one at a time.
jobs=${HV_TEST_JOBS:-$(nproc)}
failed=()
times=()

run_stage() {
	local name=$1 start=$SECONDS
	shift
	echo "=== test.sh: stage $name"
	if ! "$@"; then
		failed+=("$name")
	fi
	times+=("$name $((SECONDS - start)) s")
}

stage_normal() {
	local build
	build=$(bash "$top/scripts/build.sh") || return 1
	(cd "$build" && ctest --output-on-failure --timeout 300 -j"$jobs" "$@")
}

stage_asan() {
	local build
	build=$(BUILD_DIR="$top/build-asan" bash "$top/scripts/build.sh" \
		-DHV_SANITIZE=address,undefined) || return 1
	# exitcode: a leak found at exit fails the process; halt_on_error: the
	# first error ends it. hv-sandbox passes these into the sandbox.
	export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=23:detect_stack_use_after_return=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	(cd "$build" && ctest --output-on-failure --timeout 300 -j"$jobs" -L 'unit|emu|cli|integration')
}

stage_fuzz() {
	local build="$top/build-fuzz"
	if ! command -v clang >/dev/null; then
		echo "test.sh: no clang, fuzz stage skipped"
		return 0
	fi
	# -Werror belongs to the gcc build: clang flags -Wcast-qual inside GLib's
	# g_utf8_next_char() macro (hv_kvp/kvp-osinfo.c).
	CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHV_WERROR=OFF \
		-DHV_FUZZ=ON -DHV_SANITIZE=address,undefined \
		-DHV_FUZZ_SECONDS="${HV_FUZZ_SECONDS:-8}" >/dev/null || return 1
	cmake --build "$build" -j"$(nproc)" --target hv-fuzz-all -- --no-print-directory \
		>/dev/null || return 1
	(cd "$build" && ctest --output-on-failure -j"$jobs" -L fuzz)
}

for stage in $stages; do
	case $stage in
	normal) run_stage normal stage_normal "$@" ;;
	asan) run_stage asan stage_asan ;;
	fuzz) run_stage fuzz stage_fuzz ;;
	*)
		echo "test.sh: unknown stage $stage" >&2
		exit 2
		;;
	esac
done

printf 'test.sh: %s\n' "${times[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "test.sh: FAILED stages: ${failed[*]}"
	exit 1
fi
echo "test.sh: all stages passed"
