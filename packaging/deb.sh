#!/usr/bin/env bash
# Builds the Debian package of Sluice: stages the files with
# scripts/install.sh (the same layout as `make install`), then packages
# that tree with nfpm, pinned and run through the Go module proxy.
#
#   packaging/deb.sh [OUTDIR]      # default: dist/ under the repo
#
# Run `make build` first. Environment:
#   BINDIR          built binaries (default: bin/ of the repo)
#   SLUICE_VERSION  package version (default: from `git describe`)
#   SLUICE_ARCH     Debian architecture (default: from `go env GOARCH`)
# Prints the path of the .deb.
set -euo pipefail

NFPM_VERSION=v2.45.0 # v2.46+ needs modules the Go proxy does not serve

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

version="${SLUICE_VERSION:-}"
if [[ -z "$version" ]]; then
	version="$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)"
fi
version="${version#v}"
# Debian versions start with a digit and have no '-' without a revision.
if [[ ! "$version" =~ ^[0-9] ]]; then
	version="0.0.0~git${version}"
fi
version="${version//-/.}"

arch="${SLUICE_ARCH:-}"
if [[ -z "$arch" ]]; then
	case "$(go env GOARCH)" in
	amd64) arch=amd64 ;;
	arm64) arch=arm64 ;;
	arm) arch=armhf ;;
	386) arch=i386 ;;
	*) arch="$(go env GOARCH)" ;;
	esac
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" PREFIX=/usr NO_POSTINST=1 "$root/scripts/install.sh" >/dev/null

cd "$root"
SLUICE_PKGROOT="$stage" SLUICE_VERSION="$version" SLUICE_ARCH="$arch" \
	GOFLAGS= GOWORK=off go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" \
	package -f packaging/nfpm.yaml -p deb -t "$out" >&2
echo "$out/sluice_${version}_${arch}.deb"
