#!/bin/sh
# setup.sh prepares what the QEMU driver's real tests need: QEMU (TCG),
# OVMF, swtpm, the guest agent, a Debian cloud kernel, Debian's generic
# kernel (for SATA: the cloud kernel has no AHCI driver) and a small
# busybox initramfs. It is idempotent: what is already there is kept.
#
# Usage: test/qemu/setup.sh [CACHE_DIR]   (default: <repo>/.cache/qemu-test)
#
# Afterwards CACHE_DIR holds vmlinuz (cloud), vmlinuz-generic and
# initramfs.cpio.gz, which boots either. The guest's /init mounts proc and
# sys, prints VIRTD-GUEST-UP on ttyS0 and powers off on the ACPI power
# button; with "virtd.selfoff" on the kernel command line it powers itself
# off right after the marker. A line typed on the serial console comes
# back as VIRTD-ECHO:<line>.
#
# With "virtd.report" on the command line the guest also loads its disk,
# virtio and virtiofs drivers and, after VIRTD-GUEST-UP, prints
#   VIRTD-DISKS: <name>[:<serial>] ...   (/sys/block, sorted)
#   VIRTD-TPM: tpm0 | none               (/sys/class/tpm)
#   VIRTD-VIRTIOFS: <text> | none        (file "marker" of the virtiofs
#                                         share tagged TAG by virtd.virtiofs=TAG)
#   VIRTD-GA: started | none             (qemu-ga on the virtio-serial port
#                                         org.qemu.guest_agent.0)
#   VIRTD-REPORT-DONE
# virtd.disks=N makes it wait (up to 30 s) for N disks before listing them,
# as SCSI and ATA disks appear asynchronously.
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
[ -s /usr/share/OVMF/OVMF_CODE_4M.fd ] || need="$need ovmf"
command -v swtpm >/dev/null 2>&1 || need="$need swtpm"
command -v swtpm_setup >/dev/null 2>&1 || need="$need swtpm-tools"
[ -x /usr/sbin/qemu-ga ] || need="$need qemu-guest-agent"
[ -x /usr/lib/qemu/virtiofsd ] || need="$need qemu-system-common"
if [ -n "$need" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $need
fi

# The kernels: linux-image-cloud-amd64 and linux-image-amd64 are
# metapackages; fetch the versioned image package each depends on and take
# vmlinuz and the modules the guest needs out of it.
#
# The modules of kernel KVER go to CACHE_DIR/kmods/KVER/ with two lists of
# names in load order (dependencies first, as there is no depmod in the
# guest): base.order (always loaded) and report.order (with virtd.report).
# base: the ACPI button and evdev, so that busybox acpid sees the power
# button. report: virtio PCI, block, SCSI and console; virtiofs and FUSE;
# IDE (ata_piix), SATA (ahci: not in the cloud kernel, whose libata has
# only the SFF drivers) and the SCSI disk and CD-ROM drivers. TPM TIS and
# CRB are built into both kernels.
#
# CACHE_DIR/modules/ keeps the cloud kernel's button, evdev, veth, bridge,
# stp and llc as flat files: the LXC driver's tests on cgroup v2 run in
# such a guest (test/cgroupv2).
flat_modules="button evdev veth bridge stp llc"
base_modules="evdev button"
report_modules="virtio_pci virtio_blk virtio_scsi virtio_console virtiofs scsi_mod sd_mod sr_mod ata_piix ahci"

# resolve ROOT NAME... prints the modules NAME... need in load order, each
# once, dependencies first; a NAME that is no module of ROOT (built in, or
# absent) is skipped. Dependencies are read from each file's .modinfo
# "depends=" field (the .deb has no modules.dep). A subshell: the
# recursion keeps each level's variables.
resolve() (
	r=$1
	shift
	for n in "$@"; do
		f=$(find "$r/lib/modules" -name "$n.ko" -o -name "$(echo "$n" | tr _ -).ko" | head -n1)
		[ -n "$f" ] || continue
		grep -qx "$n" "$r/.seen" 2>/dev/null && continue
		echo "$n" >>"$r/.seen"
		# shellcheck disable=SC2046
		resolve "$r" $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1 | tr , ' ')
		basename "$f" .ko
	done
)

# fetch_kernel META VMLINUZ: the kernel of metapackage META into
# CACHE_DIR/VMLINUZ, its modules into CACHE_DIR/kmods/KVER/; prints the
# versioned package.
fetch_kernel() {
	meta=$1 out=$2
	work=$(mktemp -d)
	chmod 755 "$work"
	pkg=$(apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
	if [ -z "$pkg" ]; then
		apt-get update -q >&2
		pkg=$(apt-cache depends "$meta" |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
	fi
	[ -n "$pkg" ] || { echo "setup.sh: cannot resolve $meta" >&2; rm -rf "$work"; exit 1; }
	(cd "$work" && apt-get download "$pkg" >&2)
	dpkg-deb -x "$work"/*.deb "$work/root"
	kver=$(basename "$(ls -d "$work"/root/lib/modules/* | head -n1)")
	rm -rf "$cache/kmods/$kver"
	mkdir -p "$cache/kmods/$kver"
	: >"$work/root/.seen"
	# shellcheck disable=SC2086
	resolve "$work/root" $base_modules >"$cache/kmods/$kver/base.order"
	# shellcheck disable=SC2086
	resolve "$work/root" $report_modules >"$cache/kmods/$kver/report.order"
	for m in $(cat "$cache/kmods/$kver/base.order" "$cache/kmods/$kver/report.order"); do
		cp "$(find "$work/root/lib/modules" -name "$m.ko" | head -n1)" "$cache/kmods/$kver/$m.ko"
	done
	if [ "$meta" = linux-image-cloud-amd64 ]; then
		mkdir -p "$cache/modules"
		for m in $flat_modules; do
			cp "$(find "$work/root" -name "$m.ko" | head -n1)" "$cache/modules/$m.ko"
		done
	fi
	cp "$(ls "$work"/root/boot/vmlinuz-* | head -n1)" "$cache/$out.tmp"
	mv "$cache/$out.tmp" "$cache/$out"
	rm -rf "$work"
	echo "$pkg"
}

have_all=yes
for m in $flat_modules; do
	[ -s "$cache/modules/$m.ko" ] || have_all=no
done
[ -n "$(ls "$cache"/kmods/*cloud*/report.order 2>/dev/null)" ] || have_all=no
if [ ! -s "$cache/vmlinuz" ] || [ "$have_all" = no ]; then
	fetch_kernel linux-image-cloud-amd64 vmlinuz >"$cache/kernel-package"
	rm -f "$cache/initramfs.stamp"
fi
if [ ! -s "$cache/vmlinuz-generic" ] || [ -z "$(ls "$cache"/kmods/*/report.order 2>/dev/null | grep -v cloud)" ]; then
	fetch_kernel linux-image-amd64 vmlinuz-generic >"$cache/kernel-package-generic"
	rm -f "$cache/initramfs.stamp"
fi

# The initramfs: busybox, the modules, the guest agent and an /init script.
# Rebuilt when this script changes, so an edited /init takes effect.
stamp=$(cksum <"$0" | cut -d' ' -f1)
if [ ! -s "$cache/initramfs.cpio.gz" ] || [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
	root=$(mktemp -d)
	mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/mnt" "$root/var/run" \
		"$root/etc/acpi/PWRF" "$root/etc/acpi/button/power"
	cp /bin/busybox "$root/bin/busybox"
	mkdir -p "$root/lib/modules"
	cp -r "$cache"/kmods/* "$root/lib/modules/"
	for app in sh mount poweroff cat echo sleep acpid grep insmod uname ls sort tr tail head basename wc; do
		ln -s busybox "$root/bin/$app"
	done
	# qemu-ga is dynamically linked: it goes in with the libraries ldd
	# names, at their host paths.
	mkdir -p "$root/usr/sbin"
	cp /usr/sbin/qemu-ga "$root/usr/sbin/qemu-ga"
	for lib in $(ldd /usr/sbin/qemu-ga | sed -n 's/.*[ \t]\(\/[^ ]*\) (0x.*/\1/p'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	cat >"$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
kmods=/lib/modules/$(uname -r)
for m in $(cat "$kmods/base.order"); do insmod "$kmods/$m.ko"; done
report=no
if grep -q virtd.report /proc/cmdline; then
	report=yes
	for m in $(cat "$kmods/report.order"); do
		case $m in
		scsi_mod) insmod "$kmods/$m.ko" scan=sync ;;
		*) insmod "$kmods/$m.ko" ;;
		esac
	done
fi
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
# cmdarg NAME: the value of NAME=VALUE on the kernel command line.
cmdarg() {
	for a in $(cat /proc/cmdline); do
		case $a in "$1="*) echo "${a#*=}" ;; esac
	done
}
if [ "$report" = yes ]; then
	# Disks: SCSI and ATA disks appear asynchronously; wait for as many
	# as the test says there are.
	want=$(cmdarg virtd.disks)
	n=0
	while [ -n "$want" ] && [ "$n" -lt 300 ] && [ "$(ls /sys/block | grep -cv -e '^loop' -e '^ram')" -lt "$want" ]; do
		sleep 0.1
		n=$((n + 1))
	done
	disks=""
	for b in $(ls /sys/block | sort); do
		case $b in loop* | ram*) continue ;; esac
		s=""
		if [ -e "/sys/block/$b/serial" ]; then
			s=$(cat "/sys/block/$b/serial")
		elif [ -e "/sys/block/$b/device/vpd_pg80" ]; then
			s=$(tail -c +5 "/sys/block/$b/device/vpd_pg80" | tr -d '\000 ')
		fi
		disks="$disks $b${s:+:$s}"
	done
	echo "VIRTD-DISKS:$disks" >/dev/ttyS0
	tpm=none
	[ -e /sys/class/tpm/tpm0 ] && tpm=tpm0
	echo "VIRTD-TPM: $tpm" >/dev/ttyS0
	tag=$(cmdarg virtd.virtiofs)
	fs=none
	if [ -n "$tag" ] && mount -t virtiofs "$tag" /mnt; then
		fs=$(cat /mnt/marker)
	fi
	echo "VIRTD-VIRTIOFS: $fs" >/dev/ttyS0
	# No udev: find the guest agent's port by its name.
	ga=none
	for p in /sys/class/virtio-ports/*; do
		if [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ]; then
			qemu-ga -m virtio-serial -p "/dev/$(basename "$p")" -t /tmp -f /tmp/qemu-ga.pid >/dev/null 2>&1 &
			ga=started
		fi
	done
	echo "VIRTD-GA: $ga" >/dev/ttyS0
	echo "VIRTD-REPORT-DONE" >/dev/ttyS0
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
echo "qemu test assets in $cache: vmlinuz ($(cat "$cache/kernel-package" 2>/dev/null || echo cached)), vmlinuz-generic ($(cat "$cache/kernel-package-generic" 2>/dev/null || echo cached)), initramfs.cpio.gz"
