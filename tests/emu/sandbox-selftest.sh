#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Self-test of hv-sandbox: real freezes of its scratch file systems, the
# "left frozen" check, the watchdog, signals, a killed ns-init, setup failures
# and the safety check. Every case also checks that each device the run
# created was removed and its working directory is gone.
#
# usage: sandbox-selftest.sh PATH/TO/hv-sandbox     (exit 77 when it cannot run)

# The command scripts are single-quoted on purpose: they expand inside the sandbox.
# shellcheck disable=SC2016

set -u

SB=${1:?usage: $0 PATH/TO/hv-sandbox}
SB=$(readlink -f "$SB")
if [ ! -x "$SB" ]; then
	echo "not an executable: $1"
	exit 1
fi
failures=0
tmp=$(mktemp -d /tmp/hv-sandbox-selftest.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: must run as root"
	exit 77
fi

SH=$(readlink -f /bin/sh)
FSFREEZE=$(command -v fsfreeze || echo /usr/sbin/fsfreeze)
tools=()
for t in cat ls sleep stat; do
	tools+=(--copy "$(command -v $t)")
done
tools+=(--copy "$FSFREEZE")

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

pass() {
	echo "ok: $*"
}

# check_eq WHAT GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1: $2"
	else
		fail "$1: $2, expected $3"
	fi
}

# Every device a run created (from its --verbose log) must have been removed,
# and its working directory must be gone.
check_cleanup() {
	local name=$1 log=$2 created removed dir

	created=$(grep -o 'created [a-z]*[0-9]* (' "$log" | awk '{print $2}' | sort)
	removed=$(grep -o 'removed [a-z]*[0-9]* (' "$log" | awk '{print $2}' | sort)
	if [ "$created" != "$removed" ]; then
		fail "$name: created [${created//$'\n'/ }] but removed [${removed//$'\n'/ }]"
		sed 's/^/    /' "$log"
	fi
	dir=$(grep -o 'working directory /tmp/hv-sandbox\.[A-Za-z0-9]*' "$log" | awk '{print $3}')
	if [ -n "$dir" ] && [ -e "$dir" ]; then
		fail "$name: $dir was left behind"
	fi
}

# run NAME EXPECTED_STATUS HV-SANDBOX-ARGS... ; output in $tmp/NAME.log
run() {
	local name=$1 want=$2 st
	shift 2

	"$SB" --verbose "$@" >"$tmp/$name.log" 2>&1 </dev/null
	st=$?
	if [ "$st" = 77 ] && [ "$name" = basic ]; then
		echo "SKIP: hv-sandbox cannot run here:"
		cat "$tmp/$name.log"
		exit 77
	fi
	if [ "$st" != "$want" ]; then
		fail "$name: exit status $st, expected $want"
		sed 's/^/    /' "$tmp/$name.log"
	else
		pass "$name: exit status $st"
	fi
	check_cleanup "$name" "$tmp/$name.log"
}

expect() {
	local name=$1 pattern=$2

	if grep -qE -- "$pattern" "$tmp/$name.log"; then
		pass "$name: found '$pattern'"
	else
		fail "$name: no '$pattern' in the output"
		sed 's/^/    /' "$tmp/$name.log"
	fi
}

expect_not() {
	local name=$1 pattern=$2

	if grep -qE -- "$pattern" "$tmp/$name.log"; then
		fail "$name: unexpected '$pattern' in the output"
	else
		pass "$name: no '$pattern'"
	fi
}

# The sandbox's children of our outer process: mid, then ns-init below it.
ns_init_of() {
	local outer=$1 mid p

	for mid in $(pgrep -P "$outer"); do
		for p in $(pgrep -P "$mid"); do
			if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /run/hv-sandbox/init ]; then
				echo "$p"
				return 0
			fi
		done
	done
	return 1
}

wait_for_line() {
	local file=$1 pattern=$2 tries

	for ((tries = 0; tries < 100; tries++)); do
		grep -q -- "$pattern" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 1. Mount table: a tmpfs root, proc and the scratch file systems, nothing else.
run basic 0 --fs ext4,xfs,btrfs "${tools[@]}" -- "$SH" -c '
	cat /proc/self/mountinfo
	echo "scratch=[$HV_SCRATCH] path=[$PATH] home=[$HOME]"
	cat /etc/hv-scratch
	ls /mnt /dev/vmbus /etc/hyperv
	test -c /dev/fuse && echo fuse-ok
	test "$(cat /proc/1/comm)" != "" && echo pid1-ok'
expect basic 'scratch=\[/mnt/fs0 /mnt/fs1 /mnt/fs2\] path=\[/bin\] home=\[/tmp\]'
expect basic '^/mnt/fs0 /dev/(zram|loop)[0-9]+ ext4$'
expect basic '^/mnt/fs1 /dev/(zram|loop)[0-9]+ xfs$'
expect basic '^/mnt/fs2 /dev/(zram|loop)[0-9]+ btrfs$'
expect basic '^fuse-ok$'
n=$(grep -cE '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ ' "$tmp/basic.log")
bad=$(grep -E '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ ' "$tmp/basic.log" |
	grep -vE ' - (tmpfs|proc) ' | grep -vE ' - (ext4|xfs|btrfs) /dev/(zram|loop)[0-9]+ ')
if [ "$n" = 5 ] && [ -z "$bad" ]; then
	pass "basic: 5 mounts, all tmpfs/proc/scratch"
else
	fail "basic: unexpected mount table ($n mounts): $bad"
fi

# 2. Freezing and leaving it frozen: thawed, reported, exit 3.
run left-frozen 3 --fs ext4,xfs,btrfs "${tools[@]}" -- "$SH" -c '
	for m in $HV_SCRATCH; do fsfreeze -f $m || exit 1; done; exit 0'
expect left-frozen 'left frozen: /mnt/fs0$'
expect left-frozen 'left frozen: /mnt/fs1$'
expect left-frozen 'left frozen: /mnt/fs2$'

# 3. Freeze then thaw properly: exit 0, nothing reported.
run freeze-thaw 0 --fs ext4,xfs,btrfs "${tools[@]}" -- "$SH" -c '
	for m in $HV_SCRATCH; do fsfreeze -f $m && fsfreeze -u $m || exit 1; done
	echo data > /mnt/fs1/file && cat /mnt/fs1/file'
expect_not freeze-thaw 'left frozen'
expect freeze-thaw '^data$'

# 4. --allow-frozen: still thawed, status is the command's.
run allow-frozen 0 --allow-frozen --fs xfs "${tools[@]}" -- "$SH" -c 'fsfreeze -f /mnt/fs0'
expect_not allow-frozen 'left frozen:'
expect allow-frozen 'was left frozen \(allowed\): /mnt/fs0'
expect allow-frozen 'thawed /mnt/fs0: it was frozen'

# 5. The command's exit status is passed on.
run status 42 --count 0 -- "$SH" -c 'exit 42'
run not-found 127 --count 0 -- no-such-command

# 6. Watchdog: frozen, a writer blocked on it, command hangs; thawed and killed.
start=$(date +%s)
run timeout 124 --timeout 3 --fs ext4 "${tools[@]}" -- "$SH" -c '
	fsfreeze -f /mnt/fs0; (echo x > /mnt/fs0/blocked) & sleep 1000'
expect timeout 'watchdog: timeout after 3 s'
expect timeout 'thawed /mnt/fs0: it was frozen'
elapsed=$(($(date +%s) - start))
if [ "$elapsed" -lt 20 ]; then pass "timeout: took ${elapsed}s"; else fail "timeout: took ${elapsed}s"; fi

# 7. SIGTERM to hv-sandbox while the command holds two file systems frozen.
"$SB" --verbose --fs ext4,btrfs "${tools[@]}" -- "$SH" -c '
	fsfreeze -f /mnt/fs0; fsfreeze -f /mnt/fs1; echo READY; sleep 1000' \
	>"$tmp/sigterm.log" 2>&1 </dev/null &
pid=$!
if wait_for_line "$tmp/sigterm.log" READY; then
	kill -TERM "$pid"
	wait "$pid"
	st=$?
	check_eq "sigterm: exit status" "$st" 143
	expect sigterm 'thawed /mnt/fs0: it was frozen'
	expect sigterm 'thawed /mnt/fs1: it was frozen'
else
	fail "sigterm: the command never started"
	kill -TERM "$pid"
	wait "$pid"
fi
check_cleanup sigterm "$tmp/sigterm.log"

# 8. ns-init killed with SIGKILL while frozen: no teardown inside, so the outer
#    process must find the busy devices, mount them again and thaw them.
"$SB" --verbose --fs ext4,xfs,btrfs "${tools[@]}" -- "$SH" -c '
	for m in $HV_SCRATCH; do fsfreeze -f $m; done; echo READY; sleep 1000' \
	>"$tmp/kill-init.log" 2>&1 </dev/null &
pid=$!
if wait_for_line "$tmp/kill-init.log" READY && init=$(ns_init_of "$pid"); then
	kill -KILL "$init"
	wait "$pid"
	st=$?
	check_eq "kill-init: exit status" "$st" 137
	n=$(grep -c 'rescue: .* was still frozen, thawed' "$tmp/kill-init.log")
	check_eq "kill-init: file systems rescued" "$n" 3
else
	fail "kill-init: could not find ns-init"
	kill -TERM "$pid"
	wait "$pid"
fi
check_cleanup kill-init "$tmp/kill-init.log"

# 9. SIGKILL of hv-sandbox itself: the intermediate process cleans up for it.
"$SB" --verbose --fs ext4 "${tools[@]}" -- "$SH" -c '
	fsfreeze -f /mnt/fs0; echo READY; sleep 1000' >"$tmp/kill-outer.log" 2>&1 </dev/null &
pid=$!
if wait_for_line "$tmp/kill-outer.log" READY; then
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	wait_for_line "$tmp/kill-outer.log" 'removed ' ||
		fail "kill-outer: the device was not removed"
	expect kill-outer 'cleaning up for it'
	check_cleanup kill-outer "$tmp/kill-outer.log"
else
	fail "kill-outer: the command never started"
	kill -TERM "$pid"
	wait "$pid"
fi

# 10. Loop devices instead of zram.
run loop 3 --backend loop --fs ext4,xfs,btrfs "${tools[@]}" -- "$SH" -c '
	cat /etc/hv-scratch; fsfreeze -f /mnt/fs1'
expect loop '^/mnt/fs0 /dev/loop[0-9]+ ext4$'
expect loop 'left frozen: /mnt/fs1$'

# 11. Setup failures leave nothing behind.
run no-mkfs 1 --fs ext4,nosuchfs -- "$SH" -c 'echo RAN'
expect_not no-mkfs '^RAN$'
run mkfs-fails 1 --fs ext4,xfs --size 16 -- "$SH" -c 'echo RAN'
expect_not mkfs-fails '^RAN$'
expect mkfs-fails 'created [a-z]+[0-9]+ .*/mnt/fs1'
run bad-copy 1 --copy /nonexistent/tool -- "$SH" -c 'echo RAN'
expect_not bad-copy '^RAN$'

# 12. The safety check refuses a mount it did not make, and runs nothing.
run foreign-mount 1 --test-foreign-mount -- "$SH" -c 'echo RAN'
expect foreign-mount 'refusing to run: mount not created by this sandbox: .* ramfs '
expect_not foreign-mount '^RAN$'

# 13. Output redirected to a file on a disk: the sandbox only sees a pipe, and
#     its init runs from the tmpfs.
"$SB" "${tools[@]}" --count 0 -- "$SH" -c '
	stat -f -c "%T %n" /proc/1/exe /proc/self/fd/1 /proc/self/fd/2 /proc/1/fd/1
	echo to-stderr >&2' >"$tmp/redirect.log" 2>&1 </dev/null
st=$?
if [ "$st" = 0 ] && grep -q '^tmpfs /proc/1/exe$' "$tmp/redirect.log" &&
   grep -q '^pipefs /proc/self/fd/1$' "$tmp/redirect.log" &&
   grep -q '^pipefs /proc/1/fd/1$' "$tmp/redirect.log" &&
   grep -q '^to-stderr$' "$tmp/redirect.log"; then
	pass "redirect: no descriptor reaches the disk"
else
	fail "redirect: status $st"
	sed 's/^/    /' "$tmp/redirect.log"
fi

# 14. Not root: skipped with 77.
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SB" -- /bin/true >/dev/null 2>&1
	st=$?
	check_eq "non-root: exit status" "$st" 77
fi

if [ "$failures" != 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "all passed"
exit 0
