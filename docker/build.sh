#!/usr/bin/env bash
# Build the submission image TEAM:latest and save it as OUT_DIR/TEAM.tar.gz.
#
# 1. base image: $BASE_IMAGE when set (pulled if absent and a registry is reachable), else the
#    local Debian image of docker/build-base.sh (built once, then reused);
# 2. wheelhouse: build/wheelhouse, downloaded on the host by pip for the base image's python
#    version, ABI, glibc and architecture from requirements.txt (+ pip's own wheel, used only during
#    the build); reused while requirements.txt and the base image's python stay the same;
# 3. `docker build --network none` (the build reaches no network), tagged TEAM:latest;
# 4. `docker save | gzip` -> OUT_DIR/TEAM.tar.gz, which `docker image load` turns back into
#    TEAM:latest; skipped when the tarball already holds the current image.
# Prints the tarball path on standard output; progress goes to standard error.
#
# Usage: docker/build.sh TEAM [OUT_DIR]      (OUT_DIR defaults to <repo>/build/submission)
# Environment: BASE_IMAGE, PYTHON (host python with pip, default python3), MODEL (the image's default
# model, a folder of weights/; default litemedsam-wide), PRECISION (the image's default precision; default auto).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: docker/build.sh TEAM [OUT_DIR]"
TEAM=$1
OUT_DIR=${2:-$REPO/build/submission}
# The organizers derive the image name from the tarball's file name: the part before the first
# '.', lowercased. A name that is already lowercase and dot-free survives that unchanged.
printf '%s' "$TEAM" | grep -Eq '^[a-z0-9][a-z0-9_-]*$' \
    || die "team name '$TEAM' must match [a-z0-9][a-z0-9_-]* (lowercase, no dots)"

command -v docker >/dev/null 2>&1 || die "docker client not found (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine reachable (start one as root: dockerd >/tmp/dockerd.log 2>&1 &)"

MODEL=${MODEL:-litemedsam-wide}
PRECISION=${PRECISION:-auto}
for path in requirements.txt predict.sh src/medsam_laptop/__main__.py "weights/$MODEL/encoder.xml"; do
    [ -e "$REPO/$path" ] || die "$REPO/$path is missing: the image needs it"
done
unreadable=$(find "$REPO/predict.sh" "$REPO/src/medsam_laptop" "$REPO/weights" ! -perm -o+r | head -n 3)
[ -z "$unreadable" ] || die "not readable by other users (the image runs as uid 1000): $unreadable"

# ---- 1. base image ----------------------------------------------------------------------------
if [ -n "${BASE_IMAGE:-}" ]; then
    BASE=$BASE_IMAGE
    docker image inspect "$BASE" >/dev/null 2>&1 || docker pull "$BASE" >&2 \
        || die "base image $BASE is neither local nor pullable (unset BASE_IMAGE to build a local one)"
else
    BASE=$("$REPO/docker/build-base.sh")
fi
log "base image: $BASE"

# ---- 2. wheelhouse ----------------------------------------------------------------------------
read -r PYVER ABI GLIBC ARCH <<EOF
$(docker run --rm --network none "$BASE" python3 -c '
import platform, sys
v = sys.version_info
print(f"{v[0]}.{v[1]}", f"cp{v[0]}{v[1]}", platform.libc_ver()[1], platform.machine())')
EOF
[ -n "$ARCH" ] || die "could not read python version / glibc / architecture from $BASE"
WHEELHOUSE=$REPO/build/wheelhouse
KEY="$(sha256sum <"$REPO/requirements.txt" | cut -d' ' -f1) $PYVER $ABI glibc$GLIBC $ARCH"
if [ -f "$WHEELHOUSE/.key" ] && [ "$(cat "$WHEELHOUSE/.key")" = "$KEY" ]; then
    log "reusing wheelhouse $WHEELHOUSE ($KEY)"
else
    log "downloading the wheelhouse for python $PYVER ($ABI, glibc $GLIBC, $ARCH)"
    platforms=("--platform" "manylinux2014_$ARCH")
    minor=${GLIBC#2.}
    for m in $(seq 17 "$minor"); do platforms+=("--platform" "manylinux_2_${m}_$ARCH"); done
    rm -rf "$WHEELHOUSE.partial"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --python-version "$PYVER" --implementation cp --abi "$ABI" "${platforms[@]}" \
        -d "$WHEELHOUSE.partial" -r "$REPO/requirements.txt" pip >&2 \
        || die "pip download failed (is PyPI reachable? are the pins in requirements.txt available for $PYVER/$ARCH?)"
    echo "$KEY" >"$WHEELHOUSE.partial/.key"
    rm -rf "$WHEELHOUSE"
    mv "$WHEELHOUSE.partial" "$WHEELHOUSE"
fi

# ---- 3. image ---------------------------------------------------------------------------------
log "docker build --network none -t $TEAM:latest (base $BASE)"
docker build --network none --build-arg BASE_IMAGE="$BASE" --build-arg MODEL="$MODEL" --build-arg PRECISION="$PRECISION" -t "$TEAM:latest" -f "$REPO/Dockerfile" "$REPO" >&2 \
    || die "docker build failed"
IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$TEAM:latest")
log "image $TEAM:latest: $(docker image inspect -f '{{.Size}}' "$TEAM:latest") bytes ($IMAGE_ID)"

# ---- 4. tarball -------------------------------------------------------------------------------
mkdir -p "$OUT_DIR" "$REPO/build/docker"
TARBALL=$OUT_DIR/$TEAM.tar.gz
STAMP=$REPO/build/docker/$TEAM.saved-image-id
if [ -f "$TARBALL" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$IMAGE_ID $TARBALL" ]; then
    log "reusing $TARBALL (it holds the current image)"
else
    log "saving $TARBALL"
    docker save "$TEAM:latest" | gzip >"$TARBALL.partial" || die "docker save failed"
    mv "$TARBALL.partial" "$TARBALL"
    echo "$IMAGE_ID $TARBALL" >"$STAMP"
fi
log "$TARBALL: $(stat -c %s "$TARBALL") bytes"
echo "$TARBALL"
