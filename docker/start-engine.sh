#!/usr/bin/env bash
# Make a Docker engine reachable on this machine (for CI and a fresh developer machine).
#
# Does nothing when `docker info` already answers. Otherwise, as root: installs Debian's docker.io
# and debootstrap when dockerd is missing, starts dockerd in the background (log in
# ${DOCKERD_LOG:-/tmp/dockerd.log}) and waits up to 60 s for it. Exit status 1 when no engine
# could be had, so a caller can skip the container steps with a clear message.
#
# Usage: docker/start-engine.sh
set -eu

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}

die() { echo "start-engine.sh: error: $*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
    echo "start-engine.sh: a Docker engine is already running" >&2
    exit 0
fi
[ "$(id -u)" = 0 ] || die "no Docker engine reachable, and starting one needs root"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    echo "start-engine.sh: installing docker.io and debootstrap" >&2
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >&2 \
        || die "apt-get install docker.io debootstrap failed"
fi

echo "start-engine.sh: starting dockerd (log: $LOG)" >&2
nohup dockerd >"$LOG" 2>&1 &
for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
        echo "start-engine.sh: engine ready" >&2
        exit 0
    fi
    sleep 1
done
die "dockerd did not answer within 60 s; see $LOG"
