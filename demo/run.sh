#!/usr/bin/env bash
# Sets up .venv, segments the demo phantoms with the default model (litemedsam-wide, OpenVINO, the precision
# `auto` picks for this CPU) through predict.sh, and scores them against their ground truth with the
# evaluation package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
rm -rf demo/outputs demo/metrics
PYTHON=.venv/bin/python sh predict.sh demo/inputs demo/outputs
.venv/bin/python -m evaluation compute-metrics -s demo/outputs -g demo/gts -o demo/metrics
