#!/bin/sh
# After virtd-libvirt-compat is installed or upgraded (deb postinst with
# "configure", rpm %post with 1 on install and 2 on upgrade): enable and
# start libvirt's two sockets, and restart a running virtd so that it takes
# them from systemd. Without systemd there is nothing to start: run virtd
# with --libvirt-sock /run/libvirt/libvirt-sock
# --libvirt-sock-ro /run/libvirt/libvirt-sock-ro instead.
set -e

case "$1" in
abort-*) exit 0 ;;
configure) [ -z "$2" ] && first=yes || first=no ;;
1) first=yes ;;
*) first=no ;;
esac

units="virtd-libvirt.socket virtd-libvirt-ro.socket"
if command -v systemctl >/dev/null 2>&1; then
	if [ "$first" = yes ]; then
		# Enabling works offline too (a chroot, an image build).
		case "$1" in
		configure) systemctl enable $units >/dev/null 2>&1 || true ;;
		*) systemctl preset $units >/dev/null 2>&1 || true ;;
		esac
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if [ "$first" = yes ]; then
			systemctl start $units || true
			# A running virtd serves libvirt's protocol under /run/virtd
			# until it restarts with the sockets. KillMode=process: drivers
			# and guests keep running.
			systemctl try-restart virtd.service || true
		fi
	fi
fi
exit 0
