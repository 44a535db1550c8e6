#!/bin/bash
# kvp-compare.sh SANDBOX EMU DAEMON_A ARGS_A DAEMON_B ARGS_B SEED N INVALID FILTERS
#
# Drives two KVP daemons with the same script (a fixed explicit part, then
# N seeded random requests, then a dump of every pool file) through
# hv-emu-kvp in hv-sandbox (tests/integration/kvp-run.sh) and diffs the two
# transcripts: every status, every key and value the host would read, and
# every pool file byte for byte (its hash and record listing).
#
#   ARGS_A/ARGS_B  the daemon's arguments, whitespace separated ("-n" for the
#                  upstream daemon; ours e.g. "--pool-dir=/var/lib/hyperv
#                  --device=/dev/vmbus/hv_kvp")
#   INVALID        hv-emu-kvp --invalid classes of the random workload
#   FILTERS        "none", or "upstream-vs-ours": the differences between the
#                  upstream daemon (A) and ours (B) that are accepted on
#                  purpose, each one a narrow rewrite below
#
# KVP_COMPARE_KEEP=DIR keeps both outputs, transcripts and the diff there.
# Both runs use --restart, so a daemon that dies is restarted and the
# script goes on (the transcript records "daemon exited").
# Exit: 0 same, 1 different or a run failed, 77 cannot run here.
set -u
sandbox=$1 emu=$2 daemon_a=$3 args_a=$4 daemon_b=$5 args_b=$6 seed=$7 n=$8 invalid=$9
filters=${10}
here=$(cd "$(dirname "$0")" && pwd)

for d in "$daemon_a" "$daemon_b"; do
	if [ ! -x "$d" ]; then
		echo "skipped: no daemon at $d"
		exit 77
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Explicit part: every op once in every valid pool, UTF-8, the longest key and
# value a driver can send, enumeration to the end, the auto pool, records
# appended behind the daemon's back (cloud-init, under flock()).
long_key=$(printf 'k%.0s' $(seq 1 511))
long_value=$(printf 'v%.0s' $(seq 1 2047))
script=(
	set:0:alpha=1 set:1:alpha=2 set:3:alpha=3 set:4:alpha=4
	set:1:beta=two set:1:alpha=overwritten "set:1:ключ=värde 🔑" set:1:empty=
	set-u32:0:u32=4294967295 set-u64:0:u64=18446744073709551615
	"set:1:$long_key=$long_value"
	get:1:alpha get:1:beta get:1:missing get:0:alpha "get:1:ключ"
	enumerate:0 enumerate:1 enumerate:3 enumerate:4
	delete:1:beta delete:1:beta delete:1:missing enumerate:1
	enumerate:2 enum:1:1000 op:5:0 op:9:1
	append:1:cloud-init=ready append:0:PhysicalHostName=host1 enumerate:1 get:0:PhysicalHostName
	set:1:cloud-init=seen delete:1:alpha enumerate:1
	random:"$n" dump-pools
)

run() { # LABEL DAEMON ARGS
	KVP_DAEMON_ARGS=$3 KVP_OUT="$work/$1.out" "$here/kvp-run.sh" "$sandbox" "$emu" "$2" \
		--quiet --restart --seed "$seed" --invalid "$invalid" "${script[@]}"
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "kvp-compare: run $1 ($2) failed with exit status $rc:"
		grep -v '^T| ' "$work/$1.out" | tail -30
		exit $((rc == 77 ? 77 : 1))
	fi
	grep '^T| ' "$work/$1.out" >"$work/$1.t"
	echo "kvp-compare: $1: $(grep -c '^T| [0-9]' "$work/$1.t") requests, $(grep -c '^T| daemon exited' "$work/$1.t") daemon exits ($2)"
}

run a "$daemon_a" "$args_a"
run b "$daemon_b" "$args_b"

# The accepted differences between the upstream daemon (A) and ours (B).
# Each rewrite touches only the lines it names, in both transcripts.
apply_filters() {
	case "$filters" in
	none)
		cat
		;;
	upstream-vs-ours)
		sed -E \
			`# Unknown ops (OP_n lines: random inv=bad-op and the explicit op:9):` \
			`# upstream answers HV_S_OK without doing anything; ours refuses them.` \
			`# Only the status of answered ones (a timeout still differs).` \
			-e 's/^(T\| [0-9]+ OP_[0-9]+ pool=[0-9]+( inv=bad-op)?) status=0x[0-9a-f]{8}$/\1 status=<unknown op: status not compared>/' \
			`# Oversized key_size/value_size (inv=long-key, inv=long-value): both` \
			`# refuse; upstream with HV_S_CONT (its "not found"), ours with` \
			`# HV_INVALIDARG. Either of the two, on those lines only.` \
			-e 's/^(T\| [0-9]+ [A-Z]+ pool=[0-9]+ .*inv=long-(key|value)) status=0x800(70103|70057)$/\1 status=<refused>/' \
			`# GET: upstream copies body.kvp_set.data.value_size (0 from the driver)` \
			`# bytes of the value, so the host always reads an empty value; ours` \
			`# answers with the value where kvp_respond_to_host() reads it.` \
			-e "s/^(T\\| [0-9]+ GET pool=[0-4] key=.* status=0x00000000) rvalue=.*$/\\1 rvalue=<GET value not compared>/" \
			`# FullyQualifiedDomainName when the name cannot be resolved (the` \
			`# sandbox has no name server): upstream sends its error text` \
			`# ("getaddrinfo failed: ..."), ours the host name. That key only.` \
			-e "s/^(T\\| [0-9]+ ENUMERATE pool=2 index=[0-9]+ status=0x00000000 rkey='FullyQualifiedDomainName') rvalue=.*$/\\1 rvalue=<FQDN not compared>/" \
			`# SET_IP_INFO with an empty adapter GUID (op:5 with empty fields):` \
			`# upstream looks the empty GUID up (HV_GUID_NOTFOUND), ours refuses` \
			`# the request as invalid first (HV_INVALIDARG). Either, there only.` \
			-e 's/^(T\| [0-9]+ SET_IP_INFO pool=[0-9]+) status=0x80(041002|070057)$/\1 status=<refused>/' \
			`# Pool files: upstream never clears the rest of a record (heap bytes of` \
			`# its grown array, or the tail a DELETE left when it moved records up` \
			`# with strcpy), so bytes follow the NUL of its keys and values.` \
			`# Compared: size, every key and value up to its NUL, and fnv0 (the` \
			`# file hashed with the bytes after each NUL taken as zero).` \
			-e 's/^(T\| pool [0-4] \[[0-9]+\] key=.* value=.*) \(bytes after the NUL\)$/\1/' \
			-e 's/^(T\| pool [0-4]: [0-9]+ records), fnv [0-9a-f]{16}, (fnv0 [0-9a-f]{16})$/\1, \2/'
		;;
	*)
		echo "kvp-compare: unknown FILTERS: $filters" >&2
		exit 2
		;;
	esac
}

# The request counter is left out of the comparison, so that one request more
# or less (e.g. an enumeration that ends earlier) shows as that difference
# only and does not renumber everything after it.
apply_filters <"$work/a.t" | sed -E 's/^T\| [0-9]+ /T| /' >"$work/a.f"
apply_filters <"$work/b.t" | sed -E 's/^T\| [0-9]+ /T| /' >"$work/b.f"
diff -u --label "A $daemon_a" --label "B $daemon_b" "$work/a.f" "$work/b.f" >"$work/diff"
same=$?
if [ -n "${KVP_COMPARE_KEEP:-}" ]; then
	mkdir -p "$KVP_COMPARE_KEEP" && cp "$work"/a.* "$work"/b.* "$work/diff" "$KVP_COMPARE_KEEP/"
fi
if [ "$same" -ne 0 ]; then
	echo "kvp-compare: the transcripts differ ($(grep -c '^[-+]T' "$work/diff") lines); first differences:"
	head -120 "$work/diff"
	exit 1
fi
echo "kvp-compare: same transcript and pool files ($(wc -l <"$work/a.f") lines, seed $seed, $n random requests, invalid $invalid, filters $filters)"
exit 0
