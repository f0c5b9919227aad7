#!/bin/sh
# Checks that virtd-driver-xen can be built: it links libxenlight (cgo,
# found through pkg-config) and uses libxl's JSON generator (yajl headers).
# Run by the Makefile before building the Xen driver.
set -e
command -v pkg-config >/dev/null 2>&1 || {
	echo "virtd-driver-xen needs pkg-config (apt-get install pkg-config)" >&2; exit 1; }
pkg-config --exists xenlight xentoollog || {
	echo "virtd-driver-xen needs libxen-dev (apt-get install libxen-dev)" >&2; exit 1; }
pkg-config --exists yajl || {
	echo "virtd-driver-xen needs libyajl-dev (apt-get install libyajl-dev)" >&2; exit 1; }
