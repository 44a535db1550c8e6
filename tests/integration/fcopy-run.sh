#!/bin/bash
# fcopy-run.sh SANDBOX EMU DAEMON FS SIZE_MIB CONFIG TIMEOUT EXPECT [emu options] -- STEPS...
# One FCOPY scenario: hv-emu-fcopy (the scripted host) and the daemon inside
# hv-sandbox, on scratch file systems of SIZE_MIB MiB each (FS: a comma
# separated list, mounted at /mnt/fs0, /mnt/fs1, ...). Exit 77 = skipped.
# EXPECT: extended regular expressions separated by "@@" that must each
# match a line of the output (daemon lines are prefixed "daemon| ").
# FCOPY_SETUP: a dash command run inside the sandbox first (e.g. to plant a
# symbolic link); FCOPY_COPY: more executables to copy in.
set -u
sandbox=$1 emu=$2 daemon=$3 fs=$4 size=$5 config=$6 timeout=$7 expect=$8
shift 8

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root (namespaces, FUSE, block devices)"
	exit 77
fi
if [ ! -x "$daemon" ]; then
	echo "skipped: no daemon at $daemon (run scripts/deps.sh for the reference)"
	exit 77
fi

export HV_EMU_CONFIG="$config"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
copies=(--copy "$daemon")
for c in ${FCOPY_COPY:-}; do
	copies+=(--copy "$c")
done
args=(--daemon "/bin/$(basename "$daemon")" "$@")
if [ -n "${FCOPY_SETUP:-}" ]; then
	quoted=$(printf ' %q' /bin/hv-emu-fcopy "${args[@]}")
	"$sandbox" --fs "$fs" --size "$size" --timeout "$timeout" "${copies[@]}" --copy /bin/dash \
		--copy "$emu" -- \
		/bin/dash -c "$FCOPY_SETUP && exec$quoted" 2>&1 | tee "$out"
else
	"$sandbox" --fs "$fs" --size "$size" --timeout "$timeout" "${copies[@]}" -- \
		"$emu" "${args[@]}" 2>&1 | tee "$out"
fi
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && exit "$rc"

if [ -n "$expect" ]; then
	IFS=$'\n' read -r -d '' -a patterns < <(printf '%s' "${expect//@@/$'\n'}" && printf '\0')
	for p in "${patterns[@]}"; do
		if ! grep -Eq -- "$p" "$out"; then
			echo "fcopy-run: no output line matches: $p"
			exit 1
		fi
	done
fi
exit 0
