#!/bin/bash
# run-scenario.sh SANDBOX EMU DAEMON FS COUNT CONFIG TIMEOUT [emu options] -- STEPS...
# Runs one emulated-host scenario inside hv-sandbox. Exit 77 = skipped.
set -u
sandbox=$1 emu=$2 daemon=$3 fs=$4 count=$5 config=$6 timeout=$7
shift 7

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root (namespaces, FUSE, block devices)"
	exit 77
fi
if [ ! -x "$daemon" ]; then
	echo "skipped: no daemon at $daemon (run scripts/deps.sh for the reference)"
	exit 77
fi

count_args=()
[ "$count" != 0 ] && count_args=(--count "$count")

# The configuration goes in through the environment: hv-emu writes it inside
# the sandbox (whose /tmp is a fresh tmpfs).
export HV_EMU_CONFIG="$config"
exec "$sandbox" --fs "$fs" "${count_args[@]}" --timeout "$timeout" --copy "$daemon" -- \
	"$emu" --daemon "/bin/$(basename "$daemon")" "$@"
