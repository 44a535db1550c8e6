#!/bin/bash
# deb.sh SRC_DIR
#   Builds the hyperv-daemons Debian package from SRC_DIR with
#   packaging/build-deb.sh (dpkg-buildpackage -us -uc -b, unit tests
#   included), fails on any lintian error or warning, installs it with dpkg
#   while a policy-rc.d forbids every service start (exit 101), checks
#   `dpkg -L` against the expected files and that no daemon was started, then
#   purges it.
#   Exit 77 (skipped) when not root, when the tools are missing (see
#   tests/packaging/deps.sh), or when a hyperv-daemons package other than
#   ours is installed.
# Safety: the daemon freezes every file system, so it must never start
# here. Three things keep it off: the policy-rc.d (deb-systemd-invoke and
# invoke-rc.d obey it), the postinst only starts units when systemd runs
# (/run/systemd/system), and the unit's ConditionVirtualization=microsoft.
set -euo pipefail

src=$(cd "$1" && pwd)
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
for t in dpkg-buildpackage dh lintian dpkg-checkbuilddeps; do
	command -v "$t" >/dev/null || skip "$t missing: run tests/packaging/deps.sh"
done
dpkg-checkbuilddeps "$src/packaging/debian/control" ||
	skip "build dependencies missing: run tests/packaging/deps.sh"
status=$(dpkg-query -W -f='${Status} ${Version}' hyperv-daemons 2>/dev/null || true)
case "$status" in
"" | *not-installed* | "deinstall ok config-files"*) ;;
*) skip "hyperv-daemons is installed ($status); not replacing it" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/hv-deb-test.XXXXXX")
policy=/usr/sbin/policy-rc.d
own_policy=0
cleanup() {
	if dpkg-query -W -f='${Status}' hyperv-daemons 2>/dev/null | grep -q 'ok installed'; then
		dpkg --purge hyperv-daemons >/dev/null || true
	fi
	[ $own_policy -eq 1 ] && rm -f "$policy"
	rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
"$src/packaging/build-deb.sh" "$work/out" >"$work/build.log" 2>&1 ||
	{ tail -80 "$work/build.log"; echo "FAIL: package build"; exit 1; }
grep -E '^[0-9]+% tests passed|tests failed' "$work/build.log" || true
deb=$(ls "$work"/out/hyperv-daemons_*.deb)

echo "== lintian $(basename "$deb")"
lintian --info --display-info "$deb" 2>&1 | grep -v 'root privileges' | tee "$work/lintian.log" || true
if grep -Eq '^[EW]: ' "$work/lintian.log"; then
	echo "FAIL: lintian errors or warnings"
	exit 1
fi

echo "== policy-rc.d"
if [ -e "$policy" ]; then
	rc=0; "$policy" hv-vss-daemon.service start || rc=$?
	[ $rc -eq 101 ] || { echo "FAIL: existing $policy allows starts (exit $rc)"; exit 1; }
else
	printf '#!/bin/sh\n# hyperv-daemons test: no service starts\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
echo "$policy forbids starts"

echo "== dpkg -i"
# Only the installed binary counts: other tests may run their own built
# daemon inside hv-sandbox at the same time.
installed_daemons() {
	local p
	for p in $(pgrep -x hv_vss_daemon || true); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/sbin/hv_vss_daemon ] && echo "$p"
	done
	return 0
}
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
after=$(installed_daemons)
if [ -n "$after" ]; then
	echo "FAIL: a hv_vss_daemon was started by the install: $after"
	exit 1
fi

echo "== dpkg -L hyperv-daemons"
dpkg -L hyperv-daemons | tee "$work/list"
fail=0
unitdir=$(pkg-config systemd --variable=systemdsystemunitdir 2>/dev/null || echo /lib/systemd/system)
for f in /usr/sbin/hv_vss_daemon "$unitdir/hv-vss-daemon.service" \
	"${unitdir%/systemd/system}/udev/rules.d/70-hyperv-daemons.rules" \
	/etc/hyperv/hyperv-daemons.conf /etc/hyperv/vss.d /etc/hyperv/hyperv-daemons.conf.d \
	/usr/share/man/man8/hv_vss_daemon.8.gz \
	/usr/share/doc/hyperv-daemons/examples/vss.d/50-postgresql \
	/usr/share/doc/hyperv-daemons/copyright; do
	grep -qx "$f" "$work/list" || { echo "FAIL: dpkg -L lacks $f"; fail=1; }
	[ -e "$f" ] || { echo "FAIL: $f not on disk"; fail=1; }
done
dpkg-query -W -f='${Conffiles}\n' hyperv-daemons | grep -q '/etc/hyperv/hyperv-daemons.conf' ||
	{ echo "FAIL: hyperv-daemons.conf is not a conffile"; fail=1; }
for a in hypervvssd.service hyperv-daemons.hv-vss-daemon.service; do
	[ -L /etc/systemd/system/$a ] || { echo "FAIL: alias $a not created by the postinst"; fail=1; }
done
man -w hv_vss_daemon >/dev/null || { echo "FAIL: man hv_vss_daemon not found"; fail=1; }

echo "== dpkg --purge"
dpkg --purge hyperv-daemons
for f in /usr/sbin/hv_vss_daemon /etc/hyperv/hyperv-daemons.conf /etc/systemd/system/hypervvssd.service; do
	if [ -e "$f" ] || [ -L "$f" ]; then echo "FAIL: $f left after purge"; fail=1; fi
done
[ $fail -eq 0 ] && echo "OK: package built, lintian clean, installed, listed and purged"
exit $fail
