#!/usr/bin/env bash
# Make this machine build and run the images with podman when there is no Docker engine and
# no container registry (this project's CI machine; .ci/run calls it under CI=true):
#
#   1. install podman, buildah, runc and debootstrap from Debian's packages, if podman is missing;
#   2. import a Debian bookworm base, made with debootstrap from the Debian mirror of this
#      host's apt sources (or $DEBIAN_MIRROR), as localhost/debian-base:bookworm, if it is
#      not there yet.
#
# Then build with the variables .ci/run exports (containers/README.md, "Without a registry"):
#   CONTAINERS_CONF=containers/ci/containers.conf BASE_IMAGE=localhost/debian-base:bookworm
#   PULL=never HOST_CA=/etc/ssl/certs/ca-certificates.crt containers/build.sh cpu gpu train
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/containers/ci/containers.conf}"
BASE=localhost/debian-base:bookworm

host_mirror() {  # the Debian mirror this host's apt takes bookworm from (one-line or deb822 sources)
    {
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" && $3 == "bookworm" {print $2}'
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {uri = $2} /^Suites:/ && / bookworm( |$)/ {print uri}'
    } | head -n 1
}
MIRROR=${DEBIAN_MIRROR:-$(host_mirror)}
if [ -z "$MIRROR" ]; then
    echo "podman-host: no Debian bookworm mirror in /etc/apt; set DEBIAN_MIRROR" >&2
    exit 1
fi

started=$SECONDS
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah runc debootstrap >/dev/null
    echo "podman-host: installed $(podman --version) in $((SECONDS - started)) s"
fi

if podman image exists "$BASE"; then
    echo "podman-host: $BASE is there"
else
    started=$SECONDS
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    # What debian:bookworm-slim leaves out too: the package lists and downloaded packages.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import --quiet - "$BASE" >/dev/null
    echo "podman-host: imported $BASE (debootstrap of $MIRROR) in $((SECONDS - started)) s"
fi
