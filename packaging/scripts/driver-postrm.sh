#!/bin/sh
# After a virtd-driver-* package is removed (deb postrm, rpm %postun): make
# a running virtd rescan, so the driver disappears from `virtsh drivers`
# without a restart. On a deb purge, remove the driver's definitions and
# state (/etc/virtd/<driver>, /var/lib/virtd/<driver>, /var/log/virtd/<driver>).
set -e

rescan() {
	pid=$(cat /run/virtd/virtd.pid 2>/dev/null) || return 0
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	# The pid file outlives the daemon: signal only a live virtd.
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = virtd ] || return 0
	kill -HUP "$pid" 2>/dev/null || true
}

if [ "$1" = purge ]; then
	# dpkg names the package; the driver's directories carry its short name.
	name=${DPKG_MAINTSCRIPT_PACKAGE#virtd-driver-}
	case "$name" in
	'' | */* | "$DPKG_MAINTSCRIPT_PACKAGE") ;;
	*) rm -rf "/etc/virtd/$name" "/var/lib/virtd/$name" "/var/log/virtd/$name" ;;
	esac
fi
case "$1" in
abort-*) ;;
*) rescan ;;
esac
exit 0
