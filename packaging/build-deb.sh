#!/bin/bash
# Builds the hyperv-daemons Debian package from this tree:
#   packaging/build-deb.sh [OUTDIR]    (default: ./deb-out)
# The sources are copied (without build directories, .git and .reference)
# into a scratch directory with packaging/debian as debian/, then
# `dpkg-buildpackage -us -uc -b` runs there and the .deb, .buildinfo and
# .changes files are copied to OUTDIR, followed by `lintian` on the .deb when
# lintian is installed. Extra dpkg-buildpackage options go in
# $DPKG_BUILDPACKAGE_OPTS; DEB_BUILD_OPTIONS=nocheck skips the unit tests.
# Needs: dpkg-dev, debhelper and the Build-Depends of packaging/debian/control.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-deb-out}" && cd "${1:-deb-out}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hv-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
src="$work/hyperv-daemons-$version"
mkdir -p "$src"
tar -C "$top" --exclude='./build*' --exclude=./.git --exclude=./.reference \
	--exclude=./debian --exclude='./deb-out*' -cf - . | tar -C "$src" -xf -
cp -a "$top/packaging/debian" "$src/debian"

# shellcheck disable=SC2086
(cd "$src" && dpkg-buildpackage -us -uc -b ${DPKG_BUILDPACKAGE_OPTS:-})

cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
ls -1 "$out"/*.deb
if command -v lintian >/dev/null; then
	lintian --info "$out"/hyperv-daemons_"$version"_*.deb
fi
