#!/bin/bash
# run-target.sh FUZZER SEEDS REGRESSIONS WORK_CORPUS SECONDS
# One libFuzzer target: replays the seed corpus and the regression inputs,
# then fuzzes for SECONDS seconds, writing new inputs to WORK_CORPUS (never
# to the source tree) and a crashing input next to it (artifacts/).
# Prints "fuzz <name>: <executions> executions in <s> s, corpus <n>"; fails
# on any crash, leak or broken invariant.
set -euo pipefail
fuzzer=$1 seeds=$2 regressions=$3 work=$4 seconds=$5
name=$(basename "$fuzzer")
artifacts=$(dirname "$work")/../artifacts/$name
mkdir -p "$work" "$artifacts"
# The targets that write files (pools, copies, markers) fsync them: on a
# disk that costs milliseconds per input, on tmpfs nothing.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi

replay=("$seeds")
[ -d "$regressions" ] && replay+=("$regressions")
"$fuzzer" -runs=0 "${replay[@]}" 2>&1 | tail -n 3

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$fuzzer" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$work" "$seeds" >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
	tail -n 60 "$log"
	echo "fuzz $name: FAILED (exit $rc), input kept in $artifacts/"
	exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
echo "fuzz $name: ${execs:-?} executions in ${secs:-$seconds} s, coverage ${cov:-?} edges, corpus $(find "$work" -type f | wc -l) new inputs"
