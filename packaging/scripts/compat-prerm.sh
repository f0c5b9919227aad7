#!/bin/sh
# Before virtd-libvirt-compat is removed (deb prerm with "remove", rpm
# %preun with 0): stop and disable libvirt's two sockets. Upgrades leave
# them alone.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

units="virtd-libvirt.socket virtd-libvirt-ro.socket"
if [ -d /run/systemd/system ]; then
	systemctl stop $units >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable $units >/dev/null 2>&1 || true
fi
exit 0
