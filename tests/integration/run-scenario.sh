#!/bin/bash
# run-scenario.sh SANDBOX EMU DAEMON FS COUNT CONFIG TIMEOUT EXPECT [emu options] -- STEPS...
# Runs one emulated-host scenario inside hv-sandbox. Exit 77 = skipped.
# EXPECT: extended regular expressions separated by "@@" that must each match
# a line of the output (the daemon's log lines are prefixed "daemon| ").
set -u
sandbox=$1 emu=$2 daemon=$3 fs=$4 count=$5 config=$6 timeout=$7 expect=$8
shift 8

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
# Netlink scenarios with a user-space peer get a network namespace of their
# own: the connector's multicast groups are per namespace, so concurrent
# runs cannot pick up each other's daemons. (Those that talk to the kernel's
# connector, e.g. vss-netlink-no-driver, need the host's namespace.)
if [[ " $* " == *" --transport=netlink "* && " $* " == *" --daemon-arg=--allow-user-peer "* ]]; then
	count_args+=(--netns)
fi

# The configuration goes in through the environment: hv-emu writes it inside
# the sandbox (whose /tmp is a fresh tmpfs).
export HV_EMU_CONFIG="$config"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# HV_SCENARIO_SETUP: a command run inside the sandbox before hv-emu (through
# dash); HV_SCENARIO_COPY: more executables to copy in (space separated).
copies=(--copy "$daemon")
for c in ${HV_SCENARIO_COPY:-}; do
	copies+=(--copy "$c")
done
if [ -n "${HV_SCENARIO_SETUP:-}" ]; then
	quoted=$(printf ' %q' --daemon "/bin/$(basename "$daemon")" "$@")
	"$sandbox" --fs "$fs" "${count_args[@]}" --timeout "$timeout" "${copies[@]}" \
		--copy /bin/dash --copy "$emu" -- \
		/bin/dash -c "$HV_SCENARIO_SETUP && exec /bin/hv-emu$quoted" 2>&1 | tee "$out"
else
	"$sandbox" --fs "$fs" "${count_args[@]}" --timeout "$timeout" "${copies[@]}" -- \
		"$emu" --daemon "/bin/$(basename "$daemon")" "$@" 2>&1 | tee "$out"
fi
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && exit "$rc"

# Sanitized builds (scripts/test.sh, build-asan): a report from any process
# in the sandbox fails the scenario, even one from a daemon that the
# emulator stopped at the end (whose exit status is not judged).
if grep -Eq 'ERROR: (Address|Leak)Sanitizer|SUMMARY: UndefinedBehaviorSanitizer|: runtime error: ' "$out"; then
	echo "run-scenario: a sanitizer reported an error (above)"
	exit 1
fi

if [ -n "$expect" ]; then
	IFS=$'\n' read -r -d '' -a patterns < <(printf '%s' "${expect//@@/$'\n'}" && printf '\0')
	for p in "${patterns[@]}"; do
		if ! grep -Eq -- "$p" "$out"; then
			echo "run-scenario: no output line matches: $p"
			exit 1
		fi
	done
fi
exit 0
