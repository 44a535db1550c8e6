#!/bin/bash
# config-complete.sh SRC BUILD
#
# The default configuration file documents every option, and nothing else:
# the keys each daemon accepts (the "group.key" strings of common/daemon.c's
# common_keys and of each daemon's *_known_keys table), the commented
# "#key=default" lines of packaging/config/hyperv-daemons.conf per section,
# and the ".BI key=" entries per section of hyperv-daemons.conf(5) must be
# the same three sets. Then the file with every line uncommented is loaded
# by the built hv_vss_daemon (--status): no warning, no error, since every
# default shown must be a valid value and the other daemons' sections are
# theirs to check.
set -euo pipefail
src=$1
build=${2:-}
conf=$src/packaging/config/hyperv-daemons.conf
man=$src/packaging/man/hyperv-daemons.conf.5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Keys from the code: every "group.key" literal between "known_keys[] = {"
# (or common_keys) and the closing "};".
for f in "$src"/common/daemon.c "$src"/hv_*/*.c; do
	awk '/(known_keys|common_keys)\[\] = \{/ { on = 1 } on { print } on && /\};/ { on = 0 }' "$f"
done | grep -o '"[a-z]*\.[a-z-]*"' | tr -d '"' | sort -u >"$work/code"

# Keys from the file: "#key=" lines under "[group]".
awk '/^\[[a-z]+\]$/ { g = substr($0, 2, length($0) - 2) }
     /^#[a-z][a-z-]*=/ { k = substr($0, 2); sub(/=.*/, "", k); print g "." k }' "$conf" |
	sort -u >"$work/file"

# Keys from the man page: ".BI key\-name= default" under ".SH [group]".
awk '/^\.SH \[[a-z]+\]/ { g = $2; gsub(/[][]/, "", g) } /^\.SH [^[]/ { g = "" }
     g != "" && /^\.BI [a-z][a-z\\-]*=/ { k = $2; sub(/=.*/, "", k); gsub(/\\/, "", k); print g "." k }' "$man" |
	sort -u >"$work/man"

fail=0
for other in file man; do
	if ! diff -u --label code --label "$other" "$work/code" "$work/$other"; then
		echo "config-complete: the keys of the code and of the $other differ (lines above)" >&2
		fail=1
	fi
done
n=$(wc -l <"$work/code")
[ "$n" -ge 20 ] || { echo "config-complete: only $n keys found in the code; the scan is broken" >&2; exit 1; }
echo "config-complete: $n keys, the same in the code, $(basename "$conf") and $(basename "$man")"

if [ -n "$build" ] && [ -x "$build/hv_vss/hv_vss_daemon" ]; then
	sed 's/^#\([a-z][a-z-]*=\)/\1/' "$conf" >"$work/all.conf"
	if ! "$build/hv_vss/hv_vss_daemon" --status --config "$work/all.conf" \
		--runtime-dir "$work/run" >"$work/out" 2>&1; then
		cat "$work/out" >&2
		echo "config-complete: the uncommented defaults were refused" >&2
		fail=1
	elif grep -Ei 'warning|error|critical' "$work/out" >&2; then
		echo "config-complete: the uncommented defaults gave the warnings above" >&2
		fail=1
	else
		echo "config-complete: the uncommented defaults load cleanly"
	fi
fi
exit $fail
