#!/bin/bash
# Installs what building, testing and the demo need on Debian 12 (as root).
# clang and its runtime (libFuzzer) build the fuzz targets (tests/fuzz).
# Skips apt entirely when everything is already there.
set -euo pipefail

packages=(
	gcc make cmake pkgconf
	libglib2.0-dev libmount-dev libnl-3-dev libnl-route-3-dev libcmocka-dev libfuse3-dev fuse3
	e2fsprogs xfsprogs btrfs-progs util-linux kmod
	clang libclang-rt-14-dev
)
top=$(cd "$(dirname "$0")/.." && pwd)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# The reference daemons' package must never start anything here.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The reference: Debian's upstream hv_vss_daemon, unpacked (never installed,
# so no service of its package ever starts) into .reference/.
ref="$top/.reference"
if [ ! -x "$ref/usr/sbin/hv_vss_daemon" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if ( cd "$tmp" && apt-get download -qq hyperv-daemons >/dev/null 2>&1 ) ||
	   ( apt-get update -qq && cd "$tmp" && apt-get download -qq hyperv-daemons >/dev/null ); then
		mkdir -p "$ref"
		dpkg-deb -x "$tmp"/hyperv-daemons_*.deb "$ref"
	else
		echo "deps.sh: could not fetch hyperv-daemons; reference comparisons will be skipped" >&2
	fi
fi

# qemu-guest-agent (and its liburing) for tests/bench, unpacked the same way:
# never installed, so its service never starts; run only inside hv-sandbox.
if [ ! -x "$ref/usr/sbin/qemu-ga" ]; then
	tmpq=$(mktemp -d)
	if ( cd "$tmpq" && apt-get download -qq qemu-guest-agent liburing2 >/dev/null 2>&1 ); then
		mkdir -p "$ref"
		for deb in "$tmpq"/*.deb; do dpkg-deb -x "$deb" "$ref"; done
	else
		echo "deps.sh: could not fetch qemu-guest-agent; the benchmark skips it" >&2
	fi
	rm -rf "$tmpq"
fi

# zram and loop devices for the scratch file systems (built in or modules).
modprobe zram num_devices=1 2>/dev/null || true
modprobe loop 2>/dev/null || true
