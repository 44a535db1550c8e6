#!/bin/dash
# hooks-setup.sh KIND: writes test hooks into /tmp/vss.d inside the sandbox.
# Every hook appends "name:argument " to /tmp/hook-seq and prints the whole
# sequence so far as "seq=...", so the daemon's log shows the order.
set -e
d=/tmp/vss.d
mkdir -p -m 755 "$d"
rec='printf "%s " "${0##*/}:$1" >> /tmp/hook-seq; read -r s < /tmp/hook-seq || true; echo "seq=$s"'

hook() {
	printf '#!/bin/dash\n%s\n%s\n' "$rec" "$2" > "$d/$1"
	chmod 755 "$d/$1"
}

case "$1" in
order)
	hook 20-second ""
	hook 10-first ""
	hook 30-third ""
	# Left behind by a package manager, and not executable: never run.
	hook 15-old.dpkg-old ""
	hook 25-new.rpmnew ""
	printf '#!/bin/dash\necho must not run\n' > "$d/35-not-executable"
	;;
fail)
	hook 10-first ""
	hook 20-fails '[ "$1" = freeze ] && exit 3; exit 0'
	hook 30-never ""
	;;
hang)
	hook 10-first ""
	hook 20-hangs '[ "$1" = freeze ] && sleep 30; exit 0'
	;;
loud)
	hook 10-loud 'i=0; while [ $i -lt 20000 ]; do echo "line $i of a chatty hook"; i=$((i+1)); done'
	;;
thawfail)
	hook 10-first ""
	hook 20-thaw-fails '[ "$1" = thaw ] && exit 1; exit 0'
	hook 30-third ""
	;;
fds)
	# What a hook inherits: only stdin, stdout and stderr (besides dash's
	# own script fd and the fd of the directory it lists); every other fd
	# of the daemon is close-on-exec.
	hook 10-fds 'printf "fds="; for f in /proc/$$/fd/*; do printf "%s " "${f##*/}"; done; echo'
	# Writable by others: refused, with a warning.
	hook 20-writable ""
	chmod 777 "$d/20-writable"
	;;
*)
	echo "hooks-setup.sh: unknown kind '$1'" >&2
	exit 2
	;;
esac
