#!/bin/bash
# Installs what the packaging tests need on Debian 12 (as root), beyond
# scripts/deps.sh: debhelper, lintian, fakeroot (dpkg-buildpackage), systemd
# (systemd-analyze, and systemd.pc for the unit directory). Installing the
# systemd package does not start it: it is not PID 1 in a container.
set -euo pipefail
packages=(dpkg-dev debhelper lintian fakeroot systemd pkgconf cmake rpm
	libglib2.0-dev libmount-dev libnl-3-dev libnl-route-3-dev libcmocka-dev libfuse3-dev)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "tests/packaging/deps.sh: missing ${missing[*]}; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
