#!/bin/sh
# setup.sh prepares what the Xen driver's test on a real hypervisor needs
# (test/xen/xen_test.go boots Xen under QEMU/TCG and runs internal/xen's
# conformance suite in its dom0): the Xen hypervisor, a Debian kernel that
# can be dom0 (the generic one; the cloud kernel cannot) and a PV guest, its
# Xen modules, and the dom0 tools (xenstored, xenconsoled, xen-init-dom0,
# xl), all from Debian's packages. Idempotent: what is there is kept.
#
# Usage: test/xen/setup.sh [CACHE_DIR]   (default: <repo>/.cache/xen-test)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-$repo/.cache/xen-test}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

tools="xenstored xenconsoled xen-init-dom0 xl"
modules="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs"
complete=yes
for f in xen vmlinuz; do [ -s "$cache/$f" ] || complete=no; done
for t in $tools; do [ -x "$cache/bin/$t" ] || complete=no; done
for m in $modules; do [ -s "$cache/modules/$m.ko" ] || complete=no; done
if [ "$complete" = yes ]; then
	echo "xen test assets in $cache: $(cat "$cache/packages")"
	exit 0
fi

depends() { # the versioned package a metapackage depends on
	apt-cache depends "$1" 2>/dev/null | sed -n "s/^ *Depends: \\($2[^ ]*\\).*/\\1/p" | head -n1
}
kernel=$(depends linux-image-amd64 'linux-image-[0-9]')
if [ -z "$kernel" ]; then
	apt-get update -q
	kernel=$(depends linux-image-amd64 'linux-image-[0-9]')
fi
hypervisor=$(depends xen-system-amd64 'xen-hypervisor-[0-9]')
[ -n "$kernel" ] && [ -n "$hypervisor" ] || {
	echo "setup.sh: cannot resolve linux-image-amd64 or xen-system-amd64" >&2
	exit 1
}
xver=${hypervisor#xen-hypervisor-}
xver=${xver%-amd64}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download "$kernel" "$hypervisor" "xen-utils-$xver" >/dev/null)
for deb in "$work"/*.deb; do
	dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$cache/bin" "$cache/modules"
gzip -dc "$(ls "$work"/root/boot/xen-*.gz | head -n1)" >"$cache/xen.tmp"
cp "$(ls "$work"/root/boot/vmlinuz-* | head -n1)" "$cache/vmlinuz.tmp"
for t in $tools; do
	cp "$work/root/usr/lib/xen-$xver/bin/$t" "$cache/bin/$t"
done
for m in $modules; do
	cp "$(find "$work/root/lib/modules" -name "$m.ko" | head -n1)" "$cache/modules/$m.ko"
done
mv "$cache/xen.tmp" "$cache/xen"
mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
echo "$hypervisor $kernel xen-utils-$xver" >"$cache/packages"
echo "xen test assets in $cache: $(cat "$cache/packages")"
