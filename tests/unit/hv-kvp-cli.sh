#!/bin/bash
# hv-kvp-cli.sh HV_KVP
# The hv-kvp command on a temporary pool directory: commands, output,
# exit codes (0 ok, 1 not found/failure, 2 usage), file format.
set -u
cli=$1
t=$(mktemp -d "${TMPDIR:-/tmp}/hv-kvp-cli.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
: >"$t/empty.conf"
kvp() { "$cli" --config "$t/empty.conf" -p "$t/pools" "$@"; }
expect() { # expect CODE ARGS...
	local want=$1
	shift
	kvp "$@" >"$t/out" 2>"$t/err"
	local rc=$?
	[ "$rc" = "$want" ] || bad "hv-kvp $*: exit $rc, expected $want ($(cat "$t/err"))"
}

# Reading a missing directory creates nothing.
expect 0 list 1
[ -s "$t/out" ] && bad "list of a missing pool printed something"
[ -e "$t/pools" ] && bad "list created the pool directory"
expect 1 get 1 nothing

expect 0 set 1 alpha 1
expect 0 set guest beta "two words"
expect 0 set 1 "tab	key" "line1
line2\\end"
expect 0 set 1 alpha one
expect 0 list 1
printf 'alpha\tone\nbeta\ttwo words\ntab\\tkey\tline1\\nline2\\\\end\n' >"$t/want"
cmp -s "$t/out" "$t/want" || bad "list output: $(cat -A "$t/out")"
expect 0 get 1 beta
[ "$(cat "$t/out")" = "two words" ] || bad "get: $(cat "$t/out")"
[ "$(stat -c %s "$t/pools/.kvp_pool_1")" = $((3 * 2560)) ] || bad "pool 1 size"
# Record layout: key at 0, value at 512, NUL-padded.
[ "$(head -c 5 "$t/pools/.kvp_pool_1")" = alpha ] || bad "record 0 key"
[ "$(dd if="$t/pools/.kvp_pool_1" bs=1 skip=512 count=3 status=none)" = one ] || bad "record 0 value"

expect 0 delete 1 alpha
expect 1 delete 1 alpha
expect 0 list 1
[ "$(head -1 "$t/out")" = "$(printf 'beta\ttwo words')" ] || bad "delete did not move beta up"

# Pool names and numbers are the same pools.
expect 0 set auto-external PhysicalHostName HOST-7
expect 0 get 3 PhysicalHostName
[ "$(cat "$t/out")" = HOST-7 ] || bad "pool name 3"
expect 0 get AUTO-EXTERNAL PhysicalHostName

# Limits: 511/2047 bytes fit, one more is a usage error; host limits warn.
k511=$(printf 'k%.0s' $(seq 511))
v2047=$(printf 'v%.0s' $(seq 2047))
expect 0 set 0 "$k511" "$v2047"
grep -q "the host sees only the first 254" "$t/err" || bad "no host key limit warning"
grep -q "the host sees only the first 1022" "$t/err" || bad "no host value limit warning"
expect 2 set 0 "${k511}k" v
expect 2 set 0 k "${v2047}v"
expect 2 set 0 "" v
expect 0 get 0 "$k511"
[ "$(cat "$t/out")" = "$v2047" ] || bad "long value"

# Usage errors.
expect 2
expect 2 list
expect 2 list 5
expect 2 list nosuchpool
expect 2 frobnicate 1
expect 2 get 1
expect 2 set 1 k
expect 2 get 1 a b
expect 2 --no-such-option list 1
expect 0 --help
grep -q "Exit status" "$t/out" || bad "--help has no exit status section"
expect 0 --version

# The configuration's pool-dir and pool-mode.
printf '[kvp]\npool-dir=%s\npool-mode=0600\n' "$t/cfgpools" >"$t/c.conf"
"$cli" -c "$t/c.conf" set 4 k v || bad "set with config"
[ "$(stat -c %a "$t/cfgpools/.kvp_pool_4")" = 600 ] || bad "pool-mode from config"
printf '[kvp]\npool-mode=99\n' >"$t/bad.conf"
"$cli" -c "$t/bad.conf" -p "$t/pools" list 1 >/dev/null 2>&1
[ $? = 2 ] || bad "bad pool-mode is not a usage error"

# A file that cannot be written: exit 1.
if [ "$(id -u)" != 0 ]; then
	chmod 0555 "$t/pools"
	expect 1 set 1 x y
	chmod 0755 "$t/pools"
fi

[ $fail = 0 ] && echo "ok"
exit $fail
