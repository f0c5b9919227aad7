#!/bin/sh
# Sets up what the LXC driver's tests need: busybox-static, and a busybox
# root filesystem under .cache/lxc-test/rootfs (relative to the repository
# root). Idempotent: run it as often as you like; as root.
#
#   test/lxc/setup.sh          # from the repository root (or anywhere)
#
# The tests find the root filesystem there, or at $VIRTD_LXC_ROOTFS.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootfs=${VIRTD_LXC_ROOTFS:-$repo/.cache/lxc-test/rootfs}

need=""
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] && file -L "$(command -v busybox)" 2>/dev/null | grep -q static || need="$need busybox-static"
if [ -n "$need" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $need >/dev/null
fi
bb=$(command -v busybox)
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
	# file(1) may be missing: trust busybox-static's package instead.
	dpkg -s busybox-static >/dev/null 2>&1 || { echo "setup.sh: $bb is not busybox-static" >&2; exit 1; }
fi

mkdir -p "$rootfs"
cd "$rootfs"
mkdir -p bin sbin etc proc sys dev tmp root var/run usr/bin usr/sbin mnt
chmod 1777 tmp
cp -f "$bb" bin/busybox.new && mv -f bin/busybox.new bin/busybox
for applet in $(bin/busybox --list-full); do
	case $applet in
	sbin/init | linuxrc) continue ;;
	esac
	[ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
done

cat > sbin/virtd-test-init.new <<'INIT'
#!/bin/sh
# virtd's test init: PID 1 of a test container. It powers off on SIGTERM
# (libvirt's shutdown signal), and exits on SIGHUP (libvirt's reboot
# signal; the controller then starts the container again).
trap 'echo "init: power off"; exit 0' TERM INT USR2 PWR
trap 'echo "init: reboot"; exit 0' HUP
echo "init: $(hostname) up"
while :; do
	sleep 1 &
	wait $!
done
INIT
chmod 755 sbin/virtd-test-init.new
mv -f sbin/virtd-test-init.new sbin/virtd-test-init
ln -sfn /sbin/virtd-test-init sbin/init

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > etc/passwd
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
printf 'localhost\n' > etc/hostname
: > etc/fstab
echo "setup.sh: busybox root filesystem ready at $rootfs"
