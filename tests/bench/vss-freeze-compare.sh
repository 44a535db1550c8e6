#!/bin/bash
# vss-freeze-compare.sh [BUILD_DIR] [N] [DIRTY_MIB] [ROUNDS]
#
# FREEZE latency (request posted -> reply written, as the emulated host sees
# it) of our hv_vss_daemon and of Debian's upstream hv_vss_daemon, on the same
# N scratch file systems (ext4, xfs, btrfs in turn) in one sandbox, with
# DIRTY_MIB MiB of unsynced data on each before every FREEZE. Rounds alternate
# between the two daemons; every round also proves with probe writes that all
# file systems blocked while frozen and accepted writes after the THAW.
# Prints each round and the ratio of the medians (ours / upstream).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
n=${2:-16}
dirty=${3:-64}
rounds=${4:-3}
ref="$top/.reference/usr/sbin/hv_vss_daemon"

[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
[ -x "$ref" ] || { echo "no reference daemon at $ref (run scripts/deps.sh)"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$ref" "$work/hv_vss_daemon_upstream"

# One round: a fresh daemon, dirty data, FREEZE, probes, THAW, probes.
round_steps="wait-register hot-backup dirty:$dirty freeze probe-frozen:100 thaw probe-released"
script=""
for ((r = 1; r <= rounds; r++)); do
	script+="echo ROUND $r ours; hv-emu --daemon /bin/hv_vss_daemon --daemon-log /tmp/ours.log --daemon-arg=--runtime-dir=/run/hv $round_steps || exit 1; "
	script+="echo ROUND $r upstream; hv-emu --daemon /bin/hv_vss_daemon_upstream --daemon-log /tmp/upstream.log --daemon-arg=-n $round_steps || exit 1; "
done

"$build/tests/emu/hv-sandbox" --fs ext4,xfs,btrfs --count "$n" --size 512 --timeout 600 \
	--copy /bin/dash --copy "$build/tests/emu/hv-emu" --copy "$build/hv_vss/hv_vss_daemon" \
	--copy "$work/hv_vss_daemon_upstream" -- /bin/dash -c "$script" >"$work/out" 2>&1 || {
	cat "$work/out"
	exit 1
}

awk -v n="$n" -v dirty="$dirty" '
/^ROUND/ { who = $3 }
/ FREEZE / && /replied/ {
	for (i = 1; i <= NF; i++) if ($i == "replied") { v = substr($(i + 1), 2); break }
	lat[who] = lat[who] " " v
	printf "round %-9s FREEZE replied after %8.2f ms\n", who, v
}
/ THAW / && /replied/ {
	for (i = 1; i <= NF; i++) if ($i == "replied") { v = substr($(i + 1), 2); break }
	printf "round %-9s THAW   replied after %8.2f ms\n", who, v
}
/probes .* blocked/ { blocked++ }
/probes .* released/ { released++ }
function median(s,   a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	mo = median(lat["ours"]); mu = median(lat["upstream"])
	printf "\nN=%d file systems, %d MiB dirty each; rounds where every fs blocked while frozen: %d, released after thaw: %d\n", n, dirty, blocked, released
	printf "median FREEZE latency: ours %.2f ms, upstream %.2f ms, ratio ours/upstream %.3f\n", mo, mu, mo / mu
}' "$work/out"
