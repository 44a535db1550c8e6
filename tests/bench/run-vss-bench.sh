#!/bin/bash
# run-vss-bench.sh [--build DIR] [--n "1 4 16"] [--dirty "8 64"] [--rounds 5]
#                  [--warmup 1] [--tools "..."] [--out FILE|-]
#
# The VSS freeze benchmark (issue 6). For each N it creates N scratch file
# systems (ext4, xfs, btrfs in turn) in one hv-sandbox and measures, on the
# same file systems and for each DIRTY MiB of unsynced data per fs:
#   ours            our hv_vss_daemon through the emulated host (hv-emu)
#   upstream        Debian's hv_vss_daemon (.reference/, scripts/deps.sh) through hv-emu
#   ours-sock, upstream-sock   the same two through hv-emu --transport socket: the
#                   device is a unix socket the daemon opens through
#                   tests/emu/sockdev-shim.so, no FUSE round trips (the device costs
#                   about what the kernel's does); when the daemon read a request is
#                   not seen there, so their dispatch is 0
#   qga             qemu-guest-agent: guest-fsfreeze-freeze/thaw over its socket
#   fsfreeze        fsfreeze(8) -f / -u per file system
#   loop-seq        in-process FIFREEZE loop (FITHAW loop): the floor of a sequential tool
#   loop-par        FIFREEZE (and FITHAW) by one thread per fs
#   loop-flush-par  parallel syncfs() first (not timed as freeze), then parallel FIFREEZE
#   loop-flush-seq  parallel syncfs() first (not timed as freeze), then a FIFREEZE loop
# Per round (tests/bench/hv-bench-freeze.c): freeze latency (request to
# reply), thaw latency, dispatch latency (hv-emu: posted to read by the
# daemon; the median over nine HOT_BACKUPs 2 ms apart and the FREEZE), and
# the application stall (writer threads, one per fs, 4 KiB every ~1 ms: at
# the freeze reply, the longest time any had been blocked), and for the
# daemons the no-op round trip (median of the HOT_BACKUPs posted to their
# replies: what the emulated device costs a request that needs no work).
# In socket mode a reply's time is when the daemon wrote it (the socket's
# receive timestamp), as the kernel driver takes a reply in the daemon's
# write(); in FUSE mode it is when the emulator's thread handled it. Every
# round checks with probe writes that all fs blocked while frozen and took
# writes after the thaw. The tool order rotates from cycle to cycle; WARMUP
# cycles are not counted. Prints medians [min..max] and ratios ours/upstream,
# and keeps the whole output in tests/bench/results/ (or --out).
#
# Everything that freezes runs inside tests/emu/hv-sandbox.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=""
ns="1 4 16"
dirties="8 64"
rounds=5
warmup=1
tools="ours upstream ours-sock upstream-sock qga fsfreeze loop-seq loop-par loop-flush-par loop-flush-seq"
out=""

while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--n) ns=$2; shift 2 ;;
	--dirty) dirties=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--tools) tools=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) sed -n '2,26p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }

if [ -z "$build" ]; then
	build="$top/build"
	cmake -S "$top" -B "$build" >/dev/null
	make -C "$build" -j"$(nproc)" hv_vss_daemon hv-emu hv-sandbox hv-bench-freeze hv-sockdev-shim >/dev/null
fi

ref="$top/.reference/usr/sbin/hv_vss_daemon"
qga="$top/.reference/usr/sbin/qemu-ga"
libdir="$top/.reference/usr/lib/x86_64-linux-gnu"
fsfreeze=$(command -v fsfreeze || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copies=(--copy /bin/dash --copy /bin/mkdir --copy /bin/sleep --copy /bin/cat
	--copy "$build/tests/emu/hv-emu" --copy "$build/hv_vss/hv_vss_daemon"
	--copy "$build/tests/bench/hv-bench-freeze" --copy "$build/tests/emu/sockdev-shim.so")
avail=""
for t in $tools; do
	case "$t" in
	upstream|upstream-sock)
		[ -x "$ref" ] || { echo "skipping upstream: no $ref (scripts/deps.sh)" >&2; continue; }
		cp "$ref" "$work/hv_vss_daemon_upstream"
		copies+=(--copy "$work/hv_vss_daemon_upstream") ;;
	qga)
		[ -x "$qga" ] || { echo "skipping qga: no $qga (scripts/deps.sh)" >&2; continue; }
		copies+=(--copy "$qga") ;;
	fsfreeze)
		[ -n "$fsfreeze" ] || { echo "skipping fsfreeze: not installed" >&2; continue; }
		copies+=(--copy "$fsfreeze") ;;
	esac
	avail+="$t "
done
tools=$avail

# The script that runs inside the sandbox, for one N.
inner() {
	cat <<EOF
mkdir -p /run/hv /run/qga-state /tmp
case " $tools " in *" qga "*)
	# Only the sandbox's mounts are visible: qemu-ga freezes the scratch fs only.
	LD_LIBRARY_PATH=$libdir qemu-ga -m unix-listen -p /run/qga.sock -t /run/qga-state \\
		-f /run/qga.pid -l /tmp/qga.log &
	sleep 1 ;;
esac
set -- $tools
ntools=\$#
for dirty in $dirties; do
	c=0
	while [ \$c -lt $((warmup + rounds)) ]; do
		kind=meas; [ \$c -lt $warmup ] && kind=warm
		# rotate the order by one tool per cycle
		set -- $tools
		k=0
		while [ \$k -lt \$((c % ntools)) ]; do t=\$1; shift; set -- "\$@" "\$t"; k=\$((k + 1)); done
		for t in "\$@"; do
			case \$t in
			ours|ours-sock) a=/bin/hv_vss_daemon ;;
			upstream|upstream-sock) a=/bin/hv_vss_daemon_upstream ;;
			qga) a=/run/qga.sock ;;
			*) a= ;;
			esac
			printf 'CYCLE %s %s ' \$c \$kind
			hv-bench-freeze \$t \$dirty \$a 2>/tmp/bench.log || {
				echo "FAILED \$t"; cat /tmp/bench.log /tmp/daemon.log /tmp/qga.log 2>/dev/null; exit 1; }
		done
		c=\$((c + 1))
	done
done
# idle: wake-ups per second and resident memory of each daemon
for t in $tools; do
	case \$t in
	ours) hv-bench-freeze idle-ours 0 /bin/hv_vss_daemon 2>/tmp/bench.log ;;
	upstream) hv-bench-freeze idle-upstream 0 /bin/hv_vss_daemon_upstream 2>/tmp/bench.log ;;
	esac
done
EOF
}

results="$work/results"
idle="$work/idle"
: >"$results"
: >"$idle"
for n in $ns; do
	echo "N=$n: $tools; dirty $dirties MiB; $warmup warm-up + $rounds rounds" >&2
	LD_LIBRARY_PATH="$libdir" "$build/tests/emu/hv-sandbox" --fs ext4,xfs,btrfs --count "$n" \
		--size 512 --timeout 3600 "${copies[@]}" -- /bin/dash -c "$(inner)" \
		>"$work/out.$n" 2>&1 || { cat "$work/out.$n"; exit 1; }
	grep -h '^CYCLE .*RESULT' "$work/out.$n" >>"$results" || true
	grep -h '^IDLE' "$work/out.$n" | sed "s/^IDLE /IDLE n=$n /" >>"$idle" || true
done

report() {
	echo "# VSS freeze benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')),"\
		"$(free -m | awk '/^Mem:/ { print $2 }') MiB memory, kernel $(uname -r), zram scratch fs (hv-sandbox)"
	echo "# tools: $tools; N: $ns; dirty MiB per fs: $dirties; $warmup warm-up + $rounds measured rounds, order rotated"
	echo "# times in ms: median [min..max]; freeze = request to reply, stall = longest writer block at the reply;"
	echo "# no-op rt = HOT_BACKUP request to reply through hv-emu (a request with no work: the emulator's round trip)"
	awk '
	function med(s, a, k, i, j, t) {
		k = split(s, a, " ")
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		lo = a[1]; hi = a[k]
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	function cell(s, m) {
		if (s == "") return sprintf("%-24s", "-")
		m = med(s)
		if (m < 0) return sprintf("%-24s", "-")
		return sprintf("%-24s", sprintf("%.2f [%.2f..%.2f]", m, lo, hi))
	}
	$3 != "meas" { next }
	{
		delete v
		for (i = 5; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		key = v["n"] SUBSEP v["dirty"] SUBSEP v["tool"]
		if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
		fr[key] = fr[key] " " v["freeze_ms"]; th[key] = th[key] " " v["thaw_ms"]
		di[key] = di[key] " " v["dispatch_ms"]; st[key] = st[key] " " v["stall_ms"]
		if (v["noop_ms"] != "" && v["noop_ms"] >= 0) no[key] = no[key] " " v["noop_ms"]
		if (v["flush_ms"] >= 0) fl[key] = fl[key] " " v["flush_ms"]
		cnt[key]++; okc[key] += v["ok"]
	}
	END {
		printf "\n%-4s %-5s %-15s %-24s %-24s %-24s %-24s %-24s %s\n", "N", "dirty", "tool", "freeze", "thaw", "dispatch", "stall", "no-op rt", "verified"
		for (i = 1; i <= nk; i++) {
			split(order[i], p, SUBSEP)
			printf "%-4s %-5s %-15s %s %s %s %s %s %d/%d%s\n", p[1], p[2], p[3], cell(fr[order[i]]), cell(th[order[i]]),
				cell(di[order[i]]), cell(st[order[i]]), cell(no[order[i]]), okc[order[i]], cnt[order[i]],
				(fl[order[i]] != "" ? sprintf("  (syncfs before: %.2f ms)", med(fl[order[i]])) : "")
		}
		printf "\nratios ours/upstream (medians; -sock: both through the socket device):\n"
		for (i = 1; i <= nk; i++) {
			split(order[i], p, SUBSEP)
			if (p[3] != "ours" && p[3] != "ours-sock") continue
			sock = p[3] == "ours-sock"
			u = p[1] SUBSEP p[2] SUBSEP (sock ? "upstream-sock" : "upstream")
			if (!(u in seen)) continue
			s = p[1] SUBSEP p[2] SUBSEP "loop-seq"
			printf "%-5s N=%-3s dirty=%-3s freeze %.3f  thaw %.3f  stall %.3f", (sock ? "sock" : "fuse"), p[1], p[2],
				med(fr[order[i]]) / med(fr[u]), med(th[order[i]]) / med(th[u]),
				(med(st[u]) > 0 ? med(st[order[i]]) / med(st[u]) : 0)
			if (!sock) printf "  dispatch %.3f", med(di[order[i]]) / med(di[u])
			if (s in seen) printf "  (thaw ours/loop-seq %.3f)", med(th[order[i]]) / med(th[s])
			printf "\n"
			# A fairer floor for a daemon, printed beside the issue ratio: the
			# loop answers nobody, a daemon answers through the emulated device.
			if ((s in seen) && no[order[i]] != "" && no[u] != "")
				printf "      thaw over (loop-seq + own no-op round trip): ours %.3f, upstream %.3f  (no-op rt ours %.3f, upstream %.3f ms)\n",
					med(th[order[i]]) / (med(th[s]) + med(no[order[i]])), med(th[u]) / (med(th[s]) + med(no[u])),
					med(no[order[i]]), med(no[u])
		}
	}' "$results"
	echo
	echo "idle (daemon under hv-emu, 2 s window; with its guard process, if any; resident = sum of VmRSS,"
	echo "a page both processes map counted twice; proportional = sum of Pss, shared pages split between their users):"
	awk '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "N=%-3s %-9s processes %s, wake-ups/s %s, resident %s KiB, proportional %s KiB, ok %s\n",
			v["n"], v["tool"], v["procs"], v["wakeups_per_s"], v["rss_kib"],
			(v["pss_kib"] != "" ? v["pss_kib"] : "?"), v["ok"] }' "$idle"
	echo
	echo "# raw rounds"
	cat "$results"
}

if [ "$out" = "-" ]; then
	report
else
	[ -n "$out" ] || { mkdir -p "$top/tests/bench/results"; out="$top/tests/bench/results/vss-$(date -u +%Y%m%d-%H%M%S).txt"; }
	report | tee "$out"
	echo "kept in $out" >&2
fi
