#!/bin/bash
# Installs what is needed, builds, and runs one backup round of the real
# hv_vss_daemon against the emulated host, on three scratch file systems
# (ext4, xfs, btrfs) inside a private mount namespace: HOT_BACKUP check,
# FREEZE, a write that blocks while frozen, THAW, the write going through.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
build=$(bash "$top/scripts/build.sh")
emu="$build/tests/emu"
exec "$emu/hv-sandbox" --fs "${HV_DEMO_FS:-ext4,xfs,btrfs}" --timeout 60 \
	--copy "$build/hv_vss/hv_vss_daemon" -- \
	"$emu/hv-emu" --daemon /bin/hv_vss_daemon \
	--daemon-arg=--runtime-dir=/run/hyperv-daemons \
	wait-register hot-backup probe-writable freeze probe-frozen sleep:200 thaw probe-released
