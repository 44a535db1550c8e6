#!/bin/bash
# rpm.sh SRC_DIR
#   Builds packaging/rpm/hyperv-daemons.spec with rpmbuild -bb from a tarball
#   of SRC_DIR (the working tree, without build directories), so the spec's
#   %build/%install/%check and its %files list are checked against the same
#   CMake install rules as the Debian package: rpmbuild fails on a listed
#   file that is not installed and on an installed file that is not listed.
#   Then lists the package and checks it against install-tree.list.
#   Debian's rpm lacks Fedora's cmake and systemd macros: rpm-macros next to
#   this script defines them; build dependencies are not checked (--nodeps).
#   Exit 77 (skipped) without rpmbuild (tests/packaging/deps.sh installs it).
set -euo pipefail

src=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
command -v rpmbuild >/dev/null || { echo "SKIP: rpmbuild missing: run tests/packaging/deps.sh"; exit 77; }

spec=$src/packaging/rpm/hyperv-daemons.spec
version=$(sed -n 's/^Version: *//p' "$spec")
work=$(mktemp -d "${TMPDIR:-/tmp}/hv-rpm-test.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work"/{SOURCES,BUILD,RPMS,SRPMS,SPECS,BUILDROOT}

echo "== tarball hyperv-daemons-$version"
tar -C "$src" --transform "s,^\.,hyperv-daemons-$version,S" \
	--exclude='./build*' --exclude='./.git' --exclude='./.reference' --exclude='./obj-*' \
	-czf "$work/SOURCES/hyperv-daemons-$version.tar.gz" .

echo "== rpmbuild -bb"
if ! rpmbuild -bb --nodeps --define "_topdir $work" --define "dist .test" \
	--define "_smp_build_ncpus $(nproc)" --load "$here/rpm-macros" \
	"$spec" >"$work/build.log" 2>&1; then
	grep -E -A20 'Installed \(but unpackaged\)|File not found|error:' "$work/build.log" | head -60 ||
		tail -60 "$work/build.log"
	echo "FAIL: rpmbuild"
	exit 1
fi
grep -E '^[0-9]+% tests passed|tests failed' "$work/build.log" || true
rpm=$(find "$work/RPMS" -name "hyperv-daemons-$version-*.rpm" ! -name '*debug*' | head -1)
[ -n "$rpm" ] || { echo "FAIL: no package built"; exit 1; }
echo "built $(basename "$rpm")"

echo "== contents against install-tree.list"
# Directories are listed with a trailing slash in the list; rpm lists them
# without. Compare files only, plus the directories the list names.
rpm -qlp "$rpm" 2>/dev/null | sort >"$work/rpm.list"
grep -v '^#' "$here/install-tree.list" | sed '/^$/d; s,/$,,' | sort >"$work/want.list"
missing=$(comm -13 "$work/rpm.list" "$work/want.list")
if [ -n "$missing" ]; then
	echo "FAIL: not in the RPM:"
	echo "$missing"
	exit 1
fi
# Parent directories the spec owns (%dir /etc/hyperv) are not listed.
extra=$(comm -23 "$work/rpm.list" "$work/want.list" | grep -v -E '^/usr/lib/\.build-id|^/usr/share/licenses/' |
	while read -r p; do grep -q "^$p/" "$work/want.list" || echo "$p"; done || true)
if [ -n "$extra" ]; then
	echo "FAIL: in the RPM but not in install-tree.list:"
	echo "$extra"
	exit 1
fi
echo "PASS: $(wc -l <"$work/want.list") paths"
