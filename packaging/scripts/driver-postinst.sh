#!/bin/sh
# After a virtd-driver-* package is installed or upgraded (deb postinst,
# rpm %post): make a running virtd rescan its driver directories, so the
# driver shows in `virtsh drivers` without a restart. Quiet and successful
# when no virtd runs (a chroot, an image build, a stopped service).
set -e

rescan() {
	pid=$(cat /run/virtd/virtd.pid 2>/dev/null) || return 0
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	# The pid file outlives the daemon: signal only a live virtd.
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = virtd ] || return 0
	kill -HUP "$pid" 2>/dev/null || true
}

case "$1" in
abort-*) ;;
*) rescan ;;
esac
exit 0
