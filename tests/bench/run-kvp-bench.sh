#!/bin/bash
# run-kvp-bench.sh [--build DIR] [--records "10 1000 10000"] [--count 200]
#                  [--idle MS] [--disk] [--floor] [--rounds N]
#                  [--transport socket|chardev]
#                  [--upstream PATH] [--ours PATH]
#                  [--ours-args "ARGS"] [--out FILE|-]
#
# The KVP request benchmark. For each daemon (Debian's upstream
# hv_kvp_daemon from .reference/, and ours when PATH exists, by default
# BUILD/hv_kvp/hv_kvp_daemon) one hv-sandbox run of tests/emu/hv-emu-kvp
# does, for each RECORDS: pool 1 is seeded with RECORDS records, then COUNT
# SETs of existing keys, COUNT GETs, COUNT ENUMERATEs of random indexes and
# min(COUNT, RECORDS) DELETEs of distinct keys (same seed, so the same keys
# for both daemons). Per op and size: operations per second, p50/p99
# latency (request posted to reply taken in by the emulated host) and the
# daemon's CPU time per operation (all its threads, /proc schedstat).
# --transport: how both daemons reach the emulated driver. socket (the
# default): /dev/vmbus/hv_kvp is a unix socket that the daemon's open()
# connects to through tests/emu/sockdev-shim.so (LD_PRELOAD), one message
# a packet; its read(), write() and poll() are plain socket calls, close
# to what the kernel's char device costs. chardev: the FUSE char device of
# the integration tests, where poll(), read() and write() are each a round
# trip to the emulator process (here a daemon that only answers took
# 67 to 82 us from request to reply (median) through FUSE, 10 to 22 us through the socket).
# With --rounds N (default 1) the daemons run N times in turn (upstream,
# ours, floor, upstream, ...) and each figure in the tables is the median of
# its N values (the single values are listed at the end): the machine may be
# busy with other work.
# With --floor, also tests/bench/kvp-null-daemon, which answers every
# request at once (poll, read, write and nothing else): the most any daemon
# can reach through the emulated device, so floor/upstream is the highest
# ratio reachable here.
# After each size, the daemon's memory (VmRSS, VmHWM) and its wake-ups
# per second (context switches of all its threads) over MS of idleness
# (--idle, default 3000, 0 = not measured).
# The pools live on the sandbox's tmpfs root, or with --disk on the
# sandbox's ext4 scratch fs (zram-backed, so fsync() costs something).
# Prints a table and the ratios ours/upstream (time: below 1 is better for
# ours; ops/s: above 1), and keeps the whole output in
# tests/bench/results/ (or --out).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=""
records="10 1000 10000"
count=200
idle=3000
disk=0
floor=0
rounds=1
ours=""
ref=""
ours_args="--device=/dev/vmbus/hv_kvp --pool-dir=/var/lib/hyperv"
out=""
transport=socket

while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--records) records=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--idle) idle=$2; shift 2 ;;
	--disk) disk=1; shift ;;
	--floor) floor=1; shift ;;
	--rounds) rounds=$2; shift 2 ;;
	--ours) ours=$2; shift 2 ;;
	--upstream) ref=$2; shift 2 ;;
	--ours-args) ours_args=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--transport) transport=$2; shift 2 ;;
	-h|--help) sed -n '2,43p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 77; }

if [ -z "$build" ]; then
	build="$top/build"
	cmake -S "$top" -B "$build" >/dev/null
	cmake --build "$build" -j2 --target hv-emu-kvp hv-sandbox kvp-null-daemon hv-sockdev-shim >/dev/null
fi
[ -n "$ours" ] || ours="$build/hv_kvp/hv_kvp_daemon"

[ -n "$ref" ] || ref="$top/.reference/usr/sbin/hv_kvp_daemon"
run=$top/tests/integration/kvp-run.sh
emu=$build/tests/emu/hv-emu-kvp
sandbox=$build/tests/emu/hv-sandbox
[ -x "$ref" ] || { echo "skipped: no upstream daemon at $ref (scripts/deps.sh)"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

steps=()
max=0
for r in $records; do
	steps+=("bench:$r:$count:$idle")
	[ "$r" -gt "$max" ] && max=$r
done
emu_args=()
case "$transport" in
socket)
	# kvp-run.sh copies it into the sandbox's /bin
	export KVP_COPY="${KVP_COPY:-} $build/tests/emu/sockdev-shim.so"
	emu_args+=(--transport socket --preload /bin/sockdev-shim.so)
	;;
chardev) ;;
*) echo "run-kvp-bench: --transport is socket or chardev" >&2; exit 2 ;;
esac
where="the sandbox's tmpfs root"
if [ "$disk" = 1 ]; then
	# The pool, our spare and a new file during a full write, and room to spare.
	export KVP_SCRATCH_MIB=$(((max * 2560 * 3 / 1048576) + 32))
	emu_args+=(--pools-on /mnt/fs0)
	where="ext4 on zram (${KVP_SCRATCH_MIB} MiB scratch fs in the sandbox)"
fi

null=$build/tests/bench/kvp-null-daemon
daemons=(upstream)
[ -x "$ours" ] && daemons+=(ours)
if [ "$floor" = 1 ]; then
	[ -x "$null" ] || { echo "run-kvp-bench: --floor needs $null (cmake --build $build --target kvp-null-daemon)" >&2; exit 1; }
	daemons+=(floor)
fi

for ((round = 1; round <= rounds; round++)); do
	for d in "${daemons[@]}"; do
		case "$d" in
		upstream) path=$ref args="-n" ;;
		ours) path=$ours args=$ours_args ;;
		floor) path=$null args="/dev/vmbus/hv_kvp" ;;
		esac
		echo "== round $round/$rounds, $d: $path $args" >&2
		if ! KVP_DAEMON_ARGS=$args KVP_OUT="$work/$d.out" KVP_TIMEOUT=3600 \
			"$run" "$sandbox" "$emu" "$path" --quiet --seed 1 "${emu_args[@]}" "${steps[@]}"; then
			echo "run-kvp-bench: the $d run failed:" >&2
			tail -20 "$work/$d.out" >&2
			exit 1
		fi
		grep '^B| ' "$work/$d.out" | sed "s/^B| /daemon=$d round=$round /" >>"$work/rounds"
	done
done

# The median of each figure over the rounds, in the form of one round's lines.
awk '
{
	key = ""
	for (i = 1; i <= NF; i++) {
		split($i, a, "=")
		if (a[1] == "daemon" || a[1] == "op" || a[1] == "records")
			key = key " " $i
	}
	if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	for (i = 1; i <= NF; i++) {
		split($i, a, "=")
		if (a[1] == "daemon" || a[1] == "op" || a[1] == "records" || a[1] == "round")
			continue
		if (!((key, a[1]) in nv)) { fields[key] = fields[key] " " a[1] }
		val[key, a[1], ++nv[key, a[1]]] = a[2] + 0
	}
}
END {
	for (k = 1; k <= n; k++) {
		key = order[k]; line = substr(key, 2)
		m = split(substr(fields[key], 2), fs, " ")
		for (f = 1; f <= m; f++) {
			c = nv[key, fs[f]]
			for (i = 1; i <= c; i++) x[i] = val[key, fs[f], i]
			for (i = 2; i <= c; i++) { t = x[i]; for (j = i - 1; j >= 1 && x[j] > t; j--) x[j + 1] = x[j]; x[j + 1] = t }
			med = c % 2 ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
			line = line " " fs[f] "=" (med == int(med) ? med : sprintf("%.2f", med))
		}
		print line
	}
}' "$work/rounds" >"$work/all"

report() {
	echo "KVP bench $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, count $count, records: $records, rounds $rounds (medians), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "pools on: $where"
	echo "device:   $transport ($([ "$transport" = socket ] && echo "unix socket through sockdev-shim.so" || echo "the FUSE char device"))"
	echo "upstream: $ref"
	[ -x "$ours" ] && echo "ours:     $ours $ours_args" || echo "ours:     not built ($ours)"
	[ "$floor" = 1 ] && echo "floor:    $null (answers at once: the device's own cost)"
	echo
	awk '
	function v(k,  i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
	v("op") == "IDLE" {
		key = v("records"); d = v("daemon")
		if (!(key in iseen)) { iseen[key] = 1; iorder[++ni] = key }
		rss[d, key] = v("rss_kb"); hwm[d, key] = v("hwm_kb"); wk[d, key] = v("wakeups_per_s")
		icpu[d, key] = v("idle_cpu_us_per_s"); isec[d, key] = v("idle_s")
		next
	}
	{
		key = v("op") " " v("records"); d = v("daemon")
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
		ops[d, key] = v("ops_per_s"); p50[d, key] = v("p50_us"); p99[d, key] = v("p99_us")
		cpu[d, key] = v("cpu_us_per_op"); cnt[d, key] = v("count"); ok[d, key] = v("ok")
		if (d == "ours") have_ours = 1
	}
	END {
		names[0] = "upstream"; names[1] = "ours"; names[2] = "floor"
		printf "%-10s %7s %-9s %6s %5s %10s %9s %9s %10s\n", "op", "records", "daemon", "count", "ok", "ops/s", "p50 us", "p99 us", "cpu us/op"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, kk, " ")
			for (j = 0; j < 3; j++) {
				d = names[j]
				if (!((d, k) in ops)) continue
				printf "%-10s %7s %-9s %6s %5s %10s %9s %9s %10s\n", kk[1], kk[2], d, cnt[d, k], ok[d, k], ops[d, k], p50[d, k], p99[d, k], cpu[d, k]
			}
		}
		if (ni) {
			printf "\nmemory after the operations, then idle (no requests)\n%-7s %-9s %9s %9s %7s %10s %14s\n", "records", "daemon", "RSS KiB", "peak KiB", "idle s", "wakeups/s", "idle cpu us/s"
			for (i = 1; i <= ni; i++) {
				k = iorder[i]
				for (j = 0; j < 3; j++) {
					d = names[j]
					if (!((d, k) in rss)) continue
					printf "%-7s %-9s %9s %9s %7s %10s %14s\n", k, d, rss[d, k], hwm[d, k], isec[d, k], wk[d, k], icpu[d, k]
				}
			}
		}
		if (!have_ours) exit
		printf "\nratios ours/upstream\n%-10s %7s %8s %8s %8s %10s\n", "op", "records", "ops/s", "p50", "p99", "cpu/op"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, kk, " ")
			if (!(("ours", k) in ops) || !(("upstream", k) in ops)) continue
			printf "%-10s %7s %8.2f %8.2f %8.2f %10.2f\n", kk[1], kk[2],
				ops["upstream", k] ? ops["ours", k] / ops["upstream", k] : 0,
				p50["upstream", k] ? p50["ours", k] / p50["upstream", k] : 0,
				p99["upstream", k] ? p99["ours", k] / p99["upstream", k] : 0,
				cpu["upstream", k] ? cpu["ours", k] / cpu["upstream", k] : 0
		}
		for (i = 1; i <= ni; i++) {
			k = iorder[i]
			if (!(("ours", k) in rss) || !(("upstream", k) in rss)) continue
			printf "%-10s %7s %8s %8s %8s %10s   RSS %.2f, peak %.2f\n", "memory", k, "", "", "", "",
				rss["upstream", k] ? rss["ours", k] / rss["upstream", k] : 0,
				hwm["upstream", k] ? hwm["ours", k] / hwm["upstream", k] : 0
		}
		hdr = 0
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, kk, " ")
			if (!(("floor", k) in ops) || !(("upstream", k) in ops) || !ops["upstream", k] || !ops["floor", k]) continue
			if (!hdr++) printf "\nthe floor (the device alone)\n%-10s %7s %14s %14s %16s\n", "op", "records", "floor/upstream", "ours/upstream", "ours/floor ops/s"
			printf "%-10s %7s %14.2f %14.2f %16.2f\n", kk[1], kk[2], ops["floor", k] / ops["upstream", k],
				ops["ours", k] / ops["upstream", k], ops["ours", k] / ops["floor", k]
		}
	}' "$work/all"
	if [ "$rounds" -gt 1 ]; then
		echo
		echo "single rounds:"
		sed 's/^/  /' "$work/rounds"
	fi
}

if [ "$out" = "-" ]; then
	report
else
	[ -n "$out" ] || { mkdir -p "$top/tests/bench/results"; out="$top/tests/bench/results/kvp-$(date -u +%Y%m%d-%H%M%S).txt"; }
	report | tee "$out"
	echo "(kept in $out)" >&2
fi
