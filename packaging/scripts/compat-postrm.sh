#!/bin/sh
# After virtd-libvirt-compat is removed (deb postrm with "remove", rpm
# %postun with 0): a running virtd still holds the libvirt sockets systemd
# passed it, whose files are gone; restart it so that it serves libvirt's
# protocol at its own paths again (/run/virtd/libvirt-sock). KillMode=process:
# drivers and guests keep running.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl try-restart virtd.service >/dev/null 2>&1 || true
fi
exit 0
