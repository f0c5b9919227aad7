#!/bin/sh
# Before virtd-daemon is removed (deb prerm with "remove", rpm %preun with
# 0): stop virtd and its sockets. Drivers and guests keep running, as they
# do on any stop of virtd. Upgrades leave virtd running (postinst restarts).
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl stop virtd.service virtd.socket virtd-ro.socket virtd-admin.socket >/dev/null 2>&1 || true
else
	# A virtd started by hand or by another init: signal it if it is live.
	pid=$(cat /run/virtd/virtd.pid 2>/dev/null) || pid=
	case "$pid" in '' | *[!0-9]*) pid= ;; esac
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = virtd ]; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable virtd.service virtd.socket virtd-ro.socket virtd-admin.socket >/dev/null 2>&1 || true
fi
exit 0
