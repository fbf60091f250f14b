#!/bin/sh
# Container entry point. The organizers run `/bin/bash -c "sh predict.sh"` in the image's WORKDIR with one
# case in /workspace/inputs; any other folders may be given as arguments (used by the demo).
set -eu
exec "${PYTHON:-python3}" -m medsam_laptop predict -i "${1:-/workspace/inputs}" -o "${2:-/workspace/outputs}"
