#!/bin/bash
# run-fcopy-bench.sh [--build DIR] [--sizes "1M 100M 1G"] [--rounds 5] [--fs "ext4"]
#                    [--backend loop|zram] [--chardev-sizes "1M 100M"] [--chardev-rounds N]
#                    [--upstream PATH|none] [--ours PATH] [--out FILE|-]
#
# The FCOPY benchmark (issue 5). For each file system type, one hv-sandbox
# run on a scratch file system big enough for the largest size does, per
# round and size (the order of the two alternating from round to round):
#   ours  hv-emu-fcopy --transport uio (the emulated VMBus ring of Linux
#         >= 6.10, the host answering as fast as it can) copies the source
#         file to the scratch fs through BUILD/hv_fcopy/hv_fcopy_daemon:
#         throughput = size / wall time from START to the COMPLETE reply;
#         the daemon's CPU time in that window (all threads, schedstat;
#         user/sys from /proc stat) per GiB; its peak RSS (VmHWM); the
#         emulated host's own CPU per GiB, to show who the bottleneck is;
#   cp    cp of the same source file (on the sandbox's tmpfs, like the
#         host's copy) to the same file system: CPU (getrusage) per GiB and
#         throughput; then fsync of the copy in a second child ("cp+fsync":
#         the daemon must fsync at COMPLETE, cp does not).
# Every copy is read back and compared with its source (outside the timed
# window); the scratch fs is syncfs'ed before and the copy removed after.
# Then, as further columns on a different transport (the emulated <= 6.9
# char device, a FUSE file: each read, write and poll is a round trip to
# the emulator, so only their relative cost means something): ours over it,
# and Debian's upstream hv_fcopy_daemon (.reference/, LD_PRELOAD seekless
# shim, as the reference-fcopy-copies test) for CHARDEV_SIZES.
# --backend: loop (default; the block device's work is done by the loop
# worker, as a disk does it, so neither the daemon's fsync nor cp+fsync is
# charged for it) or zram (compression in the writer's context).
# Prints medians [min..max] and the ratios ours CPU/GiB / cp CPU/GiB, and
# keeps the output in tests/bench/results/fcopy-<date>.txt (or --out).
# --ours: another build of our daemon (e.g. an older commit's) in place of
# BUILD/hv_fcopy/hv_fcopy_daemon, with the same emulator.
# Exit 77 when it cannot run here (not root, no sandbox).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=""
sizes="1M 100M 1G"
rounds=5
fss="ext4"
backend=loop
chardev_sizes="1M 100M"
chardev_rounds=""
ref=""
ours=""
out=""

while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--fs) fss=$2; shift 2 ;;
	--backend) backend=$2; shift 2 ;;
	--chardev-sizes) chardev_sizes=$2; shift 2 ;;
	--chardev-rounds) chardev_rounds=$2; shift 2 ;;
	--upstream) ref=$2; shift 2 ;;
	--ours) ours=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) sed -n '2,/^# Exit 77/p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$chardev_rounds" ] || chardev_rounds=$rounds

[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root (namespaces, block devices)"; exit 77; }
case "$rounds$chardev_rounds" in *[!0-9]*|"") echo "--rounds: a number" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || { echo "--rounds: at least 1" >&2; exit 2; }

if [ -z "$build" ]; then
	build="$top/build"
	cmake -S "$top" -B "$build" >/dev/null
	cmake --build "$build" -j2 --target hv_fcopy_daemon hv-emu-fcopy hv-sandbox hv-seekless-shim >/dev/null
fi
[ -n "$ours" ] || ours="$build/hv_fcopy/hv_fcopy_daemon"
emu="$build/tests/emu/hv-emu-fcopy"
sandbox="$build/tests/emu/hv-sandbox"
shim="$build/tests/emu/seekless-shim.so"
[ -n "$ref" ] || ref="$top/.reference/usr/sbin/hv_fcopy_daemon"
[ "$ref" = none ] || [ -x "$ref" ] || { echo "no upstream daemon at $ref (scripts/deps.sh); its column is left out" >&2; ref=none; }
for x in "$ours" "$emu" "$sandbox"; do
	[ -x "$x" ] || { echo "run-fcopy-bench: $x is not built" >&2; exit 1; }
done
cpbin=$(command -v cp)

# Sizes: N, NK, NM or NG (1024-based) -> bytes, and the emulator's spelling.
bytes() {
	local n=${1%[KkMmGg]}
	case "$n" in ''|*[!0-9]*) echo "bad size $1" >&2; exit 2 ;; esac
	case "$1" in
	*[Kk]) echo $((n * 1024)) ;;
	*[Mm]) echo $((n * 1024 * 1024)) ;;
	*[Gg]) echo $((n * 1024 * 1024 * 1024)) ;;
	*) echo "$n" ;;
	esac
}
emu_size() {
	local b
	b=$(bytes "$1")
	if [ $((b % 1048576)) -eq 0 ]; then echo "$((b / 1048576))M"; else echo "$b"; fi
}

max=0
for s in $sizes $chardev_sizes; do
	b=$(bytes "$s")
	[ "$b" -gt "$max" ] && max=$b
done
# One copy at a time on the scratch fs, plus room for metadata and journals.
fs_mib=$((max / 1048576 * 5 / 4 + 400))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
all="$work/all"
: >"$all"

# run LABEL FS ROUNDS SIZES WITH_CP TRANSPORT DAEMON DAEMON-ARGS...
run() {
	local label=$1 fs=$2 nr=$3 szs=$4 with_cp=$5 transport=$6 daemon=$7
	shift 7
	local steps=(wait-register) copies=(--copy "$daemon" --copy "$cpbin") r s src
	for s in $szs; do
		steps+=("make-file:/tmp/src-$s:$(emu_size "$s")")
	done
	for r in $(seq 1 "$nr"); do
		[ "$with_cp" = no ] || steps+=(pingpong:20000)
		for s in $szs; do
			src=/tmp/src-$s
			local fc=(syncfs:/mnt/fs0 "copy:$src:/mnt/fs0/fcopy-$s" "rm:/mnt/fs0/fcopy-$s")
			local cpy=(syncfs:/mnt/fs0 "cp:$src:/mnt/fs0/cp-$s" "rm:/mnt/fs0/cp-$s")
			if [ "$with_cp" = no ]; then
				steps+=("${fc[@]}")
			elif [ $((r % 2)) -eq 1 ]; then
				steps+=("${fc[@]}" "${cpy[@]}")
			else
				steps+=("${cpy[@]}" "${fc[@]}")
			fi
		done
	done
	local extra=()
	if [ "$label" = upstream ]; then
		copies+=(--copy "$shim")
		extra=(--daemon-preload=/bin/seekless-shim.so)
	fi
	echo "== $fs: $label over $transport, sizes $szs, $nr round(s)" >&2
	if ! "$sandbox" --backend "$backend" --fs "$fs" --size "$fs_mib" --timeout 3600 "${copies[@]}" -- \
		"$emu" --bench --cp "/bin/$(basename "$cpbin")" --transport "$transport" \
		--daemon "/bin/$(basename "$daemon")" "$@" "${extra[@]}" -- "${steps[@]}" \
		>"$work/out" 2>&1; then
		echo "run-fcopy-bench: the $label run on $fs failed:" >&2
		grep -v '^B| ' "$work/out" | tail -25 >&2
		exit 1
	fi
	grep '^B| ' "$work/out" | sed "s/^B| /fs=$fs daemon=$label /" >>"$all"
}

for fs in $fss; do
	run ours "$fs" "$rounds" "$sizes" yes uio "$ours" --daemon-arg=--runtime-dir=/run/hyperv-daemons
	if [ -n "$chardev_sizes" ] && [ "$chardev_rounds" -gt 0 ]; then
		run ours "$fs" "$chardev_rounds" "$chardev_sizes" no chardev "$ours" \
			--daemon-arg=--runtime-dir=/run/hyperv-daemons
		[ "$ref" = none ] || run upstream "$fs" "$chardev_rounds" "$chardev_sizes" no chardev "$ref" --daemon-arg=-n
	fi
done

report() {
	echo "# FCOPY benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')),"\
		"$(free -m | awk '/^Mem:/ { print $2 }') MiB memory, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# scratch fs: $fss on $backend (hv-sandbox, $fs_mib MiB), sources on the sandbox's tmpfs; $rounds round(s) (char device: $chardev_rounds), order alternating"
	echo "# ours:     $ours (uio: emulated VMBus ring; chardev: emulated <= 6.9 char device)"
	[ "$ref" = none ] && echo "# upstream: none" || echo "# upstream: $ref (char device only, LD_PRELOAD seekless shim)"
	echo "# cp:       $cpbin ($(cp --version | head -1)); cp+fsync adds an fsync of the copy"
	echo "# median [min..max]; MiB/s = size / wall (fcopy: START sent to COMPLETE answered);"
	echo "# CPU s/GiB = CPU time in that window / size; host = the emulator's own CPU; RSS = VmHWM (ru_maxrss for cp)"
	awk '
	function med(s, a, k, i, j, t) {
		k = split(s, a, " ")
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		lo = a[1]; hi = a[k]
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	function cell(s, f, m) {
		if (s == "") return sprintf("%-22s", "-")
		m = med(s)
		return sprintf("%-22s", sprintf(f " [" f ".." f "]", m, lo, hi))
	}
	function add(key, name, val) { d[key, name] = d[key, name] " " val }
	function label(sz) {
		if (sz >= 1073741824 && sz % 1073741824 == 0) return (sz / 1073741824) "G"
		if (sz >= 1048576 && sz % 1048576 == 0) return (sz / 1048576) "M"
		return sz
	}
	{
		delete v
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["op"] == "pingpong") {
			pp[v["fs"]] = pp[v["fs"]] " " v["cpu_ns"] / v["n"] / 1000
			next
		}
		sz = v["size"]; gib = sz / 1073741824; mib = sz / 1048576
		if (v["op"] == "fcopy") {
			n = 1; who[1] = v["daemon"] " " v["transport"]
		} else {
			n = 2; who[1] = "cp"; who[2] = "cp+fsync"
		}
		for (w = 1; w <= n; w++) {
			key = v["fs"] SUBSEP sz SUBSEP who[w]
			if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
			wall = v["wall_ns"]; cpu = v["cpu_ns"]
			if (w == 2) { wall += v["sync_wall_ns"]; cpu += v["sync_cpu_ns"] }
			add(key, "mibs", wall > 0 ? mib / (wall / 1e9) : 0)
			add(key, "cpu", cpu / 1e9 / gib)
			add(key, "user", v["user_ns"] / 1e9 / gib)
			add(key, "sys", v["sys_ns"] / 1e9 / gib)
			if (v["op"] == "fcopy") add(key, "host", v["emu_cpu_ns"] / 1e9 / gib)
			rss = v["op"] == "fcopy" ? v["hwm_kb"] : v["maxrss_kb"]
			if (rss > maxrss[key]) maxrss[key] = rss
			cnt[key]++; okc[key] += v["verified"]
		}
	}
	END {
		fs_prev = ""
		for (i = 1; i <= nk; i++) {
			split(order[i], p, SUBSEP)
			if (p[1] != fs_prev) {
				printf "\n%s\n%-5s %-17s %-22s %-22s %-9s %-9s %-22s %-8s %s\n", p[1], "size", "who",
					"MiB/s", "CPU s/GiB", "user", "sys", "host CPU s/GiB", "RSS MiB", "verified"
				fs_prev = p[1]
			}
			k = order[i]
			printf "%-5s %-17s %s %s %-9.3f %-9.3f %s %-8.1f %d/%d\n", label(p[2]), p[3],
				cell(d[k, "mibs"], "%.1f"), cell(d[k, "cpu"], "%.3f"), med(d[k, "user"]),
				med(d[k, "sys"]), cell(d[k, "host"], "%.3f"), maxrss[k] / 1024, okc[k], cnt[k]
		}
		printf "\nratios (medians): ours CPU/GiB over cp CPU/GiB (target <= 2), and over cp+fsync CPU/GiB;\n"
		printf "throughput ours/cp; ours (char device) CPU/GiB over upstream (char device) CPU/GiB\n"
		printf "%-6s %-5s %10s %15s %12s %20s %16s\n", "fs", "size", "ours/cp", "ours/cp+fsync", "MiB/s ratio",
			"chardev ours/upstr", "ours peak RSS MiB"
		for (i = 1; i <= nk; i++) {
			split(order[i], p, SUBSEP)
			if (p[3] != "ours uio") continue
			k = order[i]; c = p[1] SUBSEP p[2] SUBSEP "cp"; cs = p[1] SUBSEP p[2] SUBSEP "cp+fsync"
			oc = p[1] SUBSEP p[2] SUBSEP "ours chardev"; uc = p[1] SUBSEP p[2] SUBSEP "upstream chardev"
			r1 = (c in seen) && med(d[c, "cpu"]) > 0 ? sprintf("%.2f", med(d[k, "cpu"]) / med(d[c, "cpu"])) : "-"
			r2 = (cs in seen) && med(d[cs, "cpu"]) > 0 ? sprintf("%.2f", med(d[k, "cpu"]) / med(d[cs, "cpu"])) : "-"
			r3 = (c in seen) && med(d[c, "mibs"]) > 0 ? sprintf("%.3f", med(d[k, "mibs"]) / med(d[c, "mibs"])) : "-"
			r4 = (oc in seen) && (uc in seen) ? sprintf("%.2f", med(d[oc, "cpu"]) / med(d[uc, "cpu"])) : "-"
			printf "%-6s %-5s %10s %15s %12s %20s %16.1f\n", p[1], label(p[2]), r1, r2, r3, r4, maxrss[k] / 1024
		}
		printf "\nthe floor of a one-fragment-per-round-trip protocol here (pingpong: poll, read, answer over a\n"
		printf "socket pair, no data, the answering side'"'"'s CPU), at 6,144 bytes per round trip:\n"
		for (f in pp) {
			m = med(pp[f]); fl = m * 1073741824 / 6144 / 1e6
			printf "%-6s %.2f [%.2f..%.2f] us per round trip = %.3f s/GiB", f, m, lo, hi, fl
			for (i = 1; i <= nk; i++) {
				split(order[i], p, SUBSEP)
				if (p[1] != f || p[3] != "ours uio" || p[2] < 104857600) continue
				printf "; ours %s: %.2f x floor", label(p[2]), med(d[order[i], "cpu"]) / fl
			}
			printf "\n"
		}
	}' "$all"
	echo
	echo "# raw results"
	cat "$all"
}

if [ "$out" = "-" ]; then
	report
else
	[ -n "$out" ] || { mkdir -p "$top/tests/bench/results"; out="$top/tests/bench/results/fcopy-$(date -u +%Y%m%d-%H%M%S).txt"; }
	report | tee "$out"
	echo "(kept in $out)" >&2
fi
