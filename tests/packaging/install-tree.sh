#!/bin/bash
# install-tree.sh SRC_DIR build|tree|verify [TREE_DIR]
#   Configures and builds SRC_DIR (without tests) into a scratch directory
#   with -DCMAKE_INSTALL_PREFIX=/usr and fixed unit and udev directories,
#   installs it with DESTDIR, then (with TREE_DIR, "build" does only that,
#   into TREE_DIR, and "tree" and "verify" use what it installed there, so
#   that the two tests share one build):
#   tree:   compares the installed files with install-tree.list, and checks
#           the units and the udev rules (ExecStart exists, every unit is
#           started by a rule and every rule names a unit, and nothing that
#           makes boot wait on a device or hides mounts from the VSS daemon)
#   verify: runs `systemd-analyze verify` on every unit in a root made of
#           the install tree and this machine's own units (exit 77 when
#           systemd-analyze is missing); any message fails the test.
# Nothing is started: the daemon is never run.
set -euo pipefail

src=$(cd "$1" && pwd)
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
unitdir=/usr/lib/systemd/system
rulesdir=/usr/lib/udev/rules.d

if [ "$mode" = verify ] && ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hv-pkg-$mode.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree_dir=${3:-}

build_tree() { # $1: where (build/ and dest/ below it)
	rm -rf "$1/build" "$1/dest"
	mkdir -p "$1"
	cmake -S "$src" -B "$1/build" -DHV_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_INSTALL_PREFIX=/usr -DHV_SYSTEMD_UNITDIR=$unitdir \
		-DHV_UDEV_RULESDIR=$rulesdir >"$work/configure.log" ||
		{ cat "$work/configure.log"; exit 1; }
	cmake --build "$1/build" -j2 >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
	DESTDIR="$1/dest" cmake --install "$1/build" >"$work/install.log"
}

if [ "$mode" = build ]; then
	[ -n "$tree_dir" ] || { echo "usage: $0 SRC_DIR build TREE_DIR" >&2; exit 2; }
	build_tree "$tree_dir"
	echo "OK: installed into $tree_dir/dest"
	exit 0
fi
if [ -n "$tree_dir" ]; then
	[ -d "$tree_dir/dest" ] || { echo "FAIL: nothing installed in $tree_dir (the build step failed?)"; exit 1; }
	# A copy: "verify" enables the units in it.
	cp -a "$tree_dir/dest" "$work/dest"
else
	build_tree "$work"
fi
dest="$work/dest"

fail=0
bad() { echo "FAIL: $*"; fail=1; }
units=$(cd "$dest" && ls .$unitdir/*.service | sed 's|^\.||')

case "$mode" in
tree)
	(cd "$dest" && find . -mindepth 1 \( -type f -o -type l -o -type d -empty \) -printf '/%P%y\n' |
		sed -e 's|d$|/|' -e 's|[fl]$||' | sort) >"$work/got"
	grep -v '^#' "$here/install-tree.list" | sed '/^$/d' | sort >"$work/want"
	if ! diff -u "$work/want" "$work/got"; then
		bad "the install tree differs from install-tree.list (- expected, + installed)"
	fi
	[ -x "$dest/usr/sbin/hv_vss_daemon" ] || bad "hv_vss_daemon is not executable"
	[ -x "$dest/usr/share/doc/hyperv-daemons/examples/vss.d/50-postgresql" ] ||
		bad "the example hook is not executable"
	rules="$dest$rulesdir/70-hyperv-daemons.rules"
	for u in $units; do
		name=$(basename "$u")
		f="$dest$u"
		echo "checking $name"
		exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f")
		[ -x "$dest$exe" ] || bad "$name: ExecStart $exe is not in the install tree"
		grep -qx 'Type=notify' "$f" || bad "$name: not Type=notify"
		grep -qx 'ConditionVirtualization=microsoft' "$f" || bad "$name: no ConditionVirtualization=microsoft"
		grep -qx 'Restart=on-failure' "$f" || bad "$name: no Restart=on-failure"
		# The 90 s boot hang: a unit pulled in at boot that binds to a device.
		if grep -Eq '^(BindsTo|Requires)=.*\.device' "$f"; then bad "$name: depends on a device unit"; fi
		if grep -Eq '^WantedBy=.*\.target' "$f"; then bad "$name: pulled in by a target at boot"; fi
		grep -q "ENV{SYSTEMD_WANTS}+=\"$name\"" "$rules" || bad "$name: no udev rule starts it"
		case "$name" in
		hv-vss-daemon.service)
			grep -qx 'Alias=hypervvssd.service' "$f" || bad "$name: no Fedora alias"
			grep -qx 'Alias=hyperv-daemons.hv-vss-daemon.service' "$f" || bad "$name: no old Debian alias"
			grep -qx 'RuntimeDirectoryPreserve=yes' "$f" || bad "$name: the marker directory is not preserved"
			# VSS must see and freeze every mount: nothing that gives it a
			# mount namespace, and CAP_SYS_ADMIN kept.
			if grep -Eq '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|ProtectKernel[A-Za-z]*|ProtectControlGroups|ProtectProc|ProcSubset|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|MountFlags|CapabilityBoundingSet|KillMode=mixed|KillMode=process)' "$f"; then
				bad "$name: sandboxing that hides mounts, drops capabilities or leaves the guard unmanaged"
			fi
			;;
		esac
	done
	# Every rule names a unit that is installed.
	for w in $(sed -n 's/.*ENV{SYSTEMD_WANTS}+="\([^"]*\)".*/\1/p' "$rules"); do
		[ -f "$dest$unitdir/$w" ] || bad "udev rule wants $w, which is not installed"
	done
	grep -v '^#' "$rules" | grep -q . || bad "no udev rule"
	if command -v udevadm >/dev/null && udevadm --help 2>&1 | grep -q '^  verify'; then
		udevadm verify "$rules" || bad "udevadm verify"
	fi
	;;
verify)
	# A root with this machine's units (sysinit.target, ...) and the
	# install tree on top, so that ExecStart= is checked in the tree.
	root="$work/root"
	mkdir -p "$root$unitdir"
	for d in /lib/systemd/system /usr/lib/systemd/system; do
		[ -d "$d" ] && cp -rn "$d/." "$root$unitdir/" 2>/dev/null || true
	done
	cp -a "$dest/." "$root/"
	# The units ours are ordered against, as their packages ship them (the
	# ordering lines only): verified together with ours, an ordering cycle
	# through sysinit.target shows.
	mkdir -p "$root/usr/bin"
	cp /bin/true "$root/usr/bin/true"
	cat >"$root$unitdir/cloud-init-local.service" <<-'EOF'
		[Unit]
		Description=cloud-init's first stage (ordering as cloud-init 22+ ships it)
		DefaultDependencies=no
		Wants=network-pre.target
		After=hv_kvp_daemon.service systemd-remount-fs.service
		Before=NetworkManager.service network-pre.target shutdown.target sysinit.target
		Conflicts=shutdown.target
		RequiresMountsFor=/var/lib/cloud
		[Service]
		Type=oneshot
		ExecStart=/usr/bin/true
	EOF
	cat >"$root$unitdir/walinuxagent.service" <<-'EOF'
		[Unit]
		Description=Azure Linux Agent (ordering as Debian ships it)
		After=network-online.target cloud-init.service
		Wants=network-online.target sshd.service sshd-keygen.service
		[Service]
		ExecStart=/usr/bin/true
	EOF
	consumers="$root$unitdir/cloud-init-local.service $root$unitdir/walinuxagent.service"
	for u in $units; do
		echo "systemd-analyze verify $u"
		# shellcheck disable=SC2086 # $consumers is a list of paths without spaces
		if ! out=$(systemd-analyze verify --man=no --root="$root" "$root$u" $consumers 2>&1); then
			echo "$out"
			bad "$u: systemd-analyze verify failed"
		elif [ -n "$out" ]; then
			echo "$out"
			bad "$u: systemd-analyze verify complained"
		fi
		# The aliases, as `systemctl enable` (or a package's postinst) makes them.
		systemctl --root="$root" enable "$(basename "$u")" 2>&1
		for a in $(sed -n 's/^Alias=//p' "$root$u"); do
			[ -L "$root/etc/systemd/system/$a" ] || bad "$u: alias $a not created by systemctl enable"
		done
		# Enabling must not make boot wait for anything.
		if ls -d "$root"/etc/systemd/system/*.wants 2>/dev/null | grep -q .; then
			bad "$u: enabling it added a .wants dependency"
		fi
	done
	;;
*)
	echo "usage: $0 SRC_DIR build|tree|verify [TREE_DIR]" >&2
	exit 2
	;;
esac

[ $fail -eq 0 ] && echo "OK: $mode"
exit $fail
