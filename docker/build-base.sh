#!/usr/bin/env bash
# Build a Debian base image with python3 on a host that reaches no container registry.
#
# debootstraps a minimal Debian root file system (bookworm: python3 is 3.11), trims documentation,
# locales and package caches, and `docker import`s it. Prints the image tag, and nothing else, on
# standard output; progress goes to standard error. Re-running reuses an existing image.
#
# Usage: docker/build-base.sh [--rebuild]
# Environment:
#   MEDSAM_BASE_TAG   image tag to build              (default medsam-base:bookworm)
#   DEBIAN_SUITE      Debian release to debootstrap   (default bookworm)
#   DEBIAN_MIRROR     Debian mirror                   (default http://deb.debian.org/debian)
#   MEDSAM_BUILD_DIR  scratch folder for the rootfs   (default <repo>/build/docker)
# Needs: root, debootstrap, a running Docker engine.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
TAG=${MEDSAM_BASE_TAG:-medsam-base:bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${MEDSAM_BUILD_DIR:-$REPO/build/docker}
REBUILD=0

die() { echo "build-base.sh: error: $*" >&2; exit 1; }
log() { echo "build-base.sh: $*" >&2; }

case "${1:-}" in
    "") ;;
    --rebuild) REBUILD=1 ;;
    *) die "unknown argument '$1' (usage: docker/build-base.sh [--rebuild])" ;;
esac

command -v docker >/dev/null 2>&1 || die "docker client not found (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine reachable (start one as root: dockerd >/tmp/dockerd.log 2>&1 &)"

if [ "$REBUILD" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "reusing existing image $TAG (--rebuild to build it again)"
    echo "$TAG"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install -y debootstrap)"

ROOTFS=$WORK/rootfs-$SUITE
mkdir -p "$WORK"
rm -rf "$ROOTFS"
start=$(date +%s)
log "debootstrap $SUITE (minbase + python3) from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $WORK/debootstrap.log"

# Keep later package installs in the image free of documentation, as Debian's slim images do.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-medsam-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
    "$ROOTFS"/usr/share/lintian/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/* "$ROOTFS"/tmp/*
# An empty machine-id, as in Debian's own images; the host's resolv.conf must not leak in.
: >"$ROOTFS/etc/machine-id"
: >"$ROOTFS/etc/resolv.conf"
echo "deb $MIRROR $SUITE main" >"$ROOTFS/etc/apt/sources.list"

log "importing the root file system as $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$TAG" >/dev/null
rm -rf "$ROOTFS"

docker run --rm --network none "$TAG" python3 -c 'import sys, venv; assert sys.version_info >= (3, 10)' \
    || die "the imported image $TAG has no working python3"
log "built $TAG in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$TAG") bytes)"
echo "$TAG"
