#!/bin/bash
# kvp-run.sh SANDBOX EMU DAEMON [hv-emu-kvp options and steps...]
#
# Runs hv-emu-kvp with DAEMON inside hv-sandbox: the FUSE device at
# /dev/vmbus/hv_kvp and the pools at /var/lib/hyperv inside the sandbox's
# tmpfs root (the upstream daemon hard-codes both), a read-only sysfs (the
# daemons look up adapters in /sys/class/net), and what the upstream
# daemon's helpers need: /usr/libexec/hypervkvpd/hv_get_dns_info and
# hv_get_dhcp_info (bash scripts run through popen, so /bin/sh too), cat,
# awk, grep, sed, ip (the upstream gateway query is
# "ip route show dev IF | awk ..."), an /etc/resolv.conf naming 127.0.0.1
# with a 1 s timeout (a name server that does not answer would hold the
# upstream daemon's start-up getaddrinfo() for seconds) and the host's
# /etc/os-release (the auto pool's OS keys).
#
# Environment:
#   KVP_DAEMON_ARGS  arguments for DAEMON, whitespace separated (default "-n",
#                    the upstream daemon's foreground flag)
#   KVP_OUT          also write the whole output to this file
#   KVP_HELPERS      directory with the upstream helper scripts (default:
#                    ../libexec/hypervkvpd next to DAEMON's sbin/ when it is
#                    there, else .reference/usr/libexec/hypervkvpd)
#   KVP_EXPECT       extended regular expressions separated by "@@" that must
#                    each match a line of the output (else exit 1)
#   KVP_REJECT       the same, but none may match any line
#   KVP_SETUP        dash commands run inside the sandbox before hv-emu-kvp
#                    (e.g. a configuration file, a fake helper, a tmpfs over
#                    part of the read-only sysfs); a failure ends the run
#   KVP_AFTER        dash commands run after it (their output is checked too)
#   KVP_COPY         more executables to copy in, space separated (e.g. mount)
#   KVP_SCRATCH_MIB  size of the sandbox's ext4 scratch fs at /mnt/fs0 (default 32)
#
# Prints hv-emu-kvp's output (transcript lines start with "T| ", bench lines
# with "B| ", daemon output with "daemon| "). Exit status: hv-emu-kvp's, 77
# when it cannot run here.
set -u
sandbox=$1 emu=$2 daemon=$3
shift 3

top=$(cd "$(dirname "$0")/../.." && pwd)
helpers=${KVP_HELPERS:-}
if [ -z "$helpers" ]; then
	helpers=$(dirname "$daemon")/../libexec/hypervkvpd
	[ -d "$helpers" ] || helpers=$top/.reference/usr/libexec/hypervkvpd
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root (namespaces, FUSE)"
	exit 77
fi
if [ ! -x "$daemon" ]; then
	echo "skipped: no daemon at $daemon (run scripts/deps.sh for the reference)"
	exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$work/resolv.conf"

copies=(--copy "$daemon" --copy "$work/resolv.conf")
installs=(--install /bin/resolv.conf:/etc/resolv.conf)
if [ -f /etc/os-release ]; then
	cp /etc/os-release "$work/os-release"
	copies+=(--copy "$work/os-release")
	installs+=(--install /bin/os-release:/etc/os-release)
fi
for tool in bash dash cat awk grep sed ip; do
	path=$(command -v "$tool" 2>/dev/null) || continue
	copies+=(--copy "$path")
done
if command -v dash >/dev/null; then
	installs+=(--install /bin/dash:/bin/sh)
fi
for h in hv_get_dns_info hv_get_dhcp_info hv_set_ifconfig; do
	if [ -f "$helpers/$h" ]; then
		copies+=(--copy "$helpers/$h")
		installs+=(--install "/bin/$h:/usr/libexec/hypervkvpd/$h")
	fi
done

for c in ${KVP_COPY:-}; do
	copies+=(--copy "$c")
done

read -r -a dargs <<<"${KVP_DAEMON_ARGS:--n}"
daemon_args=()
for a in "${dargs[@]}"; do
	daemon_args+=("--daemon-arg=$a")
done

out=${KVP_OUT:-$work/out}
cmd=("$emu" --daemon "/bin/$(basename "$daemon")" "${daemon_args[@]}" "${installs[@]}" "$@")
setup=${KVP_SETUP:-}
netns=()
if [[ " $* " == *" --transport netlink "* && " ${KVP_DAEMON_ARGS:-} " == *" --allow-user-peer "* ]]; then
	# The netlink connector with a user-space peer: a network namespace of
	# the sandbox's own (its multicast groups are per namespace, so runs
	# in parallel cannot hear each other), with one adapter for the IP
	# info and the auto pool: a veth end with a Hyper-V MAC and addresses
	# from the documentation ranges.
	netns=(--netns)
	ns_setup="ip link add eth0 type veth peer name eth1 && ip link set eth0 address 00:15:5d:00:00:01"
	ns_setup+=" && ip addr add 192.0.2.10/24 dev eth0 && ip -6 addr add 2001:db8::10/64 dev eth0 nodad"
	ns_setup+=" && ip link set eth1 up && ip link set eth0 up && ip route add default via 192.0.2.1"
	setup="$ns_setup${setup:+
$setup}"
fi
if [ -n "$setup${KVP_AFTER:-}" ]; then
	# The emulator's arguments stay positional ("$@" of the dash script).
	script="set -e
${setup:-:}
set +e
/bin/$(basename "$emu") \"\$@\"
rc=\$?
${KVP_AFTER:-:}
exit \$rc"
	copies+=(--copy "$emu" --copy "$(command -v dash)")
	cmd=(/bin/dash -c "$script" sh "${cmd[@]:1}")
fi
"$sandbox" "${netns[@]}" --sysfs --count 1 --size "${KVP_SCRATCH_MIB:-32}" --timeout "${KVP_TIMEOUT:-600}" "${copies[@]}" -- \
	"${cmd[@]}" >"$out" 2>&1
rc=$?
[ -z "${KVP_OUT:-}" ] && cat "$out"
[ "$rc" -ne 0 ] && exit "$rc"

# Sanitized builds: a report from any process in the sandbox fails the run
# (as in run-scenario.sh; a daemon stopped at the end is not judged by its status).
if grep -Eq 'ERROR: (Address|Leak)Sanitizer|SUMMARY: UndefinedBehaviorSanitizer|: runtime error: ' "$out"; then
	echo "kvp-run: a sanitizer reported an error"
	grep -E -A20 'ERROR: (Address|Leak)Sanitizer|: runtime error: ' "$out" | head -n 60
	exit 1
fi

if [ -n "${KVP_EXPECT:-}" ]; then
	IFS=$'\n' read -r -d '' -a patterns < <(printf '%s' "${KVP_EXPECT//@@/$'\n'}" && printf '\0')
	for p in "${patterns[@]}"; do
		if ! grep -Eq -- "$p" "$out"; then
			echo "kvp-run: no output line matches: $p"
			exit 1
		fi
	done
fi
if [ -n "${KVP_REJECT:-}" ]; then
	IFS=$'\n' read -r -d '' -a patterns < <(printf '%s' "${KVP_REJECT//@@/$'\n'}" && printf '\0')
	for p in "${patterns[@]}"; do
		if grep -Eq -- "$p" "$out"; then
			echo "kvp-run: an output line matches what must not appear: $p"
			grep -E -m3 -- "$p" "$out"
			exit 1
		fi
	done
fi
exit 0
