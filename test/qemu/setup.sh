#!/bin/sh
# setup.sh prepares what the QEMU driver's real tests need: QEMU (TCG),
# a Debian cloud kernel and a small busybox initramfs. It is idempotent:
# what is already there is kept.
#
# Usage: test/qemu/setup.sh [CACHE_DIR]   (default: <repo>/.cache/qemu-test)
#
# Afterwards CACHE_DIR holds vmlinuz and initramfs.cpio.gz. The guest's
# /init mounts proc and sys, prints VIRTD-GUEST-UP on ttyS0 and powers off
# on the ACPI power button; with "virtd.selfoff" on the kernel command line
# it powers itself off right after the marker. A line typed on the serial
# console comes back as VIRTD-ECHO:<line>.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-$repo/.cache/qemu-test}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v qemu-img >/dev/null 2>&1 || need="$need qemu-utils"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx acpid || need="$need busybox-static"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
if [ -n "$need" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $need
fi

# The kernel: linux-image-cloud-amd64 is a metapackage; fetch the versioned
# image package it depends on and take vmlinuz out of it.
# The ACPI button and evdev drivers are modules in that kernel; they go into
# the initramfs so that busybox acpid sees the power button.
# veth, bridge and what bridge needs (stp, llc) are for the LXC driver's
# tests on cgroup v2, which run in such a guest (test/cgroupv2).
modules="button evdev veth bridge stp llc"
have_all=yes
for m in $modules; do
	[ -s "$cache/modules/$m.ko" ] || have_all=no
done
if [ ! -s "$cache/vmlinuz" ] || [ "$have_all" = no ]; then
	work=$(mktemp -d)
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
	if [ -z "$pkg" ]; then
		apt-get update -q
		pkg=$(apt-cache depends linux-image-cloud-amd64 |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
	fi
	[ -n "$pkg" ] || { echo "setup.sh: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
	(cd "$work" && apt-get download "$pkg")
	dpkg-deb -x "$work"/*.deb "$work/root"
	cp "$(ls "$work"/root/boot/vmlinuz-* | head -n1)" "$cache/vmlinuz.tmp"
	mkdir -p "$cache/modules"
	for m in $modules; do
		cp "$(find "$work/root" -name "$m.ko" | head -n1)" "$cache/modules/$m.ko"
	done
	mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
	rm -f "$cache/initramfs.stamp"
	echo "$pkg" >"$cache/kernel-package"
fi

# The initramfs: busybox and an /init script. Rebuilt when this script
# changes, so an edited /init takes effect.
stamp=$(cksum <"$0" | cut -d' ' -f1)
if [ ! -s "$cache/initramfs.cpio.gz" ] || [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
	root=$(mktemp -d)
	mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/etc/acpi/PWRF" "$root/etc/acpi/button/power"
	cp /bin/busybox "$root/bin/busybox"
	mkdir -p "$root/lib/modules"
	cp "$cache/modules/evdev.ko" "$cache/modules/button.ko" "$root/lib/modules/"
	for app in sh mount poweroff cat echo sleep acpid grep insmod; do
		ln -s busybox "$root/bin/$app"
	done
	cat >"$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
if grep -q virtd.selfoff /proc/cmdline; then
	echo "VIRTD-GUEST-UP" >/dev/ttyS0
	echo "VIRTD-GUEST-SELFOFF" >/dev/ttyS0
	poweroff -f
fi
# Power off on the ACPI power button: acpid runs the action script for the
# button event (busybox maps KEY_POWER to PWRF/00000080).
cat >/etc/acpi/PWRF/00000080 <<'ACT'
#!/bin/sh
echo "VIRTD-GUEST-POWERBUTTON" >/dev/ttyS0
poweroff -f
ACT
cp /etc/acpi/PWRF/00000080 /etc/acpi/button/power/poweroff
chmod +x /etc/acpi/PWRF/00000080 /etc/acpi/button/power/poweroff
acpid -f -d >/dev/null 2>&1 &
sleep 0.2
echo "VIRTD-GUEST-UP" >/dev/ttyS0
# A power button pressed while the kernel booted, before button.ko was
# there to report it, is still counted by the ACPI core: honour it.
set -- $(cat /sys/firmware/acpi/interrupts/ff_pwr_btn 2>/dev/null)
if [ "${1:-0}" != 0 ]; then
	echo "VIRTD-GUEST-POWERBUTTON-EARLY" >/dev/ttyS0
	poweroff -f
fi
# Echo what is typed on the serial console, for console tests.
while :; do
	if read -r line </dev/ttyS0; then
		echo "VIRTD-ECHO:$line" >/dev/ttyS0
	else
		sleep 1
	fi
done
INIT
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$cache/initramfs.cpio.gz.tmp")
	rm -rf "$root"
	mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
	echo "$stamp" >"$cache/initramfs.stamp"
fi
echo "qemu test assets in $cache: vmlinuz ($(cat "$cache/kernel-package" 2>/dev/null || echo cached)), initramfs.cpio.gz"
