#!/bin/sh
# After virtd-daemon is installed or upgraded (deb postinst with
# "configure", rpm %post with 1 on install and 2 on upgrade).
set -e

case "$1" in
abort-*) exit 0 ;;
configure) [ -z "$2" ] && first=yes || first=no ;;
1) first=yes ;;
*) first=no ;;
esac

mkdir -p /etc/virtd /var/lib/virtd /var/log/virtd /usr/libexec/virtd/drivers

if command -v systemctl >/dev/null 2>&1; then
	if [ "$first" = yes ]; then
		# Enabling works offline too (a chroot, an image build).
		case "$1" in
		configure) systemctl enable virtd.service >/dev/null 2>&1 || true ;;
		*) systemctl preset virtd.service virtd.socket virtd-ro.socket virtd-admin.socket >/dev/null 2>&1 || true ;;
		esac
	fi
	if [ -d /run/systemd/system ]; then
		systemd-tmpfiles --create virtd.conf >/dev/null 2>&1 || true
		systemctl daemon-reload || true
		if [ "$first" = yes ]; then
			systemctl start virtd.socket virtd-ro.socket virtd-admin.socket || true
		else
			# KillMode=process: drivers and guests keep running and the
			# new virtd reattaches to them.
			systemctl try-restart virtd.service || true
		fi
	fi
fi
exit 0
