#!/usr/bin/env bash
# The container checks, in one command for CI:
#   1. a Docker engine (docker/start-engine.sh); none to be had: skip with a message and exit 0,
#      unless CI=true;
#   2. the local base image (docker/build-base.sh) and TEAM:latest + build/submission/TEAM.tar.gz
#      (docker/build.sh);
#   3. the image under the organizers' command line, --network none, -u $(id -u):$(id -g) and
#      -u 4242:4242, with equal segs, with the organizers' litemedsam in int8 and with -e MEDSAM_MODEL=NAME
#      for litemedsam and every model `training ship` wrote (docker/check-image.sh);
#   4. the organizers' harness from the tarball (docker image load, one container per case);
#   5. compute-metrics on its segs and on the pipeline's own run outside the container (one process per
#      case, like the harness); fails when a container DSC falls below the local one
#      (docker/ci_report.py), prints running times.
# Cases: CI_CASES (file names, space-separated) from $MEDSAM_SHARED/data/cvpr24-format/imgs
# (MEDSAM_SHARED defaults to the shared/ folder beside the clone).
#
# Usage: docker/ci.sh [TEAM]    (default litemedsam)
# Environment: PYTHON (a python with numpy and scipy, e.g. the project's venv), MEDSAM_SHARED,
#   CI_CASES, CI.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
TEAM=${1:-litemedsam}
SHARED=${MEDSAM_SHARED:-$REPO/../shared}
IMGS=$SHARED/data/cvpr24-format/imgs
CASES=${CI_CASES:-2DBox_US_stubus_25.npz 2DBox_CT_sammed2d_s0619-32.npz 3DBox_PET_ibsi-sts_STS002.npz}
OUT=$REPO/build/ci

die() { echo "ci.sh: error: $*" >&2; exit 1; }

if ! "$REPO/docker/start-engine.sh"; then
    case "${CI:-}" in [Tt][Rr][Uu][Ee]|1|[Yy][Ee][Ss]) die "no Docker engine, and CI=$CI";; esac
    echo "ci.sh: no Docker engine could be started: container checks SKIPPED"
    exit 0
fi

start=$(date +%s)
BASE=${BASE_IMAGE:-$("$REPO/docker/build-base.sh")}
TARBALL=$("$REPO/docker/build.sh" "$TEAM")
echo "ci.sh: images built in $(( $(date +%s) - start )) s"

rm -rf "$OUT"
mkdir -p "$OUT/cases" "$OUT/dockers"
ln "$TARBALL" "$OUT/dockers/" 2>/dev/null || cp "$TARBALL" "$OUT/dockers/"
for name in $CASES; do
    [ -f "$IMGS/$name" ] || die "case $IMGS/$name not found (set MEDSAM_SHARED or CI_CASES)"
    cp "$IMGS/$name" "$OUT/cases/"
done

"$REPO/docker/check-image.sh" "$TEAM:latest" "$OUT/cases" "$OUT/check-image"

# The organizers' path: load the tarball, time each case. --keep-image keeps the build cache warm.
(cd "$REPO" && "$PYTHON" -m evaluation.time_eval -i "$OUT/cases" -o "$OUT/time-eval" \
    -d "$OUT/dockers" --keep-image) || die "time-eval from $TARBALL failed (see $OUT/time-eval)"

# Scores: the container's segs against the pipeline's own run outside the container, same cases.
mkdir -p "$OUT/gts"
for name in $CASES; do cp "$SHARED/data/cvpr24-format/gts/$name" "$OUT/gts/"; done
# One process per case, as the harness runs the container: `auto` chooses by the run's cases (a lone 2D
# case gets the fast start), so both sides run the same configuration.
for name in $CASES; do
    mkdir -p "$OUT/local-cases/${name%.npz}"
    cp "$OUT/cases/$name" "$OUT/local-cases/${name%.npz}/"
    (cd "$REPO" && PYTHON=$PYTHON sh predict.sh "$OUT/local-cases/${name%.npz}" "$OUT/local-segs" \
        2>>"$OUT/local-predict.log") || die "the pipeline outside the container failed (see $OUT/local-predict.log)"
done
for run in container:"$OUT/time-eval/$TEAM" local:"$OUT/local-segs"; do
    (cd "$REPO" && "$PYTHON" -m evaluation compute-metrics -q -s "${run#*:}" -g "$OUT/gts" \
        -o "$OUT/metrics-${run%%:*}") >/dev/null \
        || [ $? -eq 1 ] || die "compute-metrics failed on the ${run%%:*} segs"  # 1: some seg missing, reported below
done
echo "ci.sh: metrics of the container run:"
cat "$OUT/metrics-container/summary.md"
"$PYTHON" "$REPO/docker/ci_report.py" "$OUT/time-eval/$TEAM" "$OUT/metrics-container/metrics.csv" \
    "$OUT/metrics-local/metrics.csv" || die "container results fall short of the local run"

echo "ci.sh: base image $BASE $(docker image inspect -f '{{.Size}}' "$BASE") bytes," \
    "$TEAM:latest $(docker image inspect -f '{{.Size}}' "$TEAM:latest") bytes," \
    "$(basename "$TARBALL") $(stat -c %s "$TARBALL") bytes; all container checks passed in $(( $(date +%s) - start )) s"
