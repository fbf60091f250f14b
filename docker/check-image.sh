#!/usr/bin/env bash
# Show that a submission image works as the organizers run it and under the variants they may use.
#
# Runs `python -m evaluation.time_eval` (one container per case) over CASES_DIR once per variant:
#   official    the organizers' exact command line (-m 8G --name <team> --rm, the two mounts,
#               /bin/bash -c "sh predict.sh"), inputs/ and outputs/ kept between cases
#   no-network  the same plus --network none
#   host-user   the same plus -u $(id -u):$(id -g)
#   other-user  the same plus -u 4242:4242 (neither the image's user nor the caller: a non-root
#               organizer's uid, with the harness's chmod 777 folders)
#   int8        the same plus -e MEDSAM_MODEL=litemedsam -e MEDSAM_PRECISION=int8 (the organizers' model
#               with its quantized encoder, the one model that has one)
#   model-NAME  the same plus -e MEDSAM_MODEL=NAME, for litemedsam and every model `training ship` wrote
#               under weights/
# then checks that the first three variants wrote the same segs as the official run, and int8 and
# model-NAME segs of the same shapes (their masks differ). Keep CASES_DIR small: each
# case costs one container start per variant.
#
# Usage: docker/check-image.sh IMAGE CASES_DIR [OUT_DIR]   (OUT_DIR defaults to <repo>/build/check-image)
# Environment: PYTHON, a python with numpy (default python3). Exit status non-zero on any failure.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

die() { echo "check-image.sh: error: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: docker/check-image.sh IMAGE CASES_DIR [OUT_DIR]"
IMAGE=$1
CASES=$(cd "$2" && pwd) || die "no cases folder $2"
OUT=${3:-$REPO/build/check-image}
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE not found (docker image load -i TEAM.tar.gz)"

rm -rf "$OUT"
mkdir -p "$OUT"
failed=0
run_variant() {
    local name=$1 extra=$2
    echo "check-image.sh: --- $name: docker run extras: ${extra:-none}" >&2
    if (cd "$REPO" && "$PYTHON" -m evaluation.time_eval -i "$CASES" -o "$OUT/$name" --image "$IMAGE" \
            --docker-args="$extra"); then
        echo "check-image.sh: $name: every case ok" >&2
    else
        echo "check-image.sh: $name: FAILED (see $OUT/$name)" >&2
        failed=1
    fi
}
run_variant official ""
run_variant no-network "--network none"
run_variant host-user "-u $(id -u):$(id -g)"
run_variant other-user "-u 4242:4242"
run_variant int8 "-e MEDSAM_MODEL=litemedsam -e MEDSAM_PRECISION=int8"
shipped=(litemedsam)
for manifest in "$REPO"/weights/*/manifest.json; do
    if grep -q '"training"' "$manifest"; then
        shipped+=("$(basename "$(dirname "$manifest")")")
    fi
done
for model in "${shipped[@]}"; do
    run_variant "model-$model" "-e MEDSAM_MODEL=$model"
done

"$PYTHON" - "$OUT" <<'EOF' || failed=1
"""Every variant's segs equal the official run's, case by case; int8's and each model's have the same shapes."""
import sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1])
official = sorted(out.glob("official/*/*.npz"))
mismatches = []
for variant in ("no-network", "host-user", "other-user"):
    for seg in official:
        other = out / variant / seg.parent.name / seg.name
        if not other.is_file() or not np.array_equal(np.load(seg)["segs"], np.load(other)["segs"]):
            mismatches.append(f"{variant}/{seg.name}")
for variant in ["int8", *(p.name for p in out.glob("model-*"))]:
    for seg in official:
        other = out / variant / seg.parent.name / seg.name
        if not other.is_file() or np.load(other)["segs"].shape != np.load(seg)["segs"].shape:
            mismatches.append(f"{variant}/{seg.name}")
print(f"check-image.sh: {len(official)} official segs; variants differing or missing: {mismatches or 'none'}",
      file=sys.stderr)
sys.exit(1 if mismatches or not official else 0)
EOF

[ "$failed" = 0 ] || die "some variants failed; logs under $OUT/*/<team>_logs"
echo "check-image.sh: $IMAGE passed all $((5 + ${#shipped[@]})) variants" >&2
