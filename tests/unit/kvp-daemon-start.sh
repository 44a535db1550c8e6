#!/bin/bash
# kvp-daemon-start.sh HV_KVP_DAEMON HV_KVP
# The daemon without any KVP device: it creates the five pool files in a
# temporary directory before looking for the driver, then fails with a
# clear message and exit code 1; bad configuration is exit code 2.
# Never touches /var/lib/hyperv or /dev/vmbus.
set -u
daemon=$1
cli=$2
t=$(mktemp -d "${TMPDIR:-/tmp}/hv-kvp-start.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
: >"$t/empty.conf"

run() { # run NAME ARGS...: exit code in $rc, stderr in $t/NAME.err
	local name=$1
	shift
	timeout 20 "$daemon" --config "$t/empty.conf" --log-target stderr "$@" >"$t/$name.out" 2>"$t/$name.err"
	rc=$?
}

# An existing pool keeps its records.
mkdir -p "$t/pools"
"$cli" --config "$t/empty.conf" -p "$t/pools" set 1 kept value || bad "hv-kvp set"
before=$(sha256sum <"$t/pools/.kvp_pool_1")

run nodev -n --pool-dir "$t/pools" --transport chardev --device "$t/no-such-device"
[ "$rc" = 1 ] || bad "no device: exit code $rc, expected 1"
grep -q "no-such-device does not exist: is this a Hyper-V guest" "$t/nodev.err" ||
	bad "no device: unclear message: $(cat "$t/nodev.err")"
for i in 0 1 2 3 4; do
	f="$t/pools/.kvp_pool_$i"
	[ -f "$f" ] || { bad "$f not created"; continue; }
	[ "$(stat -c %a "$f")" = 644 ] || bad "$f has mode $(stat -c %a "$f")"
	[ "$i" = 1 ] || [ "$(stat -c %s "$f")" = 0 ] || bad "$f is not empty"
done
[ "$(sha256sum <"$t/pools/.kvp_pool_1")" = "$before" ] || bad "pool 1 changed"

# A new directory is created 0755, the files with the configured mode.
printf '[kvp]\npool-dir=%s\npool-mode=0600\n' "$t/new/dir" >"$t/mode.conf"
timeout 20 "$daemon" --config "$t/mode.conf" --log-target stderr --transport chardev \
	--device "$t/no-such-device" 2>"$t/mode.err"
rc=$?
[ "$rc" = 1 ] || bad "configured dir: exit code $rc, expected 1"
[ "$(stat -c %a "$t/new/dir")" = 755 ] || bad "pool dir mode $(stat -c %a "$t/new/dir")"
for i in 0 1 2 3 4; do
	[ "$(stat -c %a "$t/new/dir/.kvp_pool_$i" 2>/dev/null)" = 600 ] || bad "pool $i not created 0600"
done

# The netlink connector without a KVP driver behind it: exit 1, no hang.
run netlink --pool-dir "$t/pools" --transport netlink
[ "$rc" = 1 ] || bad "netlink: exit code $rc, expected 1 ($(cat "$t/netlink.err"))"

# Bad configuration or usage: exit 2, the message names the key.
printf '[kvp]\npool-mode=abc\n' >"$t/bad.conf"
timeout 20 "$daemon" --config "$t/bad.conf" --log-target stderr --pool-dir "$t/pools" \
	--transport chardev --device "$t/x" 2>"$t/bad.err"
rc=$?
[ "$rc" = 2 ] || bad "bad pool-mode: exit code $rc, expected 2"
grep -q "pool-mode = 'abc' is not valid" "$t/bad.err" || bad "bad pool-mode: $(cat "$t/bad.err")"
run relative --pool-dir relative/dir --transport chardev --device "$t/x"
[ "$rc" = 2 ] || bad "relative pool dir: exit code $rc, expected 2"
run transport --pool-dir "$t/pools" --transport carrier-pigeon
[ "$rc" = 2 ] || bad "bad transport: exit code $rc, expected 2"
run extra --pool-dir "$t/pools" extra-argument
[ "$rc" = 2 ] || bad "extra argument: exit code $rc, expected 2"
[ -e relative ] && bad "a relative pool dir was created"

[ $fail = 0 ] && echo "ok"
exit $fail
