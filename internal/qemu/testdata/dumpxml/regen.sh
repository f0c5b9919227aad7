#!/bin/sh
# Regenerate what libvirt 9.0 makes of our golden domain documents.
#
#   ./regen.sh                       # every NAME.xml beside this script
#   ./regen.sh -o OUTDIR FILE...     # chosen inputs, outputs into OUTDIR
#
# For each input NAME.xml: `virsh define`, then `virsh dumpxml --inactive`
# into OUTDIR/NAME.libvirt.xml, then undefine (with --nvram). An input that
# libvirt refuses gets OUTDIR/NAME.libvirt.err (virsh's message) instead.
# The stale one of the two is removed, so exactly one exists per input.
#
# "@DIR@" in an input (the corpus's placeholder for its image directory) is
# replaced by $ATDIR (default /var/lib/libvirt/images/corpus) before define;
# libvirt does not look at disk files when defining.
#
# libvirtd and virtlogd are started by hand if qemu:///system does not answer
# (no systemd here; see /work/shared/bench/libvirt-anchor/README.md) and are
# stopped again on exit; a daemon that was already running is left alone.
# A domain whose name or UUID is already defined is never touched: the
# input is skipped with an error and the script exits non-zero.
#
# Needs root, libvirt 9.0 (libvirtd, virtlogd, virsh) and QEMU.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
outdir=$here
uri=qemu:///system
ATDIR=${ATDIR:-/var/lib/libvirt/images/corpus}

while getopts o:c: opt; do
    case $opt in
    o) outdir=$OPTARG ;;
    c) uri=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR] [-c URI] [FILE.xml...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
    set -- $(ls "$here"/*.xml | grep -v '\.libvirt\.xml$')
fi
mkdir -p "$outdir"

virsh() { command virsh -q -c "$uri" "$@"; }

started_libvirtd=
started_virtlogd=
tmp=$(mktemp -d)

stop_pid() { # SIGTERM one PID we started and wait until it is gone or a zombie
    p=$1
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p"
    i=0
    while [ -e /proc/"$p" ] && [ "$(awk '{print $3}' /proc/"$p"/stat 2>/dev/null)" != Z ] && [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

cleanup() {
    rm -rf "$tmp"
    if [ -n "$started_libvirtd" ]; then stop_pid "$started_libvirtd"; fi
    if [ -n "$started_virtlogd" ]; then stop_pid "$started_virtlogd"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start=$(date +%s.%N)

# start_daemon NAME: run "NAME -d" and print the PID it writes to
# /run/NAME.pid (a new one: a stale pidfile from an earlier run is not it).
start_daemon() {
    old=$(cat /run/"$1".pid 2>/dev/null || true)
    "$1" -d
    i=0
    while :; do
        p=$(cat /run/"$1".pid 2>/dev/null || true)
        if [ -n "$p" ] && [ "$p" != "$old" ] && kill -0 "$p" 2>/dev/null; then break; fi
        i=$((i + 1))
        if [ $i -ge 100 ]; then echo "$1 -d wrote no new /run/$1.pid" >&2; return 1; fi
        sleep 0.1
    done
    echo "$p"
}

running() { [ -s /run/"$1".pid ] && kill -0 "$(cat /run/"$1".pid)" 2>/dev/null; }

if ! virsh uri >/dev/null 2>&1; then
    if running libvirtd; then
        echo "libvirtd $(cat /run/libvirtd.pid) runs but $uri does not answer" >&2
        exit 1
    fi
    if ! running virtlogd; then
        started_virtlogd=$(start_daemon virtlogd)
    fi
    started_libvirtd=$(start_daemon libvirtd)
    i=0
    until virsh uri >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 300 ]; then echo "libvirtd did not answer on $uri" >&2; exit 1; fi
        sleep 0.1
    done
fi
echo "libvirt: $(virsh version | sed -n 's/^Using library: //p')  (started here: libvirtd=${started_libvirtd:-no} virtlogd=${started_virtlogd:-no})"

# first value of <TAG> in a document (name and uuid are plain text)
field() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$2" | head -1; }

status=0
defined=0
refused=0
for in in "$@"; do
    name=$(basename "$in" .xml)
    doc=$tmp/$name.xml
    sed "s|@DIR@|$ATDIR|g" "$in" >"$doc"
    dname=$(field name "$doc")
    duuid=$(field uuid "$doc")
    if [ -z "$duuid" ]; then
        echo "$name: no <uuid>: outputs would not be deterministic" >&2
        status=1
        continue
    fi
    if virsh domuuid "$dname" >/dev/null 2>&1 || virsh domname "$duuid" >/dev/null 2>&1; then
        echo "$name: a domain named $dname or with UUID $duuid is already defined; not touching it" >&2
        status=1
        continue
    fi
    if virsh define "$doc" >"$tmp/out" 2>"$tmp/err"; then
        if ! virsh dumpxml --inactive "$duuid" >"$outdir/$name.libvirt.xml" 2>"$tmp/err"; then
            cat "$tmp/err" >&2
            status=1
        fi
        rm -f "$outdir/$name.libvirt.err"
        if ! virsh undefine --nvram "$duuid" >/dev/null 2>"$tmp/err"; then
            echo "$name: undefine failed:" >&2
            cat "$tmp/err" >&2
            status=1
        fi
        defined=$((defined + 1))
        echo "ok       $name"
    else
        # virsh prints "error: Failed to define domain from FILE" with our temp
        # path first; keep only libvirt's reason, which names the element.
        grep -v '^error: Failed to define domain from ' "$tmp/err" | sed '/^$/d' >"$outdir/$name.libvirt.err"
        rm -f "$outdir/$name.libvirt.xml"
        refused=$((refused + 1))
        echo "REFUSED  $name: $(cat "$outdir/$name.libvirt.err")"
    fi
done

end=$(date +%s.%N)
echo "$defined defined, $refused refused, in $(echo "$end - $start" | bc) s"
exit $status
