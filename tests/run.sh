#!/usr/bin/env bash
# Sets up .venv with the development requirements and runs the test suite (arguments go to pytest).
# The real-data tests read ../shared beside the clone, or MEDSAM_SHARED.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh --dev
exec .venv/bin/python -m pytest -q "$@"
