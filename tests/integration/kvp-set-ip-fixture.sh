#!/bin/sh
# kvp-set-ip-fixture.sh setup|after GUID
#
# Inside hv-sandbox only (kvp-ours-set-ip-info): "setup" writes the daemon's
# configuration (/tmp/kvp.conf: helpers from /tmp/h, ifcfg files to
# /tmp/ifcfg), a recording hv_set_ifconfig (never the real one: the sandbox
# shares this machine's network), and a fake adapter: a tmpfs over
# /sys/class/net (private to the sandbox's mount namespace) holding hvtest0
# with the VMBus device id GUID and a MAC. "after" prints what the helper
# recorded ("REC| ", and "RUNS| N") and the ifcfg directory ("LS| ").
set -eu
case $1 in
setup)
	mkdir -p /tmp/h /tmp/ifcfg
	printf '[kvp]\nscripts-dir=/tmp/h\nifcfg-dir=/tmp/ifcfg\n' >/tmp/kvp.conf
	cat >/tmp/h/hv_set_ifconfig <<'HELPER'
#!/bin/sh
echo "ARGS $*" >>/tmp/record
while read -r l; do echo "FILE1 $l"; done <"$1" >>/tmp/record
while read -r l; do echo "FILE2 $l"; done <"$2" >>/tmp/record
HELPER
	chmod 755 /tmp/h/hv_set_ifconfig
	mount -t tmpfs hvtest /sys/class/net
	mkdir -p /sys/class/net/hvtest0/device
	echo "$2" >/sys/class/net/hvtest0/device/device_id
	echo 00:15:5d:01:02:03 >/sys/class/net/hvtest0/address
	;;
after)
	runs=0
	if [ -f /tmp/record ]; then
		while read -r l; do
			echo "REC| $l"
			case $l in ARGS*) runs=$((runs + 1)) ;; esac
		done </tmp/record
	fi
	echo "RUNS| $runs"
	ls -l /tmp/ifcfg | while read -r l; do echo "LS| $l"; done
	;;
esac
