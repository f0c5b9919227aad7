#!/usr/bin/env bash
# Builds every virtd package, .deb and .rpm, into dist/ with nfpm: one
# version for all, from the VERSION file unless $VERSION overrides it
# (VERSION=0.1.1 scripts/packages.sh). The package definitions are in
# packaging/nfpm/, one per package; README.md ("Packages (for packagers)") says what each holds.
#
# Environment: VERSION, DIST (output directory, default dist), NFPM (the nfpm
# binary, default bin/nfpm, installed pinned when missing), GO (default go).
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=v2.45.2
GO=${GO:-go}
VERSION=${VERSION:-$(cat VERSION)}
DIST=${DIST:-dist}
NFPM=${NFPM:-$PWD/bin/nfpm}
ARCH=${ARCH:-$($GO env GOARCH)}

case "$VERSION" in
'' | *[!0-9A-Za-z.+~-]* | [!0-9]*)
	echo "packages: bad version \"$VERSION\" (want something like 0.1.0)" >&2
	exit 1
	;;
esac

if [ ! -x "$NFPM" ]; then
	echo "packages: installing nfpm $NFPM_VERSION into $(dirname "$NFPM")"
	mkdir -p "$(dirname "$NFPM")"
	GOBIN=$(cd "$(dirname "$NFPM")" && pwd) $GO install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/virtd-packages.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

# Every binary but the Xen driver is static, so its package needs no
# library: built without cgo, or, for the LXC driver (whose container
# helper is C), with cgo linked statically. The Xen driver links
# libxenlight (cgo). Every binary leaves gRPC's x/net/trace out
# (grpcnotrace; the Makefile says why).
ldflags="-s -w -X github.com/virtd/virtd/internal/version.Version=$VERSION"
tags=grpcnotrace
build() { # cgo output package [extra go build flags...]
	echo "packages: building $2 $VERSION"
	cgo=$1 out=$2 pkg=$3
	shift 3
	CGO_ENABLED=$cgo $GO build -trimpath -tags "$tags" "$@" -ldflags "$ldflags" -o "$STAGE/$out" "$pkg"
}
static_cgo() {
	ldflags="$ldflags -linkmode external -extldflags -static" tags="$tags,netgo,osusergo" build 1 "$@"
}
build 0 virtd ./cmd/virtd
build 0 virtsh ./cmd/virtsh
build 0 virtd-driver-test ./cmd/driver-test
build 0 virtd-driver-qemu ./cmd/driver-qemu
static_cgo virtd-driver-lxc ./cmd/driver-lxc
sh test/xen/check-build-deps.sh
build 1 virtd-driver-xen ./cmd/driver-xen

mkdir -p "$DIST"
export VERSION ARCH STAGE
for cfg in packaging/nfpm/*.yaml; do
	for fmt in deb rpm; do
		"$NFPM" package --config "$cfg" --packager "$fmt" --target "$DIST/" >"$STAGE/nfpm.log" 2>&1 || { cat "$STAGE/nfpm.log" >&2; exit 1; }
	done
done
ls -l "$DIST" | grep -F -- "$VERSION" | awk '{ printf "packages: %9d  %s\n", $5, $NF }'
